"""The one interface every importance-based pruning method implements.

A scorer only says how important each prunable weight is (higher = keep) and what state it keeps between steps. The
schedule, thresholds, persistent masks, checkpointing and reporting are the `Pruner`'s job and written once.

The pruner calls, once per optimizer step:
  `before_step(optimizer)`: gradients are final (accumulated, clipped, synchronized across processes), parameters are
  still `theta(t)`;
  `after_step(optimizer)`: parameters are the optimizer's `theta(t+1)`, gradients still those of step t;
  `end_window()`: at the end of each score window; `scores()` when a mask is due.

A method that prunes by other means (gRDA through its optimizer, greedy forward selection before training) sets
`schedules_masks = False`: the pruner then forces no sparsity and reports the zeros it measures. `structure_fixed` says
whether the sparsity is settled before training starts (then every dev evaluation is a candidate for the final model).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from ..sharding import local, shard_group
from ..smoothing import SmoothedScore


class Scorer:
    name: ClassVar[str] = ""
    schedules_masks: ClassVar[bool] = True
    structure_fixed: ClassVar[bool] = False

    def __init__(self, params: dict[str, nn.Parameter], args: Any = None):
        self.params = params
        self.args = args
        self.group = shard_group(params)  # None unless the weights are sharded (then scores cover this shard)
        self.hidden: dict[str, torch.Tensor] | None = None  # set by the Pruner with mask_mode="behind_mask"

    def theta(self, name: str) -> torch.Tensor:
        """The weight as the method sees it: the model's (this shard's) values, plus the values kept behind the mask
        when pruned weights are held there (they are zero in the model)."""
        weight = local(self.params[name])
        return weight if self.hidden is None else weight + self.hidden[name]

    def before_step(self, optimizer: torch.optim.Optimizer | None) -> None:
        pass

    def after_step(self, optimizer: torch.optim.Optimizer | None) -> None:
        pass

    def end_window(self) -> None:
        pass

    def scores(self) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def state_dict(self) -> dict:
        """`{"tensors": {name: Tensor}, "meta": {json-able}}`, saved with every checkpoint."""
        return {"tensors": {}, "meta": {}}

    def load_state_dict(self, state: dict) -> None:
        pass


def learning_rates(optimizer: torch.optim.Optimizer | None) -> dict[int, float]:
    """The learning rate each parameter (by id) is updated with at this step."""
    if optimizer is None:
        return {}
    return {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}


class SmoothedScorer(Scorer):
    """A scorer whose raw per-step score is smoothed over windows with its uncertainty (PINS, PLATON):
    subclasses add raw scores to `self.smoothed`; ranking, windows and state are shared here."""

    def __init__(self, params, args=None):
        super().__init__(params, args)
        shapes = {n: local(p).shape for n, p in params.items()}
        device = next(iter(params.values())).device if params else None
        self.smoothed = SmoothedScore(shapes, getattr(args, "score_beta1", 0.85), getattr(args, "score_beta2", 0.95), device)
        self._scratch: dict[torch.Size, torch.Tensor] = {}  # one reusable buffer per matrix shape

    def scratch(self, name: str) -> torch.Tensor:
        """A reusable float32 buffer of the matrix's shape (shared by matrices of one shape; its contents are
        overwritten by the next use)."""
        window = self.smoothed.window_sum[name]
        buffer = self._scratch.get(window.shape)
        if buffer is None:
            buffer = self._scratch[window.shape] = torch.empty_like(window)
        return buffer

    def add_product(self, name: str, a: torch.Tensor, b: torch.Tensor, *, absolute: bool, sign: float = 1.0) -> None:
        """Add `sign * a * b` (its magnitude when `absolute`) to this window's raw score without a temporary per
        matrix: it runs on every prunable weight at every step. `b` may be `scratch(name)` itself."""
        window = self.smoothed.window_sum[name]
        if not absolute:
            window.addcmul_(a, b, value=sign)
            return
        window.add_(torch.mul(a, b, out=self.scratch(name)).abs_())

    def end_window(self) -> None:
        self.smoothed.close_window()

    def scores(self) -> dict[str, torch.Tensor]:
        return {n: self.smoothed.score(n) for n in self.params}

    def state_dict(self) -> dict:
        return self.smoothed.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.smoothed.load_state_dict(state)
