"""Turning scores into binary masks: one global threshold over all prunable weights, or one per matrix.

Selection is exact: ties at the threshold are broken by `topk`, so exactly `round(sparsity * N)` weights are pruned
(globally), or `round(sparsity * n)` in each matrix.
"""

from __future__ import annotations

import torch


def _prune_lowest(flat: torch.Tensor, k: int) -> tuple[torch.Tensor, float]:
    """Boolean "pruned" vector with exactly the `k` lowest entries set, and the threshold (largest pruned score).

    `topk` on the smaller side selects exactly `k` entries even among ties, and is faster than a full sort.
    """
    n = flat.numel()
    k = max(0, min(k, n))
    if k == 0:
        return torch.zeros_like(flat, dtype=torch.bool), float("-inf")
    if k <= n - k:
        pruned = torch.zeros_like(flat, dtype=torch.bool)
        pruned[torch.topk(flat, k, largest=False, sorted=False).indices] = True
    else:
        pruned = torch.ones_like(flat, dtype=torch.bool)
        if k < n:
            pruned[torch.topk(flat, n - k, largest=True, sorted=False).indices] = False
    return pruned, float(flat[pruned].max())


def global_masks(scores: dict[str, torch.Tensor], sparsity: float) -> tuple[dict[str, torch.Tensor], float]:
    """Keep-masks (True = kept) pruning the `round(sparsity * N)` lowest scores over all matrices together."""
    names = list(scores)
    flat = torch.cat([scores[n].flatten().float() for n in names])
    pruned, threshold = _prune_lowest(flat, int(round(sparsity * flat.numel())))
    masks, offset = {}, 0
    for n in names:
        size = scores[n].numel()
        masks[n] = ~pruned[offset : offset + size].view_as(scores[n])
        offset += size
    return masks, threshold


def per_matrix_masks(scores: dict[str, torch.Tensor], sparsity: float) -> tuple[dict[str, torch.Tensor], float]:
    """Keep-masks pruning the same fraction of each matrix; the threshold reported is the largest one."""
    masks, top = {}, float("-inf")
    for n, s in scores.items():
        pruned, threshold = _prune_lowest(s.flatten().float(), int(round(sparsity * s.numel())))
        masks[n] = ~pruned.view_as(s)
        top = max(top, threshold)
    return masks, top
