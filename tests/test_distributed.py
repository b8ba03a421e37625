"""Two processes under `accelerate launch` (gloo on CPU) prune exactly as one process with the same global batch."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

WORKER = REPO / "tests" / "distributed_worker.py"


def _env():
    return dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")


@pytest.mark.slow
def test_two_processes_share_every_mask_and_match_one_process(tmp_path):
    accelerate = Path(sys.executable).parent / "accelerate"
    two, one = tmp_path / "two", tmp_path / "one"
    launched = subprocess.run(
        [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
         "--mixed_precision", "no", "--dynamo_backend", "no", str(WORKER), str(two), "4"],
        env=_env(), capture_output=True, text=True, timeout=600, cwd=REPO,
    )
    assert launched.returncode == 0, launched.stderr[-3000:]
    alone = subprocess.run([sys.executable, str(WORKER), str(one), "8"], env=_env(), capture_output=True, text=True,
                           timeout=600, cwd=REPO)
    assert alone.returncode == 0, alone.stderr[-3000:]

    rank0, rank1 = (json.loads((two / f"masks-rank{r}.json").read_text()) for r in (0, 1))
    single = json.loads((one / "masks-rank0.json").read_text())
    assert rank0["world_size"] == 2 and single["world_size"] == 1
    assert rank0["updates"] and rank0["updates"] == rank1["updates"]  # the same mask at every mask update
    assert rank0["final"] == rank1["final"] == single["final"]
    # One copy of the outputs: checkpoints written once, by the main process, and no staging left behind.
    assert sorted(p.name for p in two.iterdir() if not p.name.startswith("masks-")) == ["checkpoint-16", "checkpoint-32"]
