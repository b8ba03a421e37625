"""The shared machinery of unstructured pruning: schedule, masks, thresholds, state and report.

A `Pruner` holds one keep-mask per prunable weight (the mask lives here, not in the model, so the model's own state
dict and `save_pretrained` layout are unchanged; the masks travel in each checkpoint's `pruning_state.safetensors`).

Mask modes:
* `persistent` (default): a pruned weight stays exactly zero. Its gradient is masked before every optimizer step and
  its optimizer moments are cleared when it is pruned, which keeps it at zero under Adam, AdamW and SGD; with any other
  optimizer the weight is also re-multiplied by the mask after every step.
* `regrow` (the PINS/PLATON reference code): weights are zeroed at each mask update only, and may move away from zero
  until the next one; in the final phase masks are recomputed every step, so the run still ends at the target.
* `behind_mask` (movement pruning's straight-through masking, Sanh et al.): the model holds `W * M`, so the forward
  pass, checkpoints and exports see zeros, but a pruned weight's value is kept behind the mask (`hidden`), frozen (its
  gradient is masked). Scorers see the dense weight `W` (`Scorer.theta`), so the score of a pruned weight keeps moving
  with `-W * dL/dW'`, and a weight whose score climbs back into the kept set returns with its old value.

Sharded weights (FSDP2): masks, multipliers and scores cover this process's shard; thresholds and counts are reduced
over the shards' process group (`sharding.py`), so every shard is pruned as one process holding all weights would.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .masks import global_masks, live_only, per_matrix_masks
from .schedule import CubicSchedule
from .sharding import all_reduce_sum, global_count, local, shard_group, shard_position
from .targets import DEFAULT_PRUNABLE_PATTERNS, find_prunable

MASK_MODES = ("persistent", "regrow", "behind_mask")
MASKED_GRADIENTS = ("persistent", "behind_mask")  # modes whose pruned weights get no update
THRESHOLDS = ("global", "per_matrix")


# Optimizers whose update of a weight with zero gradient and zero state is exactly zero (decoupled or L2 weight decay of
# a zero weight is zero too): with masked gradients and cleared moments they keep pruned weights at 0 on their own.
ZERO_PRESERVING = (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD)


def keeps_zeros(optimizer) -> bool:
    """Whether the per-step re-mask can be skipped (it is one more pass over every prunable weight)."""
    inner = getattr(optimizer, "optimizer", optimizer)  # accelerate wraps the optimizer
    return type(inner) in ZERO_PRESERVING


class Pruner:
    granularity = "unstructured"  # what the masks remove: single weights (`StructuredPruner`: whole units)

    def __init__(
        self,
        model: nn.Module,
        method: str | type = "pins",
        target_sparsity: float = 0.8,
        patterns=DEFAULT_PRUNABLE_PATTERNS,
        mask_mode: str = "persistent",
        threshold: str = "global",
        args: Any = None,
        settings: Any = None,
    ):
        from ..methods import get_method

        method_cls = get_method(method) if isinstance(method, str) else method
        if mask_mode not in MASK_MODES:
            raise ValueError(f"mask_mode must be one of {MASK_MODES}, got {mask_mode!r}")
        if threshold not in THRESHOLDS:
            raise ValueError(f"threshold must be one of {THRESHOLDS}, got {threshold!r}")
        self.params = find_prunable(model, patterns)
        if not self.params:
            raise ValueError(f"no prunable weights match {list(patterns)}")
        self.num_weights = sum(p.numel() for p in self.params.values())  # a DTensor counts all its shards
        self.group = shard_group(self.params)
        self.target_sparsity = target_sparsity
        self.mask_mode, self.threshold_mode = mask_mode, threshold
        self.method = method_cls(self.params, args, settings)
        self.masks = {n: torch.ones_like(local(p), dtype=torch.bool) for n, p in self.params.items()}
        # Float copies of the masks: multiplying by a float tensor is an order of magnitude faster than by a bool one.
        self._multipliers = {n: torch.ones_like(local(p), dtype=p.dtype) for n, p in self.params.items()}
        self._num_pruned = 0
        # behind_mask: the values of pruned weights (zero elsewhere), so that the dense weight is `theta + hidden`.
        self.hidden = None
        if mask_mode == "behind_mask":
            self.hidden = {n: torch.zeros_like(local(p)) for n, p in self.params.items()}
            self.method.hidden = self.hidden
        self.schedule: CubicSchedule | None = None
        self.last_threshold = float("nan")
        self.history: list[dict] = []  # one entry per mask update: step, scheduled and measured sparsity

    # -- schedule -------------------------------------------------------------------------------------------------
    def set_schedule(self, schedule: CubicSchedule) -> None:
        self.schedule = schedule


    # -- the two per-step hooks -----------------------------------------------------------------------------------
    @torch.no_grad()
    def before_optimizer_step(self, step: int, optimizer: torch.optim.Optimizer | None) -> None:
        # Scores first: a straight-through score needs `dL/dW'` at pruned positions too (elsewhere it is unchanged).
        self.method.before_step(optimizer)
        if self.mask_mode in MASKED_GRADIENTS:
            for n, p in self.params.items():
                if p.grad is not None:
                    local(p.grad).mul_(self._multipliers[n])

    @torch.no_grad()
    def after_optimizer_step(self, step: int, optimizer: torch.optim.Optimizer | None) -> bool:
        """Score this step, update the masks when the schedule says so. Returns whether the masks changed."""
        self.method.after_step(optimizer)
        if not self.method.schedules_masks:
            return False  # gRDA, or fine-tuning after structured selection: no mask is forced
        schedule = self.schedule
        if schedule is None:
            raise RuntimeError("Pruner.set_schedule must be called before training")
        if schedule.closes_window(step):
            self.method.end_window()
        updated = False
        if schedule.updates_mask(step) and self._mask_would_change(schedule.sparsity(step)):
            self.update_masks(schedule.sparsity(step), optimizer)
            self.history.append({"step": step + 1, "target_sparsity": schedule.sparsity(step), "sparsity": self.sparsity()})
            updated = True
        if updated or (self.mask_mode in MASKED_GRADIENTS and not keeps_zeros(optimizer)):
            self.apply_masks()
        return updated

    # -- masks ----------------------------------------------------------------------------------------------------
    def _mask_would_change(self, sparsity: float) -> bool:
        """With persistent masks a pruned weight never returns, so a mask at an unchanged sparsity is the same mask:
        the final phase's per-step recomputation only matters when weights may regrow."""
        if self.mask_mode != "persistent":
            return True
        return int(round(sparsity * self.num_weights)) != self._num_pruned

    @torch.no_grad()
    def update_masks(self, sparsity: float, optimizer: torch.optim.Optimizer | None = None) -> None:
        scores = self.method.scores()
        for n, s in scores.items():
            if not torch.isfinite(s).all():
                raise FloatingPointError(f"non-finite importance scores in {n} at step {len(self.history)} of the mask updates")
        if self.mask_mode == "persistent":
            scores = live_only(scores, self.masks)
        select = global_masks if self.threshold_mode == "global" else per_matrix_masks
        new_masks, self.last_threshold = select(scores, sparsity, self.group)
        if self.hidden is not None:
            self._move_behind_mask(new_masks)
        if optimizer is not None:
            self._clear_optimizer_state(new_masks, optimizer)
        self.set_masks(new_masks)

    def _move_behind_mask(self, new_masks: dict[str, torch.Tensor]) -> None:
        """Weights pruned now keep their value behind the mask; weights kept again get theirs back."""
        for n, p in self.params.items():
            weight, hidden, old, new = local(p), self.hidden[n], self.masks[n], new_masks[n]
            pruned_now, returning = old & ~new, ~old & new
            hidden[pruned_now] = weight[pruned_now]
            weight[returning] = hidden[returning]
            hidden[returning] = 0

    def set_masks(self, masks: dict[str, torch.Tensor]) -> None:
        """Adopt these keep-masks (the model's weights are not touched: `apply_masks` zeroes them)."""
        self.masks = masks
        for n, m in masks.items():
            self._multipliers[n].copy_(m)
        device = next(iter(masks.values())).device
        self._num_pruned = global_count(sum(int((~m).sum()) for m in masks.values()), self.group, device)

    @torch.no_grad()
    def _clear_optimizer_state(self, new_masks: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer) -> None:
        """Zero the optimizer's per-weight state (moments, momentum) of weights pruned now, so they cannot revive."""
        for n, p in self.params.items():
            state = optimizer.state.get(p, {})
            for value in state.values():
                if torch.is_tensor(value) and value.shape == p.shape:
                    local(value).mul_(new_masks[n].to(value.dtype))

    @torch.no_grad()
    def apply_masks(self) -> None:
        for n, p in self.params.items():
            local(p).mul_(self._multipliers[n])

    @torch.no_grad()
    def cut_to(self, sparsity: float) -> None:
        """One magnitude cut to exactly `sparsity` (same ranking scope); for the methods without a schedule."""
        scores = {n: local(p).detach().abs().float() for n, p in self.params.items()}
        select = global_masks if self.threshold_mode == "global" else per_matrix_masks
        masks, self.last_threshold = select(scores, sparsity, self.group)
        self.set_masks(masks)
        self.apply_masks()

    def finish(self) -> None:
        """After training, once the final model's masks are applied (`StructuredPruner` removes its units here)."""

    def sparsity(self) -> float:
        """Fraction of pruned positions according to the masks (measured zeros for methods without a schedule)."""
        if not self.method.schedules_masks:
            return self.report()["overall"]
        return self._num_pruned / self.num_weights

    def report(self) -> dict:
        """`{"overall", "modules"}`: measured zeros in the weights themselves, not the masks."""
        names = list(self.params)
        zeros = torch.stack([(local(self.params[n]) == 0).sum() for n in names]).to(torch.int64)
        zeros = all_reduce_sum(self.group)(zeros).tolist()
        modules = {n: z / self.params[n].numel() for n, z in zip(names, zeros)}
        return {"overall": sum(zeros) / self.num_weights, "modules": modules}

    # -- state ----------------------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        scorer_state = self.method.state_dict()
        tensors = {f"mask.{n}": m.to(torch.uint8) for n, m in self.masks.items()}
        if self.hidden is not None:
            tensors.update({f"hidden.{n}": h for n, h in self.hidden.items()})
        tensors.update({f"scorer.{k}": v for k, v in scorer_state["tensors"].items()})
        meta = {
            "method": self.method.name,
            "granularity": self.granularity,
            "scorer": scorer_state["meta"],
            "last_threshold": self.last_threshold if math.isfinite(self.last_threshold) else None,
            "history": self.history,
            "shard": shard_position(self.group),  # a sharded run's state is per process: [rank, world size]
        }
        return {"tensors": tensors, "meta": meta}

    def load_state_dict(self, state: dict) -> None:
        tensors, meta = state["tensors"], state["meta"]
        if meta["method"] != self.method.name:
            raise ValueError(f"checkpoint was pruned with {meta['method']!r}, this run uses {self.method.name!r}")
        granularity = meta.get("granularity", "unstructured")
        if granularity != self.granularity:
            raise ValueError(f"checkpoint was pruned with granularity {granularity!r}, this run uses {self.granularity!r}")
        shard = shard_position(self.group)
        if meta.get("shard") != shard:
            raise ValueError(f"checkpoint holds the pruning state of shard {meta.get('shard')} ([rank, processes]); "
                             f"this process is shard {shard}: resume with the same number of processes")
        self.set_masks({n: tensors[f"mask.{n}"].to(torch.bool).to(self.params[n].device) for n in self.masks})
        if self.hidden is not None:
            for n, h in self.hidden.items():
                h.copy_(tensors[f"hidden.{n}"])
        self.method.load_state_dict(
            {"tensors": {k[len("scorer."):]: v for k, v in tensors.items() if k.startswith("scorer.")}, "meta": meta["scorer"]}
        )
        self.last_threshold = float("nan") if meta["last_threshold"] is None else meta["last_threshold"]
        self.history = list(meta["history"])
