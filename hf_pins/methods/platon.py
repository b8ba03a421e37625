"""PLATON importance (Zhang et al., ICML 2022): `|theta * g|`, smoothed, times its uncertainty.

The raw score is the magnitude of the first-order loss change from zeroing a weight at the parameters the forward pass
used, `|theta(t) * g(t)|` (taken before the optimizer's step, unlike PINS which uses `theta(t+1)`), with `g` the
gradient of the whole objective. Smoothing and the uncertainty product are the ones PINS uses (`smoothing.py`, betas
`score_beta1` / `score_beta2`): PLATON updates its moving averages every step, which is `mask_update_interval: 1` here;
larger intervals first average the raw score within each window, like the PINS reference code.
"""

from __future__ import annotations

import torch

from ..pruning.sharding import local
from .base import Paper, SmoothedMethod


class PLATON(SmoothedMethod):
    name = "platon"
    display_name = "PLATON"
    paper = Paper(authors="Zhang et al.",
                  title="PLATON: Pruning Large Transformer Models with Upper Confidence Bound of Weight Importance",
                  venue="ICML 2022", url="https://arxiv.org/abs/2206.12562")
    granularities = ("unstructured", "structured")
    summary = "Weights are scored by `|theta * g|`, smoothed, and multiplied by the uncertainty of that estimate."

    @torch.no_grad()
    def before_step(self, optimizer) -> None:
        for name, p in self.params.items():
            if p.grad is not None:
                self.add_product(name, local(p).float(), local(p.grad).float(), absolute=True)
        self.smoothed.step()
