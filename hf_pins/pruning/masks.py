"""Turning scores into binary masks: one global threshold over all prunable weights, or one per matrix.

Selection is exact: ties at the threshold are broken by `topk`, so exactly `round(sparsity * N)` weights are pruned
(globally), or `round(sparsity * n)` in each matrix. With a process group (weights sharded over processes), `scores`
are this process's shards, `N` and `n` count every shard, and the selection is the distributed one of `sharding.py`.
"""

from __future__ import annotations

import torch

from .sharding import all_reduce_sum, global_count, shard_position, sharded_prune_lowest


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


def _selector(group):
    """`(flat, k) -> (pruned, threshold)` over one process's scores, or over the shards of a process group."""
    if group is None:
        return _prune_lowest
    reduce, (rank, world) = all_reduce_sum(group), shard_position(group)
    return lambda flat, k: sharded_prune_lowest(flat, k, reduce, rank, world)


def live_only(scores: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The scores with every pruned position (mask False) at -inf, so that it ranks below every live weight: with
    persistent masks a pruned weight never comes back."""
    return {n: s.float().masked_fill(~masks[n], float("-inf")) for n, s in scores.items()}


def global_masks(scores: dict[str, torch.Tensor], sparsity: float, group=None) -> tuple[dict[str, torch.Tensor], float]:
    """Keep-masks (True = kept) pruning the `round(sparsity * N)` lowest scores over all matrices together."""
    names = list(scores)
    flat = torch.cat([scores[n].flatten().float() for n in names])
    k = int(round(sparsity * global_count(flat.numel(), group, flat.device)))
    pruned, threshold = _selector(group)(flat, k)
    masks, offset = {}, 0
    for n in names:
        size = scores[n].numel()
        masks[n] = ~pruned[offset : offset + size].view_as(scores[n])
        offset += size
    return masks, threshold


def per_matrix_masks(scores: dict[str, torch.Tensor], sparsity: float, group=None) -> tuple[dict[str, torch.Tensor], float]:
    """Keep-masks pruning the same fraction of each matrix; the threshold reported is the largest one."""
    masks, top, select = {}, float("-inf"), _selector(group)
    for n, s in scores.items():
        pruned, threshold = select(s.flatten().float(), int(round(sparsity * global_count(s.numel(), group, s.device))))
        masks[n] = ~pruned.view_as(s)
        top = max(top, threshold)
    return masks, top
