"""Seeded row choices shared by every task: stratified hold-outs and nested subsets.

Every random choice uses numpy's PCG64 generator seeded explicitly, so a seed gives the same rows on every machine and
Python version.
"""

from __future__ import annotations

import numpy as np

__all__ = ["seeded_subset", "stratified_indices"]


def stratified_indices(labels: np.ndarray | None, n: int, fraction: float, seed) -> np.ndarray:
    """Indices of the held-out rows: `round(n * fraction)` in all, each class getting the floor or ceiling of its share.

    Shares are rounded by largest remainder (ties to the lower class id), so every class's held-out proportion is
    within one example of its proportion in the whole. Regression tasks (labels None) draw uniformly. `seed` is
    anything `numpy.random.default_rng` takes (an int, or a list for an independent stream).
    """
    rng = np.random.default_rng(seed)
    n_out = int(np.floor(n * fraction + 0.5))
    if labels is None:
        return np.sort(rng.permutation(n)[:n_out])
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * fraction
    take = np.floor(exact).astype(np.int64)
    extra = int(np.clip(n_out - take.sum(), 0, len(classes)))
    take[np.argsort(-(exact - take), kind="stable")[:extra]] += 1
    chosen = [rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, take)]
    return np.sort(np.concatenate(chosen))


def seeded_subset(dataset, limit: int | None, seed: int, stream: int):
    """First `limit` rows of a seeded permutation, kept in file order; the same seed gives nested subsets.

    The indices stay in memory (`keep_in_memory`), so nothing is written next to the user's data."""
    if limit is None or limit >= len(dataset):
        return dataset
    rng = np.random.default_rng([seed, stream])
    return dataset.select(np.sort(rng.permutation(len(dataset))[:limit]), keep_in_memory=True)
