"""Smoothing of noisy per-batch importance scores, shared by PINS and PLATON.

Raw scores are averaged within a window of steps; at the window's end an exponential moving average of the window means
(`beta1`) and one of their absolute deviation from it (the uncertainty, `beta2`) are updated. Weights are ranked by
`mean * uncertainty` (PLATON's upper confidence bound). The deviation is taken from the *updated* mean, as in PLATON.
"""

from __future__ import annotations

import torch


class SmoothedScore:
    def __init__(self, shapes: dict[str, torch.Size], beta1: float, beta2: float, device=None):
        self.beta1, self.beta2 = beta1, beta2
        zeros = lambda s: torch.zeros(s, dtype=torch.float32, device=device)  # noqa: E731
        self.window_sum = {n: zeros(s) for n, s in shapes.items()}
        self.mean = {n: zeros(s) for n, s in shapes.items()}
        self.uncertainty = {n: zeros(s) for n, s in shapes.items()}
        self.window_count = 0
        self.windows_closed = 0

    def add(self, name: str, raw: torch.Tensor) -> None:
        self.window_sum[name].add_(raw)

    def step(self) -> None:
        """Count one step's worth of `add` calls."""
        self.window_count += 1

    def close_window(self) -> None:
        if self.window_count == 0:
            return
        for name, total in self.window_sum.items():
            window_mean = total / self.window_count
            mean = self.mean[name]
            mean.mul_(self.beta1).add_(window_mean, alpha=1 - self.beta1)
            self.uncertainty[name].mul_(self.beta2).add_((window_mean - mean).abs_(), alpha=1 - self.beta2)
            total.zero_()
        self.window_count = 0
        self.windows_closed += 1

    def score(self, name: str) -> torch.Tensor:
        return self.mean[name] * self.uncertainty[name]

    def state_dict(self) -> dict:
        tensors = {}
        for key, table in (("window_sum", self.window_sum), ("mean", self.mean), ("uncertainty", self.uncertainty)):
            tensors.update({f"{key}.{n}": t for n, t in table.items()})
        return {"tensors": tensors, "meta": {"window_count": self.window_count, "windows_closed": self.windows_closed}}

    def load_state_dict(self, state: dict) -> None:
        for key, table in (("window_sum", self.window_sum), ("mean", self.mean), ("uncertainty", self.uncertainty)):
            for n, t in table.items():
                t.copy_(state["tensors"][f"{key}.{n}"])
        self.window_count = state["meta"]["window_count"]
        self.windows_closed = state["meta"]["windows_closed"]
