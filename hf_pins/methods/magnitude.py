"""Magnitude pruning: a weight's importance is `|theta|`, on the same gradual schedule as every method."""

from __future__ import annotations

import torch

from .base import Paper, PruningMethod


class Magnitude(PruningMethod):
    name = "magnitude"
    display_name = "gradual magnitude pruning"
    paper = Paper(authors="Zhu & Gupta",
                  title="To prune, or not to prune: exploring the efficacy of pruning for model compression",
                  venue="2017", url="https://arxiv.org/abs/1710.01878")
    granularities = ("unstructured", "structured")
    summary = "Weights with the smallest absolute value are zeroed, step by step along the sparsity schedule."

    def scores(self) -> dict[str, torch.Tensor]:
        return {n: self.theta(n).abs().float() for n in self.params}
