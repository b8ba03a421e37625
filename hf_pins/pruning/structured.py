"""Gradual structured pruning: the `Pruner`'s schedule, scores and persistent masks, with whole heads and FFN units.

At each mask update the method's per-weight scores (PINS, PLATON, magnitude: `method.scores()`, smoothed as in
unstructured pruning) are summed over each unit (`structured/units.py`), the lowest-scoring live units are removed
until the schedule's target is met, and their weights are masked like any pruned weight (gradients and optimizer
moments cleared, so they stay zero). The masks and the unit flags travel in the pruning state of every checkpoint.
At the end (`finish`) the removed units are cut out of the model (`structured/surgery.py`); the report then counts
sparsity against the original prunable weights.
"""

from __future__ import annotations

import dataclasses

import torch

from ..structured.gfs import structured_sparsity
from ..structured.surgery import remove_units
from ..structured.units import StructuredSettings, UnitLayout, select_units
from .masks import global_masks, live_only
from .pruner import Pruner
from .schedule import CubicSchedule
from .targets import DEFAULT_PRUNABLE_PATTERNS


class StructuredPruner(Pruner):
    granularity = "structured"

    def __init__(self, model, method, target_sparsity: float = 0.8, patterns=None, mask_mode: str = "persistent",
                 threshold: str = "global", args=None, settings=None, structured: StructuredSettings | None = None):
        patterns = DEFAULT_PRUNABLE_PATTERNS if patterns is None else patterns
        super().__init__(model, method, target_sparsity, patterns, mask_mode, threshold, args, settings)
        if mask_mode != "persistent":
            raise ValueError("structured granularity removes units for good: mask_mode must be 'persistent'")
        if self.group is not None:
            raise ValueError("structured granularity does not run on sharded weights")
        self.model = model
        self.patterns = list(patterns)
        self.structured = structured or StructuredSettings()
        self.layout = UnitLayout.from_model(model, self.params)
        self.unit_keep = {g.key: torch.ones(g.count, dtype=torch.bool) for g in self.layout.groups}
        self.modules_before = {n: p.numel() for n, p in self.params.items()}
        # The fraction removed as whole units at the end; with `then: unstructured`, single weights of the remaining
        # units follow on the same schedule up to `target_sparsity`.
        self.layout.check_compound(self.structured, target_sparsity)
        by_kind = self.structured.by_kind
        self.structured_target = self.layout.removed_fraction(self.structured) if by_kind else target_sparsity
        self.compound = self.structured.then == "unstructured"
        if not self.compound:
            self.target_sparsity = self.structured_target
        self._selected_for: list | None = None  # the target of the last selection (an unchanged one selects nothing)
        self.structure: dict | None = None  # what `finish` kept

    def set_schedule(self, schedule: CubicSchedule) -> None:
        """With keep fractions (and no `then`), the schedule's cubic ramp rises to the sparsity they imply; with
        `then: unstructured` it rises to `target_sparsity`, units going first (the ramp is steepest early)."""
        if schedule.target_sparsity != self.target_sparsity:
            schedule = dataclasses.replace(schedule, target_sparsity=self.target_sparsity)
        super().set_schedule(schedule)

    def _progress(self, sparsity: float) -> float:
        """How far the units' removal is, 0 to 1 (what the keep fractions are scaled by)."""
        return min(1.0, sparsity / self.structured_target) if self.structured_target > 0 else 0.0

    def _targets(self, sparsity: float) -> list[int]:
        """The removal counts a selection at `sparsity` aims at (as `select_units` computes them)."""
        settings, groups = self.structured, self.layout.groups
        if settings.by_kind:
            progress = self._progress(sparsity)
            weights = [int(round(sparsity * self.num_weights))] if self.compound and progress >= 1.0 else []
            pools = [[g] for g in groups] if settings.budget == "per_layer" else \
                [[g for g in groups if g.kind == kind] for kind in ("head", "ffn")]
            return [int(round(progress * (1.0 - settings.keep(pool[0].kind)) * sum(g.count for g in pool)))
                    for pool in pools] + weights
        if settings.budget == "per_layer":
            return [int(round(sparsity * g.count)) for g in groups]
        return [int(round(sparsity * self.num_weights))]

    def _mask_would_change(self, sparsity: float) -> bool:
        return self._targets(sparsity) != self._selected_for

    @torch.no_grad()
    def update_masks(self, sparsity: float, optimizer=None) -> None:
        scores = self.method.scores()
        for n, s in scores.items():
            if not torch.isfinite(s).all():
                raise FloatingPointError(f"non-finite importance scores in {n} at mask update {len(self.history)}")
        unit_scores = self.layout.aggregate(scores)
        keep = select_units(self.layout, unit_scores, self.unit_keep, self._progress(sparsity), sparsity,
                            self.structured)
        removed_now = [float(unit_scores[g.key][self.unit_keep[g.key] & ~keep[g.key]].max()) / g.unit_size
                       for g in self.layout.groups if bool((self.unit_keep[g.key] & ~keep[g.key]).any())]
        if removed_now:  # logged as the threshold: the highest score per weight among the units removed now
            self.last_threshold = max(removed_now)
        new_masks = self.layout.expand(keep, self.masks)
        if self.compound and sparsity > self.structured_target:  # then single weights of the remaining units
            live = {n: m & self.masks[n] for n, m in new_masks.items()}
            new_masks, self.last_threshold = global_masks(live_only(scores, live), sparsity)
        if optimizer is not None:
            self._clear_optimizer_state(new_masks, optimizer)
        self.set_masks(new_masks)
        self._selected_for = self._targets(sparsity)

    def set_masks(self, masks: dict[str, torch.Tensor]) -> None:
        super().set_masks(masks)
        self.unit_keep = self.layout.units_from_masks(masks)

    def cut_to(self, sparsity: float) -> None:
        raise NotImplementedError("structured granularity has no one-shot magnitude cut")

    # -- the end: a smaller dense model ---------------------------------------------------------------------------
    def finish(self) -> None:
        """Cut the removed units out of the model (its weights are masked already)."""
        if self.structure is not None:
            return
        before = sum(p.numel() for p in self.model.parameters())
        self.structure = remove_units(self.model, self.unit_keep)
        self.structure["parameters"] = {"before": before, "after": sum(p.numel() for p in self.model.parameters())}
        self.structure["heads_before"] = sum(g.count for g in self.layout.groups if g.kind == "head")
        self.structure["ffn_units_before"] = sum(g.count for g in self.layout.groups if g.kind == "ffn")
        self.structure["target_sparsity"] = self.target_sparsity  # with keep fractions: what they imply

    def report(self) -> dict:
        """Before `finish`, measured zeros; after it, zeros and removed weights against the original prunable
        weights (as greedy forward selection reports), with the kept structure."""
        if self.structure is None:
            return super().report()
        sparsity = structured_sparsity({"modules_before": self.modules_before}, self.model, self.patterns)
        return {**sparsity, "structure": dict(self.structure)}

    # -- state ----------------------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        state = super().state_dict()
        state["tensors"].update({f"unit_keep.{k}": v.to(torch.uint8) for k, v in self.unit_keep.items()})
        state["meta"]["selected_for"] = self._selected_for
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        saved = {k[len("unit_keep."):]: v.to("cpu", torch.bool) for k, v in state["tensors"].items()
                 if k.startswith("unit_keep.")}
        if any(not torch.equal(saved[k], v) for k, v in self.unit_keep.items()):
            raise ValueError("checkpoint's unit flags disagree with its masks")
        self._selected_for = state["meta"]["selected_for"]
