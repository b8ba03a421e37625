"""Pruning parameters that are sharded across processes (FSDP2's `fully_shard`: each weight is a `DTensor` whose
rows are split over the ranks of a 1-D device mesh).

Masks and scores are kept for the local shard only; what needs every weight (the global threshold, the count of
pruned weights, the sparsity report) is reduced over the mesh's process group. The threshold is found by an exact
distributed selection, so a sharded run prunes exactly the weights one process holding everything would prune (up
to the order among equal scores): a radix select over the scores' 32 bits, one byte per pass, whose only communication
is a 256-bin histogram per pass and one count of ties. No rank ever holds all the scores.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.distributed as dist

try:
    from torch.distributed.tensor import DTensor, Shard
except ImportError:  # torch builds without distributed support
    DTensor = Shard = None

Reduce = Callable[[torch.Tensor], torch.Tensor]  # an in-place sum over every shard's copy of the tensor


def local(t: torch.Tensor | None) -> torch.Tensor | None:
    """The part of `t` this process holds (a view: in-place changes reach the parameter)."""
    if DTensor is not None and isinstance(t, DTensor):
        return t.to_local()
    return t


def shard_group(params: dict[str, torch.Tensor]):
    """The process group the weights are sharded over, or None when every process holds whole weights."""
    sharded = [p for p in params.values() if DTensor is not None and isinstance(p, DTensor)]
    if not sharded:
        return None
    if len(sharded) != len(params):
        raise NotImplementedError("prunable weights are partly sharded: shard all of them (fully_shard) or none")
    mesh = sharded[0].device_mesh
    for p in sharded:
        if p.device_mesh != mesh or p.device_mesh.ndim != 1 or not all(isinstance(s, Shard) for s in p.placements):
            raise NotImplementedError(
                f"sharded weights must be split over one 1-D device mesh (FSDP2 fully_shard); got {p.placements} on "
                f"{p.device_mesh}")
    return mesh.get_group()


def all_reduce_sum(group) -> Reduce:
    """Sum over the group (the identity without one)."""
    def reduce(t: torch.Tensor) -> torch.Tensor:
        if group is not None:
            dist.all_reduce(t, op=dist.ReduceOp.SUM, group=group)
        return t
    return reduce


def global_count(count: int, group, device=None) -> int:
    """`count` summed over the group's processes (`count` itself without a group)."""
    if group is None:
        return count
    return int(all_reduce_sum(group)(torch.tensor([count], dtype=torch.int64, device=device)).item())


def shard_position(group) -> list[int] | None:
    """`[rank, processes]` within the group, or None without one."""
    return None if group is None else [dist.get_rank(group), dist.get_world_size(group)]


def all_reduce_max(t: torch.Tensor, group) -> torch.Tensor:
    if group is not None:
        dist.all_reduce(t, op=dist.ReduceOp.MAX, group=group)
    return t


def _ordered_keys(flat: torch.Tensor) -> torch.Tensor:
    """int32 keys whose signed order is the float32 order of `flat` (finite values and -inf; -0.0 before 0.0)."""
    bits = flat.float().contiguous().view(torch.int32)
    return bits ^ ((bits >> 31) & 0x7FFFFFFF)


def sharded_prune_lowest(flat: torch.Tensor, k: int, reduce: Reduce, rank: int = 0, world_size: int = 1
                         ) -> tuple[torch.Tensor, float]:
    """Boolean "pruned" vector over this shard such that exactly `k` entries are pruned over all shards together (the
    `k` lowest), and the threshold (the largest pruned score, the same on every rank).

    Ties at the threshold go to the lower ranks first, then to the earlier positions."""
    keys = _ordered_keys(flat)
    total = int(reduce(torch.tensor([keys.numel()], dtype=torch.int64, device=flat.device)).item())
    k = max(0, min(k, total))
    if k == 0:
        return torch.zeros_like(flat, dtype=torch.bool), float("-inf")
    unsigned = keys ^ torch.tensor(-(2**31), dtype=torch.int32)  # unsigned byte order == signed key order
    candidates, prefix, rest = unsigned, 0, k
    for shift in (24, 16, 8, 0):
        digit = (candidates >> shift) & 0xFF
        histogram = reduce(torch.bincount(digit.long(), minlength=256).to(torch.int64))
        cumulative = torch.cumsum(histogram, 0)
        byte = int(torch.searchsorted(cumulative, torch.tensor([rest], device=cumulative.device)).item())
        rest -= int(cumulative[byte - 1]) if byte > 0 else 0
        prefix = (prefix << 8) | byte
        candidates = candidates[digit == byte]
    signed = prefix ^ 0x80000000  # back to the signed key
    threshold_key = torch.tensor(signed - 2**32 if signed >= 2**31 else signed, dtype=torch.int32, device=keys.device)
    pruned = keys < threshold_key
    equal = (keys == threshold_key).nonzero().flatten()
    counts = torch.zeros(world_size, dtype=torch.int64, device=flat.device)
    counts[rank] = equal.numel()
    counts = reduce(counts)
    before = int(counts[:rank].sum())
    take = max(0, min(equal.numel(), rest - before))
    pruned[equal[:take]] = True
    return pruned, _key_to_float(int(threshold_key))


def _key_to_float(key: int) -> float:
    bits = torch.tensor([key], dtype=torch.int32)
    bits = bits ^ ((bits >> 31) & 0x7FFFFFFF)
    return float(bits.view(torch.float32).item())
