"""Movement pruning (Sanh, Wolf & Rush, NeurIPS 2020): keep the weights that move away from zero.

Sanh et al. learn one score `S` per weight through the straight-through estimator: the forward pass uses
`W * TopK(S)` and `dL/dS = dL/dW' * W`, so each gradient step on the scores adds `-theta * g`. Here the score is that
sum, taken at the weights the forward pass used (`theta(t)`, before the optimizer's step) and the gradient of the whole
objective (task loss plus self-regularization):  `S(t) = sum_{s <= t} -theta(s) * g(s)`, starting from 0.

* `movement_lr_weighted=False` (default): the plain sum. A constant score learning rate only rescales it and leaves
  the ranking unchanged.
* `movement_lr_weighted=True`: each term times the weight's learning rate at that step, as when the scores are trained
  by SGD on the same learning-rate schedule as the weights (the reference code's setup).

The kept set is the schedule's top fraction; `pruning.threshold` decides the ranking scope (`per_matrix` is the paper's
per-matrix top-k, `global` one threshold over all matrices). Difference to the paper: a pruned weight is zeroed (with
persistent masks it stays zero), so its score stops moving; the paper keeps the dense weight behind the mask.
"""

from __future__ import annotations

import torch

from .base import Scorer, learning_rates


class MovementScorer(Scorer):
    name = "movement"

    def __init__(self, params, args=None):
        super().__init__(params, args)
        self.lr_weighted = bool(getattr(args, "movement_lr_weighted", False))
        self.score = {n: torch.zeros(p.shape, dtype=torch.float32, device=p.device) for n, p in params.items()}

    def movement(self, optimizer) -> dict[str, torch.Tensor]:
        """This step's `-theta(t) * g(t)` per matrix (times the learning rate when asked)."""
        lrs = learning_rates(optimizer) if self.lr_weighted else {}
        steps = {}
        for name, p in self.params.items():
            if p.grad is None:
                continue
            step = -p.float() * p.grad.float()
            if self.lr_weighted:
                step.mul_(lrs.get(id(p), 0.0))
            steps[name] = step
        return steps

    @torch.no_grad()
    def before_step(self, optimizer) -> None:
        for name, step in self.movement(optimizer).items():
            self.score[name].add_(step)

    def scores(self) -> dict[str, torch.Tensor]:
        return {n: s.clone() for n, s in self.score.items()}

    def state_dict(self) -> dict:
        return {"tensors": {f"score.{n}": s for n, s in self.score.items()}, "meta": {}}

    def load_state_dict(self, state: dict) -> None:
        for n, s in self.score.items():
            s.copy_(state["tensors"][f"score.{n}"])
