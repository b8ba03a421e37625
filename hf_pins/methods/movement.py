"""Movement pruning (Sanh, Wolf & Rush, NeurIPS 2020): keep the weights that move away from zero.

Sanh et al. learn one score `S` per weight through the straight-through estimator: the forward pass uses
`W * TopK(S)` and `dL/dS = dL/dW' * W`, so each gradient step on the scores adds `-theta * g`. Here the score is that
sum, taken at the weights the forward pass used (`theta(t)`, before the optimizer's step) and the gradient of the whole
objective (task loss plus self-regularization):  `S(t) = sum_{s <= t} -theta(s) * g(s)`, starting from 0.

* `lr_weighted: false` (default): the plain sum. A constant score learning rate only rescales it and leaves
  the ranking unchanged.
* `lr_weighted: true`: each term times the weight's learning rate at that step, as when the scores are trained
  by SGD on the same learning-rate schedule as the weights.
* `score_update: adam` (the reference code, which trains the scores with Adam): each term is replaced by
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

from dataclasses import dataclass, field

import torch

from ..pruning.sharding import local
from .base import Paper, PruningMethod, check_settings, learning_rates

SCORE_UPDATES = ("sum", "adam")
ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8
SANH_2020 = Paper(authors="Sanh, Wolf & Rush", title="Movement Pruning: Adaptive Sparsity by Fine-Tuning",
                  venue="NeurIPS 2020", url="https://arxiv.org/abs/2005.07683")


@dataclass
class MovementSettings:
    lr_weighted: bool = field(default=False, metadata={
        "help": "Each step's -theta * g is multiplied by the weight's learning rate (scores trained on the weights' "
                "schedule) instead of summed plainly."})
    score_update: str = field(default="sum", metadata={
        "help": "'sum' (the paper's plain sum of -theta * g) or 'adam' (the reference code's scores trained by Adam)."})

    def __post_init__(self):
        check_settings(self, {"score_update": (self.score_update in SCORE_UPDATES, f"one of {', '.join(SCORE_UPDATES)}")})


class Movement(PruningMethod):
    name = "movement"
    display_name = "movement pruning"
    paper = SANH_2020
    summary = "Weights that move towards zero during fine-tuning (learned scores accumulating `-theta * g`) are pruned."
    settings_class = MovementSettings

    def __init__(self, params, args=None, settings=None):
        super().__init__(params, args, settings)
        self.lr_weighted = self.settings.lr_weighted
        self.update = self.settings.score_update
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
