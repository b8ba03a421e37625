"""Movement pruning (Sanh, Wolf & Rush, NeurIPS 2020): keep the weights that move away from zero.

Sanh et al. learn one score `S` per weight through the straight-through estimator: the forward pass uses
`W * TopK(S)` and `dL/dS = dL/dW' * W`, so each gradient step on the scores adds `-theta * g`. Here the score is that
sum, taken at the weights the forward pass used (`theta(t)`, before the optimizer's step) and the gradient of the whole
objective (task loss plus self-regularization):  `S(t) = sum_{s <= t} -theta(s) * g(s)`, starting from 0.

* `movement_lr_weighted=False` (default): the plain sum. A constant score learning rate only rescales it and leaves
  the ranking unchanged.
* `movement_lr_weighted=True`: each term times the weight's learning rate at that step, as when the scores are trained
  by SGD on the same learning-rate schedule as the weights.
* `movement_score_update="adam"` (the reference code, which trains the scores with Adam): each term is replaced by
  Adam's normalised step on the score gradient `theta * g` (beta1 0.9, beta2 0.999, eps 1e-8, unit step), so every
  score moves by about 1 per step in the direction its weight consistently moves: the ranking follows how consistently
  a weight moves away from or towards zero, not how large `theta * g` is. The default `"sum"` is the paper's
  `S = -sum theta * g` (gradient descent on the scores).

The kept set is the schedule's top fraction; `pruning.threshold` decides the ranking scope (`per_matrix` is the paper's
per-matrix top-k, `global` one threshold over all matrices). `pruning.mask_mode` decides what happens to a pruned
weight: `behind_mask` is the paper's (its value is kept behind the mask, its score keeps moving with `-W * dL/dW'`, and
it returns when the score climbs back); with `persistent` masks it is zeroed for good, and its score stops moving.
"""

from __future__ import annotations

import torch

from .base import Scorer, learning_rates
from ..sharding import local

SCORE_UPDATES = ("sum", "adam")
ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8


class MovementScorer(Scorer):
    name = "movement"

    def __init__(self, params, args=None):
        super().__init__(params, args)
        self.lr_weighted = bool(getattr(args, "movement_lr_weighted", False))
        self.update = getattr(args, "movement_score_update", "sum")
        if self.update not in SCORE_UPDATES:
            raise ValueError(f"movement_score_update must be one of {SCORE_UPDATES}, got {self.update!r}")
        zeros = lambda: {n: torch.zeros(local(p).shape, dtype=torch.float32, device=p.device) for n, p in params.items()}  # noqa: E731
        self.score = zeros()
        if self.update == "adam":
            self.adam_m, self.adam_v, self.adam_steps = zeros(), zeros(), 0

    def movement(self, optimizer) -> dict[str, torch.Tensor]:
        """This step's `-theta(t) * g(t)` per matrix (times the learning rate when asked; Adam-normalised with "adam")."""
        lrs = learning_rates(optimizer) if self.lr_weighted else {}
        steps = {}
        for name, p in self.params.items():
            if p.grad is None:
                continue
            step = -self.theta(name).float() * local(p.grad).float()
            if self.lr_weighted:
                step.mul_(lrs.get(id(p), 0.0))
            steps[name] = step
        if self.update == "adam" and steps:
            self.adam_steps += 1
            for name, step in steps.items():
                steps[name] = self._adam_step(name, step)
        return steps

    def _adam_step(self, name: str, step: torch.Tensor) -> torch.Tensor:
        """Adam's step on the score gradient `-step` (descent), with unit learning rate."""
        m, v, t = self.adam_m[name], self.adam_v[name], self.adam_steps
        m.mul_(ADAM_BETAS[0]).add_(step, alpha=1 - ADAM_BETAS[0])
        v.mul_(ADAM_BETAS[1]).addcmul_(step, step, value=1 - ADAM_BETAS[1])
        m_hat = m / (1 - ADAM_BETAS[0] ** t)
        v_hat = v / (1 - ADAM_BETAS[1] ** t)
        return m_hat / (v_hat.sqrt() + ADAM_EPS)

    @torch.no_grad()
    def before_step(self, optimizer) -> None:
        for name, step in self.movement(optimizer).items():
            self.score[name].add_(step)

    def scores(self) -> dict[str, torch.Tensor]:
        return {n: s.clone() for n, s in self.score.items()}

    def state_dict(self) -> dict:
        tensors = {f"score.{n}": s for n, s in self.score.items()}
        if self.update == "adam":
            tensors.update({f"adam_m.{n}": t for n, t in self.adam_m.items()})
            tensors.update({f"adam_v.{n}": t for n, t in self.adam_v.items()})
            return {"tensors": tensors, "meta": {"adam_steps": self.adam_steps}}
        return {"tensors": tensors, "meta": {}}

    def load_state_dict(self, state: dict) -> None:
        for n, s in self.score.items():
            s.copy_(state["tensors"][f"score.{n}"])
        if self.update == "adam":
            for n in self.score:
                self.adam_m[n].copy_(state["tensors"][f"adam_m.{n}"])
                self.adam_v[n].copy_(state["tensors"][f"adam_v.{n}"])
            self.adam_steps = int(state["meta"]["adam_steps"])
