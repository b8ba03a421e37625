"""PINS importance: the loss change from zeroing a weight after the optimizer's update (Ren & Zhu, 2023).

First-order Taylor expansion of the objective around the parameters the optimizer is about to produce:
`s_i(t) = -g_i(t) * theta_i(t+1)`, with `g` the gradient of the whole objective (task loss plus self-regularization)
and `theta(t+1)` what the optimizer really produced this step, whatever the optimizer is. Weights are ranked by `|s|`
as in the released code (the paper's signed form and the released code's SGD stand-in for `theta(t+1)` are
`pruning.experimental` settings). Scores are smoothed over windows with the uncertainty term (`pruning/smoothing.py`).
"""

from __future__ import annotations

import torch

from ..pruning.sharding import local
from .base import Paper, SmoothedMethod, learning_rates

PINS_BIBTEX = """@inproceedings{ren-zhu-2023-pruning,
    title = "Pruning Pre-trained Language Models with Principled Importance and Self-regularization",
    author = "Ren, Siyu and Zhu, Kenny",
    booktitle = "Findings of the Association for Computational Linguistics: ACL 2023",
    year = "2023",
    address = "Toronto, Canada",
    publisher = "Association for Computational Linguistics",
    url = "https://aclanthology.org/2023.findings-acl.573",
    doi = "10.18653/v1/2023.findings-acl.573",
    pages = "8995--9008"
}"""


class PINS(SmoothedMethod):
    name = "pins"
    display_name = "PINS (pruning with principled importance and self-regularization)"
    paper = Paper(authors="Ren & Zhu",
                  title="Pruning Pre-trained Language Models with Principled Importance and Self-regularization",
                  venue="Findings of ACL 2023", url="https://aclanthology.org/2023.findings-acl.573",
                  bibtex=PINS_BIBTEX)
    granularities = ("unstructured", "structured")
    summary = ("Gradual pruning during fine-tuning. Each weight is scored by a first-order estimate of "
               "the loss change from zeroing it after the update, `-g(t) * theta(t+1)`; scores are smoothed over "
               "steps and the lowest-scoring weights are zeroed as the sparsity schedule rises (the exact settings "
               "are in the recipe below).")

    def __init__(self, params, args=None, settings=None):
        super().__init__(params, args, settings)
        experimental = getattr(args, "experimental_settings", None)
        self.update = getattr(experimental, "importance_update", "optimizer")
        self.absolute = getattr(experimental, "importance_form", "absolute") == "absolute"

    @torch.no_grad()
    def before_step(self, optimizer) -> None:
        if self.update != "sgd":
            return
        lrs = learning_rates(optimizer)
        for name, p in self.params.items():
            if p.grad is not None:
                g = local(p.grad).float()
                theta_next = torch.add(local(p).float(), g, alpha=-lrs.get(id(p), 0.0), out=self.scratch(name))
                self.add_product(name, g, theta_next, absolute=self.absolute, sign=-1.0)
        self.smoothed.step()

    @torch.no_grad()
    def after_step(self, optimizer) -> None:
        if self.update != "optimizer":
            return
        for name, p in self.params.items():
            if p.grad is not None:
                self.add_product(name, local(p.grad).float(), local(p).float(), absolute=self.absolute, sign=-1.0)
        self.smoothed.step()
