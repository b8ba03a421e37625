"""Greedy forward selection with a least-squares refit at every step, from a Gram matrix alone.

Both imitation criteria reduce to the same problem: columns `z_1 .. z_m` (one per unit), a target `y = sum_j z_j` (the
full layer, all coefficients 1), and for a chosen set `S` the coefficients `gamma_S` minimising `|y - Z_S gamma_S|^2`.
Only inner products are needed: `G = Z^T Z` and `b = Z^T y = G 1`.

Each step adds the unit whose column, made orthogonal to the span of those already chosen, removes the most residual:
gain `r_j^2 / d_j` with `r_j = <z_j_perp, y>` and `d_j = |z_j_perp|^2` (orthogonal least squares). Both are kept up to
date for all candidates at once with one rank-one update per step, O(m * |S|) work, so the full greedy path of an FFN
with thousands of units costs seconds and no forward pass per candidate. Selection sets are nested: the first `k`
units of the path are the greedy choice for budget `k`.
"""

from __future__ import annotations

import torch


class GreedySelector:
    def __init__(self, gram: torch.Tensor, target: torch.Tensor | None = None):
        self.gram = gram.double()
        self.target = self.gram.sum(1) if target is None else target.double()
        self.energy = float(self.gram.sum()) if target is None else float("nan")
        m = self.gram.shape[0]
        self.num = self.target.clone()
        self.den = self.gram.diagonal().clone()
        self.basis = torch.zeros(m, min(m, 16), dtype=torch.float64, device=self.gram.device)  # grown by doubling
        self.rank = 0  # columns of `basis` in use: an orthonormal basis of the chosen units' span
        self.selected: list[int] = []
        self.gains: list[float] = []
        self.available = torch.ones(m, dtype=torch.bool, device=self.gram.device)

    @property
    def size(self) -> int:
        return self.gram.shape[0]

    def candidate_gains(self) -> torch.Tensor:
        """Residual reduction from adding each unit now; -inf for chosen or linearly dependent ones."""
        scale = self.gram.diagonal().abs().clamp_min(1e-300)
        usable = self.available & (self.den > 1e-10 * scale)
        gains = torch.full_like(self.num, float("-inf"))
        gains[usable] = self.num[usable] ** 2 / self.den[usable]
        return gains

    def next_gain(self) -> float:
        if len(self.selected) == self.size:
            return float("-inf")
        gains = self.candidate_gains()
        best = float(gains.max())
        return best if best != float("-inf") else 0.0

    def step(self) -> int:
        """Add the best unit (a dependent or useless one when nothing helps any more); return its index."""
        gains = self.candidate_gains()
        if float(gains.max()) == float("-inf"):  # everything left is dependent on the chosen: any order will do
            j = int(torch.nonzero(self.available)[0])
            gain = 0.0
        else:
            j = int(gains.argmax())
            gain = float(gains[j])
        self._add(j, gain)
        return j

    def _add(self, j: int, gain: float) -> None:
        d = float(self.den[j])
        if d > 1e-10 * abs(float(self.gram[j, j])) and d > 0:
            used = self.basis[:, : self.rank]
            u = self.gram[:, j] - used @ used[j]
            v = u / d**0.5
            self.num -= v * (float(self.num[j]) / d**0.5)
            self.den -= v**2
            if self.rank == self.basis.shape[1]:
                grown = torch.zeros(self.size, min(self.size, 2 * self.rank), dtype=torch.float64, device=v.device)
                grown[:, : self.rank] = self.basis
                self.basis = grown
            self.basis[:, self.rank] = v
            self.rank += 1
        self.available[j] = False
        self.selected.append(j)
        self.gains.append(gain)

    def run(self, k: int) -> list[int]:
        while len(self.selected) < min(k, self.size):
            self.step()
        return self.selected[:k]

    def coefficients(self, k: int | None = None) -> tuple[list[int], torch.Tensor]:
        """The first `k` selected units and their least-squares coefficients (refit on exactly that set)."""
        chosen = self.selected[: len(self.selected) if k is None else k]
        if not chosen:
            return [], torch.zeros(0, dtype=torch.float64)
        idx = torch.tensor(chosen, device=self.gram.device)
        gram = self.gram[idx][:, idx]
        ridge = 1e-12 * float(gram.diagonal().abs().max().clamp_min(1e-300))
        eye = torch.eye(len(chosen), dtype=torch.float64, device=gram.device)
        gamma = torch.linalg.lstsq(gram + ridge * eye, self.target[idx][:, None]).solution[:, 0]
        return chosen, gamma

    def residual(self, k: int | None = None) -> float:
        """Relative residual `|y - Z_S gamma_S|^2 / |y|^2` after the first `k` units (NaN without a known |y|^2)."""
        k = len(self.selected) if k is None else k
        if not self.energy > 0:
            return float("nan")
        return max(0.0, 1.0 - sum(self.gains[:k]) / self.energy)
