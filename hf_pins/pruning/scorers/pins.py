"""PINS importance: the loss change from zeroing a weight after the optimizer's update (Ren & Zhu, 2023).

First-order Taylor expansion of the objective around the parameters the optimizer is about to produce:
`s_i(t) = -g_i(t) * theta_i(t+1)`, with `g` the gradient of the whole objective (task loss plus self-regularization).

* `importance_update="optimizer"` (the paper, default): `theta(t+1)` is what the optimizer really produced this step,
  whatever the optimizer is.
* `importance_update="sgd"` (the released code's stand-in): `theta(t+1) = theta(t) - lr * g`, i.e.
  `s = -theta * g + lr * g**2`.
* `importance_form="absolute"` (the released code ranks by `|s|`; default) or `"signed"` (the loss change as the paper
  writes it). The default departs from the paper on evidence: signed ranking collapsed the demo model (see README).

Scores are smoothed over windows with the uncertainty term (see `smoothing.py`).
"""

from __future__ import annotations

import torch

from .base import SmoothedScorer, learning_rates
from ..sharding import local


class PINSScorer(SmoothedScorer):
    name = "pins"

    def __init__(self, params, args=None):
        super().__init__(params, args)
        self.update = getattr(args, "importance_update", "optimizer")
        self.form = getattr(args, "importance_form", "absolute")
        if self.update not in ("optimizer", "sgd"):
            raise ValueError(f"importance_update must be 'optimizer' or 'sgd', got {self.update!r}")
        if self.form not in ("signed", "absolute"):
            raise ValueError(f"importance_form must be 'signed' or 'absolute', got {self.form!r}")

    @torch.no_grad()
    def before_step(self, optimizer) -> None:
        if self.update != "sgd":
            return
        lrs = learning_rates(optimizer)
        for name, p in self.params.items():
            if p.grad is not None:
                g = local(p.grad).float()
                theta_next = torch.add(local(p).float(), g, alpha=-lrs.get(id(p), 0.0), out=self.scratch(name))
                self.add_product(name, g, theta_next, absolute=self.form == "absolute", sign=-1.0)
        self.smoothed.step()

    @torch.no_grad()
    def after_step(self, optimizer) -> None:
        if self.update != "optimizer":
            return
        for name, p in self.params.items():
            if p.grad is not None:
                self.add_product(name, local(p.grad).float(), local(p).float(), absolute=self.form == "absolute",
                                 sign=-1.0)
        self.smoothed.step()
