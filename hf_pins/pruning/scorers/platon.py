"""PLATON importance (Zhang et al., ICML 2022): `|theta * g|`, smoothed, times its uncertainty.

The raw score is the magnitude of the first-order loss change from zeroing a weight at the parameters the forward pass
used, `|theta(t) * g(t)|` (taken before the optimizer's step, unlike PINS which uses `theta(t+1)`), with `g` the
gradient of the whole objective. Smoothing and the uncertainty product are the ones PINS uses (`smoothing.py`, betas
`score_beta1` / `score_beta2`): PLATON updates its moving averages every step, which is `mask_update_interval: 1` here;
larger intervals first average the raw score within each window, like the PINS reference code.
"""

from __future__ import annotations

import torch

from ..smoothing import SmoothedScore
from .base import Scorer


class PLATONScorer(Scorer):
    name = "platon"

    def __init__(self, params, args=None):
        super().__init__(params, args)
        shapes = {n: p.shape for n, p in params.items()}
        device = next(iter(params.values())).device if params else None
        self.smoothed = SmoothedScore(shapes, getattr(args, "score_beta1", 0.85), getattr(args, "score_beta2", 0.95), device)

    @torch.no_grad()
    def before_step(self, optimizer) -> None:
        for name, p in self.params.items():
            if p.grad is not None:
                self.smoothed.add(name, (p.float() * p.grad.float()).abs_())
        self.smoothed.step()

    def end_window(self) -> None:
        self.smoothed.close_window()

    def scores(self) -> dict[str, torch.Tensor]:
        return {n: self.smoothed.score(n) for n in self.params}

    def state_dict(self) -> dict:
        return self.smoothed.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.smoothed.load_state_dict(state)
