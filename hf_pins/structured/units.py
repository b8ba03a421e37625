"""Structured units of a BERT-layout encoder for gradual structured pruning: attention heads and FFN units.

A head of layer l is the rows of the query, key and value matrices for its slice of the hidden size and the matching
columns of the attention output matrix; an FFN unit is one row of the FFN input matrix and the matching column of the
output matrix. Removing a unit zeroes exactly those weights, and since its output columns are zero it contributes
nothing to the residual stream (its biases upstream of the output matrix are then irrelevant), so the masked model
computes what the model with the unit physically removed computes (`surgery.remove_units`).

`UnitLayout` maps between per-weight tensors (the `Pruner`'s masks, a method's scores) and per-unit vectors: a unit's
score is the sum of its weights' scores (the method's own, smoothed per weight as in unstructured pruning), and a
unit's keep flag expands to a keep-mask over its weights. `select_units` chooses which units to remove for a target.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch
from torch import nn

from ..methods.base import check_settings
from .surgery import encoder_layers, head_shape

BUDGETS = ("global", "per_layer")
GRANULARITIES = ("unstructured", "structured")
THEN = ("none", "unstructured")


@dataclass
class StructuredSettings:
    """`pruning.structured_args`: how gradual structured pruning (`pruning.granularity: structured`) spends its
    budget. With no keep fraction, `target_sparsity` is the fraction of the encoder's prunable weights removed."""

    heads_keep: Optional[float] = field(default=None, metadata={
        "help": "Fraction of attention heads kept at the end, in (0, 1]; with ffn_keep, the keep fractions replace "
                "target_sparsity (an unset one keeps every unit of its kind)."})
    ffn_keep: Optional[float] = field(default=None, metadata={
        "help": "Fraction of FFN units kept at the end, in (0, 1]."})
    budget: str = field(default="per_layer", metadata={
        "help": "'per_layer' (every layer keeps the same fraction of its heads and of its FFN units: a uniform "
                "model, the full speed-up on any runtime) or 'global' (units compete across layers: uneven layers, a "
                "layer may lose every head; a BertConfig has one intermediate_size, so narrower FFN layers are stored "
                "zero-padded to the widest, which ONNX Runtime still computes)."})
    then: str = field(default="none", metadata={
        "help": "'none', or 'unstructured': once the keep fractions are reached, the same scores prune single "
                "weights of the remaining units until target_sparsity (of the original prunable weights)."})

    def __post_init__(self):
        check_settings(self, {
            "heads_keep": (self.heads_keep is None or 0.0 < self.heads_keep <= 1.0, "null or a number in (0, 1]"),
            "ffn_keep": (self.ffn_keep is None or 0.0 < self.ffn_keep <= 1.0, "null or a number in (0, 1]"),
            "budget": (self.budget in BUDGETS, f"one of {', '.join(BUDGETS)}"),
            "then": (self.then in THEN, f"one of {', '.join(THEN)}"),
        })
        check_settings(self, {"then": (self.then == "none" or self.by_kind, "'none' unless heads_keep or ffn_keep is "
                                       "set (with then, target_sparsity is the final sparsity of the whole run)")})

    @property
    def by_kind(self) -> bool:
        """Whether the keep fractions (not `target_sparsity`) say how many units of each kind remain."""
        return self.heads_keep is not None or self.ffn_keep is not None

    def keep(self, kind: str) -> float:
        value = self.heads_keep if kind == "head" else self.ffn_keep
        return 1.0 if value is None else value


@dataclass(frozen=True)
class UnitGroup:
    """The units of one kind in one layer: `parts` are `(weight name, axis, block)`: the unit i owns indices
    `[i * block, (i + 1) * block)` along `axis` (0: rows, 1: columns) of that weight."""

    kind: str  # "head" or "ffn"
    layer: int
    count: int
    parts: tuple[tuple[str, int, int], ...]
    unit_size: int  # weights per unit

    @property
    def key(self) -> str:
        return f"{self.kind}.{self.layer}"


class UnitLayout:
    def __init__(self, groups: list[UnitGroup]):
        self.groups = groups

    @classmethod
    def from_model(cls, model: nn.Module, params: dict[str, nn.Parameter]) -> UnitLayout:
        """The heads and FFN units of every encoder layer; `params` (the prunable weights) must be exactly their
        weights, since structured pruning removes only whole units."""
        layers = encoder_layers(model)
        names = {id(m): n for n, m in model.named_modules()}
        groups, owned = [], set()
        for index, layer in enumerate(layers):
            heads, size = head_shape(layer)
            attn = layer.attention
            head_parts = [(attn.self.query, 0, size), (attn.self.key, 0, size), (attn.self.value, 0, size),
                          (attn.output.dense, 1, size)]
            ffn_parts = [(layer.intermediate.dense, 0, 1), (layer.output.dense, 1, 1)]
            for kind, count, parts in (("head", heads, head_parts), ("ffn", layer.intermediate.dense.out_features,
                                                                    ffn_parts)):
                named = tuple((f"{names[id(m)]}.weight", axis, block) for m, axis, block in parts)
                unit_size = sum(m.weight.numel() for m, _, _ in parts) // count
                groups.append(UnitGroup(kind, index, count, named, unit_size))
                owned.update(n for n, _, _ in named)
        missing, extra = sorted(owned - set(params)), sorted(set(params) - owned)
        if missing or extra:
            problem = (f"{missing[0]} is not prunable" if missing else f"{extra[0]} is no part of a head or FFN unit")
            raise ValueError(f"structured granularity removes whole heads and FFN units, so prunable_modules must "
                             f"select exactly the attention and FFN matrices of every encoder layer: {problem}")
        return cls(groups)

    @property
    def total_weights(self) -> int:
        return sum(g.count * g.unit_size for g in self.groups)

    def removed_fraction(self, settings: StructuredSettings) -> float:
        """The fraction of the unit weights that the keep fractions remove (0 without keep fractions)."""
        removed = 0
        for kind in ("head", "ffn"):
            groups = [g for g in self.groups if g.kind == kind]
            if settings.budget == "per_layer":
                removed += sum(round((1.0 - settings.keep(kind)) * g.count) * g.unit_size for g in groups)
            else:
                removed += round((1.0 - settings.keep(kind)) * sum(g.count for g in groups)) * groups[0].unit_size
        return removed / self.total_weights if settings.by_kind else 0.0

    def check_compound(self, settings: StructuredSettings, target_sparsity: float) -> None:
        if settings.then == "unstructured" and not self.removed_fraction(settings) < target_sparsity:
            raise ValueError(f"structured_args.then unstructured: target_sparsity {target_sparsity} must exceed the "
                             f"{self.removed_fraction(settings):.4f} of the prunable weights that heads_keep and "
                             f"ffn_keep remove")

    def aggregate(self, scores: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per-unit sums of per-weight scores: `{group key: (count,) float64}`."""
        out = {}
        for g in self.groups:
            total = torch.zeros(g.count, dtype=torch.float64)
            for name, axis, block in g.parts:
                s = scores[name].detach().double().cpu()
                if axis == 0:
                    s = s.reshape(g.count, block, -1).sum((1, 2))
                else:
                    s = s.reshape(s.shape[0], g.count, block).sum((0, 2))
                total += s
            out[g.key] = total
        return out

    def expand(self, keep: dict[str, torch.Tensor], like: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per-weight keep-masks (shaped and placed as `like`) from per-unit keep flags."""
        masks = {}
        for g in self.groups:
            flags = keep[g.key]
            for name, axis, block in g.parts:
                ref = like[name]
                per_index = flags.repeat_interleave(block).to(ref.device)
                masks[name] = (per_index[:, None] if axis == 0 else per_index[None, :]).expand(ref.shape).clone()
        return masks

    def units_from_masks(self, masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per-unit keep flags read off per-weight masks: a unit is kept while any of its weights is."""
        keep = {}
        for g in self.groups:
            flags = torch.zeros(g.count, dtype=torch.bool)
            for name, axis, block in g.parts:
                m = masks[name].detach().cpu()
                m = m.reshape(g.count, -1).any(1) if axis == 0 else m.reshape(m.shape[0], g.count, block).any(2).any(0)
                flags |= m
            keep[g.key] = flags
        return keep


def select_units(layout: UnitLayout, unit_scores: dict[str, torch.Tensor], keep: dict[str, torch.Tensor],
                 progress: float, sparsity: float, settings: StructuredSettings) -> dict[str, torch.Tensor]:
    """New keep flags: the units kept now minus the lowest-scoring live ones, enough to reach the target.

    Removed units stay removed (they are never candidates). Target: `sparsity` of all unit weights (units ranked
    by score per weight, so the budget, counted in weights, goes where it costs least per weight; a unit is taken
    when it brings the removed count closer to the target), or with keep fractions `progress` (0 to 1 along the
    schedule) times the units of each kind to remove. `budget: per_layer` applies the same within every layer.
    """
    new = {k: v.clone() for k, v in keep.items()}
    if settings.budget == "per_layer":
        pools = [[g] for g in layout.groups]
    elif settings.by_kind:
        pools = [[g for g in layout.groups if g.kind == kind] for kind in ("head", "ffn")]
    else:
        pools = [layout.groups]
    for pool in pools:
        by_count = settings.by_kind or settings.budget == "per_layer"  # one kind in the pool: count units
        if by_count:
            fraction = progress * (1.0 - settings.keep(pool[0].kind)) if settings.by_kind else sparsity
            target = int(round(fraction * sum(g.count for g in pool)))
        else:
            target = int(round(sparsity * sum(g.count * g.unit_size for g in pool)))
        removed = sum(int((~new[g.key]).sum()) * (1 if by_count else g.unit_size) for g in pool)
        candidates = [(float(unit_scores[g.key][i]) / g.unit_size, g.layer, g.kind, i, g) for g in pool
                      for i in range(g.count) if new[g.key][i]]
        candidates.sort(key=lambda c: c[:4])  # ties: lower layer, heads before FFN units, lower index
        for _, _, _, i, g in candidates:
            if removed >= target:
                break
            size = 1 if by_count else g.unit_size
            if 2 * (removed + size) <= 2 * target + size:  # closer to the target with it than without
                new[g.key][i] = False
                removed += size
    return new
