"""The mini-GLUE benchmark harness end to end in its quick mode (checks the harness, not the scores)."""

import json
import subprocess
import sys

from conftest import GLUE_DIR, REPO

FIELDS = {"task", "method", "target_sparsity", "measured_sparsity", "seed", "metric", "dev_score", "test_score",
          "train_seconds", "peak_rss_mb"}


def test_quick_grid_writes_every_run_and_resumes(tmp_path):
    output = tmp_path / "glue_cpu.json"
    argv = [sys.executable, str(REPO / "benchmarks" / "glue_cpu.py"), "--quick", "--glue-dir", str(GLUE_DIR),
            "--tasks", "rte", "stsb", "--methods", "dense", "pins", "grda", "gfs", "--sparsities", "0.8",
            "--output", str(output), "--scratch", str(tmp_path / "runs")]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(output.read_text())
    assert {"machine", "model", "settings", "runs"} <= set(result)
    runs = result["runs"]
    assert {(r["task"], r["method"]) for r in runs} == {(t, m) for t in ("rte", "stsb") for m in ("dense", "pins", "grda", "gfs")}
    for run in runs:
        assert FIELDS <= set(run)
        assert run["target_sparsity"] == (0.0 if run["method"] == "dense" else 0.8)
    assert next(r for r in runs if r["method"] == "pins")["measured_sparsity"] == __import__("pytest").approx(0.8, abs=5e-3)
    assert {r["metric"] for r in runs if r["task"] == "stsb"} == {"pearson"}

    again = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert again.returncode == 0 and "8 runs already" in again.stdout and "0 to go" in again.stdout
    assert json.loads(output.read_text())["runs"] == runs
