"""Soft movement pruning (Sanh et al. 2020) on the sparsity schedule: movement scores under an L1 penalty.

In the paper, soft movement adds `lambda * R(S)` to the loss and keeps every weight whose score passes a fixed
threshold, so lambda, not a schedule, decides how sparse the model ends. Here the mask is still the cubic schedule's top
fraction with its exact final cut, so the run lands on `pruning.target_sparsity`; "soft" changes the scores only.

The penalty and how it enters the score update. With the straight-through gradient `theta * g` of the task loss with
respect to `S` and the penalty `lambda_t * |S|_1`, one proximal-gradient step (unit score step size) per optimizer step:

    S <- soft_threshold(S - theta * g, lambda_t),   soft_threshold(x, l) = sign(x) * max(|x| - l, 0),

the exact minimiser of `lambda_t * |S|_1 + 1/2 * |S - (S - theta * g)|^2`. (Adding the subgradient `lambda * sign(S)`
instead would make the scores jitter around 0 rather than reach it.) `lambda_t = l1 * mean|theta * g|`,
the mean over all prunable weights at that step: the penalty is in units of a typical weight's movement, so one value
fits any model, task and learning rate. With `lr_weighted`, `theta * g` and the mean are both lr-weighted.

What this does to the ranking: a weight whose movement is not consistent enough to outrun the penalty is held at
exactly 0 and its history is forgotten (it restarts from 0). Weights moving consistently away from zero (S > 0) rank
above the undecided ones (S = 0), which rank above those moving consistently towards zero (S < 0); among the undecided,
ties are broken by `|theta|`, so the weights without movement evidence fall back to magnitude pruning. With
`l1 = 0` this is exactly `movement`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..pruning.sharding import all_reduce_max, all_reduce_sum, local
from .base import check_settings
from .movement import SANH_2020, Movement, MovementSettings


@dataclass
class SoftMovementSettings(MovementSettings):
    l1: float = field(default=0.1, metadata={
        "help": "L1 penalty on the scores, in units of the step's mean |theta * g| over all prunable weights (>= 0; "
                "0 is movement pruning)."})

    def __post_init__(self):
        super().__post_init__()
        check_settings(self, {"l1": (self.l1 >= 0, "a number >= 0")})


def soft_threshold(x: torch.Tensor, level: float | torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * (x.abs() - level).clamp_min(0.0)


class SoftMovement(Movement):
    name = "soft_movement"
    display_name = "soft movement pruning"
    paper = SANH_2020
    summary = ("Movement scores under an L1 penalty (a proximal step per optimizer step); the mask follows the "
               "sparsity schedule.")
    settings_class = SoftMovementSettings

    def __init__(self, params, args=None, settings=None):
        super().__init__(params, args, settings)
        self.l1 = float(self.settings.l1)

    @torch.no_grad()
    def before_step(self, optimizer) -> None:
        steps = self.movement(optimizer)
        if not steps:
            return
        # A 0-dim tensor on the weights' device: no host sync per matrix per step (36 of them made it 3x slower on GPU).
        total = all_reduce_sum(self.group)(torch.stack([s.abs().sum(dtype=torch.float64) for s in steps.values()]).sum())
        level = self.l1 * total / sum(p.numel() for p in self.params.values())  # a DTensor counts all its shards
        for name, step in steps.items():
            self.score[name] = soft_threshold(self.score[name] + step, level)

    def scores(self) -> dict[str, torch.Tensor]:
        """The scores, with exact zeros ordered by `|theta|` strictly between the negative and positive scores."""
        nonzero = torch.cat([s.abs()[s != 0].flatten() for s in self.score.values()])
        # Largest |theta| and smallest non-zero |score| over every shard (one reduction: the second is negated).
        extremes = torch.stack([
            torch.stack([self.theta(n).abs().float().amax() if local(p).numel() else nonzero.new_zeros(())
                         for n, p in self.params.items()]).max(),
            -(nonzero.min() if nonzero.numel() else torch.tensor(float("inf"), device=nonzero.device)),
        ])
        top, smallest = all_reduce_max(extremes, self.group).tolist()
        smallest = -smallest
        if smallest == float("inf"):  # no score moved yet anywhere
            return {n: self.theta(n).abs().float() for n in self.params}
        scale = 0.5 * smallest / top if top > 0 else 0.0
        out = {}
        for n, s in self.score.items():
            tie = self.theta(n).abs().float() * scale
            out[n] = torch.where(s == 0, tie, s)
        return out
