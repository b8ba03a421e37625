"""Magnitude pruning: a weight's importance is `|theta|`."""

from __future__ import annotations

import torch

from .base import Scorer


class MagnitudeScorer(Scorer):
    name = "magnitude"

    def scores(self) -> dict[str, torch.Tensor]:
        return {n: self.theta(n).abs().float() for n in self.params}
