"""Weights sharded over processes (FSDP2): the distributed threshold selection, by hand and against one process."""

import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import REPO

from hf_pins.pruning.masks import _prune_lowest
from hf_pins.pruning.sharding import all_reduce_sum, sharded_prune_lowest

WORKER = REPO / "tests" / "sharded_worker.py"


def test_selection_by_hand():
    scores = torch.tensor([3.0, -1.0, 2.0, float("-inf"), 2.0])
    pruned, threshold = sharded_prune_lowest(scores, 3, all_reduce_sum(None))
    # -inf, -1 and one of the two 2s (the earlier one): exactly three, and the threshold is 2.
    assert pruned.tolist() == [False, True, True, True, False] and threshold == 2.0
    assert sharded_prune_lowest(scores, 0, all_reduce_sum(None))[0].sum() == 0
    assert sharded_prune_lowest(scores, 5, all_reduce_sum(None))[0].all()


@pytest.mark.parametrize("seed", range(40))
def test_selection_prunes_exactly_k_like_topk(seed):
    generator = torch.Generator().manual_seed(seed)
    n = int(torch.randint(1, 400, (1,), generator=generator))
    if seed % 3 == 0:  # many ties
        scores = torch.randint(-3, 4, (n,), generator=generator).float()
    else:  # values over many orders of magnitude, both signs
        scores = torch.randn(n, generator=generator) * 10.0 ** (seed % 16 - 8)
    if seed % 4 == 0:
        scores[: n // 4] = float("-inf")  # pruned weights under persistent masks
    k = int(torch.randint(0, n + 1, (1,), generator=generator))
    pruned, threshold = sharded_prune_lowest(scores, k, all_reduce_sum(None))
    reference, reference_threshold = _prune_lowest(scores, k)
    assert int(pruned.sum()) == k
    if 0 < k < n:
        assert threshold == reference_threshold and scores[pruned].max() <= scores[~pruned].min()


def _run(args, tmp):
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(p.read_text()) for p in sorted(tmp.glob("rank*.json"))]


@pytest.mark.slow
@pytest.mark.parametrize("method, threshold", [("pins", "global"), ("soft_movement", "per_matrix")])
def test_fsdp2_shards_prune_exactly_as_one_process(tmp_path, method, threshold):
    """Two processes each holding half of every weight (FSDP2 fully_shard, gloo) keep the same weights at every
    mask update as one process holding everything, with the same global batch."""
    two = _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                str(WORKER), str(tmp_path / "two"), method, threshold], tmp_path / "two")
    (one,) = _run([sys.executable, str(WORKER), str(tmp_path / "one"), method, threshold], tmp_path / "one")
    assert len(two) == 2 and all(r["sharded"] and r["world_size"] == 2 for r in two) and not one["sharded"]
    assert two[0]["updates"] == two[1]["updates"]  # every rank sees the same gathered masks and threshold
    assert len(one["updates"]) == len(two[0]["updates"]) >= 5
    for sharded, whole in zip(two[0]["updates"], one["updates"]):
        assert sharded["step"] == whole["step"] and sharded["kept"] == whole["kept"]
        assert sharded["threshold"] == pytest.approx(whole["threshold"], rel=1e-4)
    assert two[0]["final"] == one["final"]
    assert two[0]["sparsity"] == one["sparsity"] == pytest.approx(0.8, abs=1e-3)
    assert two[0]["measured"] == one["measured"] and two[0]["modules"] == one["modules"]  # zeros counted over shards
