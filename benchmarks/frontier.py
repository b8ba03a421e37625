"""The accuracy-speed frontier: every kind of model the library produces, its test score against its speed.

Accuracy comes from trained runs of `benchmarks/glue_cpu.py` (MiniLM-L6, the CPU budget, the real GLUE data), one
JSON per group in `benchmarks/results/frontier/`; `POINTS` names each point's cells and the command that trains them.
Speed is measured here, on one task's models of one seed (speed depends on shapes and zeros, not on the task):
each is exported by `hf-pins export --int8` and all are timed in one process, in interleaved rounds, at batch 1 and
batch 32, sequence 128 (`hf_pins.inference_benchmark`). Structured models run on ONNX Runtime; unstructured ones on
DeepSparse (ONNX Runtime gains nothing from zeros); dense and the compound model on both.

    python benchmarks/frontier.py --models /tmp/frontier_scratch          # after the grid below; ~15 minutes
    python benchmarks/report.py --plots                                   # the table and plot in BENCHMARKS.md

The grid (three seeds; a cell's model stays in --scratch for the speed run):

    python benchmarks/glue_cpu.py --tasks sst2 mrpc --methods pins_structured gfs --sparsities 0.5 0.75 \\
        --seeds 42 43 44 --workers 2 --scratch /tmp/frontier_scratch --output benchmarks/results/frontier/structured.json
    python benchmarks/glue_cpu.py --tasks sst2 mrpc --methods dense pins --sparsities 0.8 0.9 \\
        --seeds 42 43 44 --workers 2 --scratch /tmp/frontier_scratch --output benchmarks/results/frontier/unstructured.json
    python benchmarks/glue_cpu.py --tasks sst2 mrpc --methods pins_compound --sparsities 0.9 \\
        --seeds 42 43 44 --workers 2 --scratch /tmp/frontier_scratch --output benchmarks/results/frontier/compound.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "frontier"
SPEED = RESULTS / "speed.json"


@dataclass(frozen=True)
class Point:
    """One point of the frontier: the grid cells that train it, where they are, and the runtimes it is timed on."""

    label: str
    short: str  # on the plot
    method: str  # glue_cpu.py's method
    sparsity: float  # glue_cpu.py's --sparsities value (0 for dense)
    group: str  # the results JSON holding its cells
    runtimes: tuple[str, ...]

    @property
    def cell(self) -> str:
        return f"{self.method}-{self.sparsity}"


ORT, DS = "onnxruntime", "deepsparse"
POINTS = (
    Point("dense", "dense", "dense", 0.0, "unstructured", (ORT, DS)),
    Point("PINS 80% (unstructured)", "PINS 80%", "pins", 0.8, "unstructured", (DS,)),
    Point("PINS 90% (unstructured)", "PINS 90%", "pins", 0.9, "unstructured", (DS,)),
    Point("structured PINS, 1/2 of heads and FFN units", "structured PINS 1/2", "pins_structured", 0.5, "structured", (ORT,)),
    Point("structured PINS, 1/4 of heads and FFN units", "structured PINS 1/4", "pins_structured", 0.75, "structured", (ORT,)),
    Point("GFS, 1/2 of heads and FFN units", "GFS 1/2", "gfs", 0.5, "structured", (ORT,)),
    Point("GFS, 1/4 of heads and FFN units", "GFS 1/4", "gfs", 0.75, "structured", (ORT,)),
    Point("compound: structured 1/2, then 90% of the original weights", "compound", "pins_compound", 0.9, "compound", (ORT, DS)),
)


def model_dir(models: Path, task: str, point: Point, seed: int) -> Path:
    """Where glue_cpu.py left the cell's final model (its --scratch layout)."""
    return models / f"{task}-{point.method}-{point.sparsity}-{seed}"


def export_all(models: Path, task: str, seed: int, folder: Path, sequence_length: int,
               glue_dir: str) -> tuple[dict[str, Path], dict[str, dict]]:
    """Every point's model exported to ONNX (FP32 and INT8) under `folder`, INT8 calibrated on 256 of the task's
    training texts; returns {label: onnx_dir} and {label: INT8's accuracy against FP32 on the task's test split}."""
    from hf_pins import export as ex
    from hf_pins.commands.export import glue_examples

    calibration, evaluation = glue_examples(task, glue_dir, 256, None)
    out, int8 = {}, {}
    for point in POINTS:
        source = model_dir(models, task, point, seed)
        if not (source / "config.json").is_file():
            raise SystemExit(f"error: --models: {source} holds no trained model; run the grid in this script's "
                             f"docstring first")
        target = folder / point.cell
        report = ex.export_model(source, target, sequence_length=sequence_length, int8=True, log=lambda _: None,
                                 calibration_texts=calibration, eval_examples=evaluation)
        out[point.label], int8[point.label] = target, report["int8"]["eval"]
        print(f"exported {point.label}: INT8 {report['int8']['eval']['delta']:+.4f} {report['int8']['eval']['metric']}",
              flush=True)
    return out, int8


def measure(onnx_dirs: dict[str, Path], batch_sizes: list[int], sequence_length: int, seconds: float,
            rounds: int) -> list[dict]:
    """Every point on its runtimes at FP32 and INT8, one `benchmark` call per batch size (interleaved rounds)."""
    from hf_pins import inference_benchmark as ib

    rows = []
    for batch_size in batch_sizes:
        configs = [ib.Config(onnx_dirs[p.label], runtime, precision, p.label)
                   for p in POINTS for runtime in p.runtimes for precision in ("fp32", "int8")]
        measured = ib.benchmark(configs, batch_size=batch_size, sequence_length=sequence_length, seconds=seconds,
                                rounds=rounds)
        dense = next(r for r in measured if r["model"] == "dense" and r["precision"] == "fp32")["items_per_second"]
        for row in measured:
            row["speedup_vs_dense_ort_fp32"] = round(row["items_per_second"] / dense, 3)
        rows += measured
    return rows


def shapes(models: Path, task: str, seed: int) -> dict[str, dict]:
    """Parameters and kept units of each point's model (from its files), for the table."""
    from safetensors import safe_open
    from transformers import AutoConfig

    out = {}
    for point in POINTS:
        folder = model_dir(models, task, point, seed)
        with safe_open(str(folder / "model.safetensors"), "pt") as f:
            parameters = sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())
        config = AutoConfig.from_pretrained(folder)
        report = json.loads((folder / "pruning_report.json").read_text())
        out[point.label] = {"parameters": parameters, "intermediate_size": config.intermediate_size,
                            "pruned_heads": {str(k): len(v) for k, v in (config.pruned_heads or {}).items()},
                            "prunable_sparsity": round(report["overall"], 4)}
    return out


# ------------------------------------------------------------------------------------------- table and plot (report.py)

TASK_NAMES = {"sst2": "SST-2", "mrpc": "MRPC"}


def runs() -> list[dict]:
    """Every trained cell of the frontier's grid."""
    return [r for group in ("structured", "unstructured", "compound") if (RESULTS / f"{group}.json").is_file()
            for r in json.loads((RESULTS / f"{group}.json").read_text())["runs"]]


def scores(all_runs: list[dict], task: str, point: Point) -> dict[int, float]:
    """{seed: test score} of a point's cells on a task."""
    return {r["seed"]: r["test_score"] for r in all_runs if r["task"] == task and r["method"] == point.method
            and abs(r["target_sparsity"] - point.sparsity) < 1e-9}


def difference(a: dict[int, float], b: dict[int, float]) -> tuple[float, tuple[float, float] | None, int]:
    """Mean of a - b over the seeds both have, its 95% t interval (None below two seeds), and the seed count."""
    from glue_report import paired_interval

    seeds = sorted(set(a) & set(b))
    diffs = [a[s] - b[s] for s in seeds]
    return (sum(diffs) / len(diffs) if diffs else float("nan")), paired_interval(diffs), len(seeds)


def _shown(diff: tuple[float, tuple[float, float] | None, int]) -> str:
    mean, interval, _ = diff
    return f"{mean:+.2f}" + (f" [{interval[0]:+.2f}, {interval[1]:+.2f}]" if interval else "")


def speedups(speed: dict, label: str, runtime: str) -> dict[tuple[int, str], float]:
    return {(r["batch_size"], r["precision"]): r["speedup_vs_dense_ort_fp32"] for r in speed["results"]
            if r["model"] == label and r["runtime"] == runtime}


def table(tasks: tuple[str, ...] = ("sst2", "mrpc")) -> list[str]:
    """One row per point and runtime: size, speed against dense ONNX Runtime FP32, test score and its cost."""
    speed = json.loads(SPEED.read_text())
    all_runs = runs()
    dense = {t: scores(all_runs, t, POINTS[0]) for t in tasks}
    head = ["model", "runtime", "parameters", "batch 1 FP32", "batch 1 INT8", "batch 32 FP32", "batch 32 INT8"]
    head += [f"{TASK_NAMES[t]} test (minus dense, 95% interval)" for t in tasks]
    head += [f"INT8 minus FP32 ({TASK_NAMES[speed['task']]}, seed {speed['seed']})"]
    lines = ["| " + " | ".join(head) + " |", "| --- | --- | ---: | ---: | ---: | ---: | ---: |" + " --- |" * (len(tasks) + 1)]
    for point in POINTS:
        for runtime in point.runtimes:
            x = speedups(speed, point.label, runtime)
            cells = [point.label, runtime, f"{speed['models'][point.label]['parameters'] / 1e6:.1f} M"]
            cells += [f"{x[(b, p)]:.2f}x" if (b, p) in x else "–" for b in (1, 32) for p in ("fp32", "int8")]
            for t in tasks:
                own = scores(all_runs, t, point)
                mean = sum(own.values()) / len(own) if own else float("nan")
                cells.append(f"{mean:.2f}" if point.method == "dense" else f"{mean:.2f} ({_shown(difference(own, dense[t]))})")
            acc = speed["int8_accuracy"][point.label]
            cells.append(f"{100 * acc['delta']:+.2f}")
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def versus_gfs(tasks: tuple[str, ...] = ("sst2", "mrpc")) -> list[str]:
    """Structured PINS minus GFS at the same size, paired by seed."""
    all_runs = runs()
    lines = ["| size | " + " | ".join(f"{TASK_NAMES[t]}: structured PINS minus GFS (95% interval)" for t in tasks)
             + " | seeds |", "| --- |" + " --- |" * len(tasks) + " --- |"]
    for sparsity, size in ((0.5, "1/2 of heads and FFN units"), (0.75, "1/4 of heads and FFN units")):
        pins = next(p for p in POINTS if p.method == "pins_structured" and p.sparsity == sparsity)
        gfs = next(p for p in POINTS if p.method == "gfs" and p.sparsity == sparsity)
        diffs = [difference(scores(all_runs, t, pins), scores(all_runs, t, gfs)) for t in tasks]
        lines.append(f"| {size} | " + " | ".join(_shown(d) for d in diffs) + f" | {min(d[2] for d in diffs)} |")
    return lines


def plot(path: Path = RESULTS / "frontier.png", tasks: tuple[str, ...] = ("sst2", "mrpc")) -> Path:
    """Test score against speed-up (batch 1, log scale), one panel per task; FP32 filled, INT8 hollow."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    speed = json.loads(SPEED.read_text())
    all_runs = runs()
    fig = Figure(figsize=(11, 4.6))
    FigureCanvasAgg(fig)
    colours = {"dense": "black", "pins": "tab:blue", "pins_structured": "tab:red", "gfs": "tab:green",
               "pins_compound": "tab:purple"}
    for index, task in enumerate(tasks):
        ax = fig.add_subplot(1, len(tasks), index + 1)
        for point in POINTS:
            own = scores(all_runs, task, point)
            if not own:
                continue
            y = sum(own.values()) / len(own)
            for runtime in point.runtimes:
                x = speedups(speed, point.label, runtime)
                for precision, face in (("fp32", colours[point.method]), ("int8", "white")):
                    ax.scatter(x[(1, precision)], y, s=55, color=face, edgecolors=colours[point.method],
                               marker="s" if runtime == DS else "o", linewidths=1.5, zorder=3)
            ax.annotate(point.short, (x[(1, "fp32")], y), textcoords="offset points", xytext=(4, 5), fontsize=7)
        ax.set_xscale("log")
        ticks = [0.25, 0.5, 1, 2, 4, 8, 16]
        low, high = ax.get_xlim()
        ax.set_xticks([t for t in ticks if low <= t <= high], [f"{t:g}x" for t in ticks if low <= t <= high])
        ax.minorticks_off()
        ax.set_xlabel("items/s relative to dense ONNX Runtime FP32 (batch 1, sequence 128)", fontsize=8)
        ax.set_ylabel(f"{TASK_NAMES[task]} test score (mean over seeds)", fontsize=8)
        ax.grid(True, alpha=0.3)
        ax.set_title(f"{TASK_NAMES[task]}: circles ONNX Runtime, squares DeepSparse; hollow INT8", fontsize=8)
    fig.suptitle("all-MiniLM-L6-v2: accuracy against speed of every kind of model hf-pins produces", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=Path, default=Path("/tmp/frontier_scratch"),
                        help="glue_cpu.py's --scratch folder of the grid")
    parser.add_argument("--task", default="sst2", help="the task whose models are timed (and calibrate INT8)")
    parser.add_argument("--glue-dir", default=str(REPO.parent / "shared" / "glue"))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--sequence-length", type=int, default=128)
    parser.add_argument("--seconds", type=float, default=6.0, help="measured seconds per configuration and batch size")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", type=Path, default=SPEED)
    args = parser.parse_args(argv)

    from hf_pins import inference_benchmark as ib

    with tempfile.TemporaryDirectory(prefix="hf_pins_frontier_") as tmp:
        onnx_dirs, int8 = export_all(args.models, args.task, args.seed, Path(tmp), args.sequence_length,
                                     args.glue_dir)
        rows = measure(onnx_dirs, args.batch_sizes, args.sequence_length, args.seconds, args.rounds)
    result = {"command": shlex.join(["python", "benchmarks/frontier.py", *(argv if argv is not None else sys.argv[1:])]),
              "task": args.task, "seed": args.seed, "machine": ib.machine_info(),
              "models": shapes(args.models, args.task, args.seed), "int8_accuracy": int8, "results": rows}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1) + "\n")
    for row in rows:
        print(f"b{row['batch_size']:<3} {row['model'][:44]:<44} {row['runtime']:<12} {row['precision']:<5} "
              f"{row['items_per_second']:9.2f} items/s  {row['speedup_vs_dense_ort_fp32']:5.2f}x")
    print(f"written {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
