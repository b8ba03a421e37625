"""The accuracy-speed frontier: every kind of model the library produces, its test score against its speed.

Accuracy comes from trained runs of `benchmarks/glue_cpu.py` (MiniLM-L6, the CPU budget, the real GLUE data), one
JSON per group in `benchmarks/results/frontier/`; `POINTS` names each point's cells and the command that trains them.
Speed is measured here, on one task's models of one seed (speed depends on shapes and zeros, not on the task):
each is exported by `hf-pins export --int8` and all are timed in one process, in interleaved rounds, at batch 1 and
batch 32, sequence 128 (`hf_pins.inference_benchmark`). Structured models and dense run on ONNX Runtime; unstructured
ones on DeepSparse (ONNX Runtime gains nothing from zeros); the compound model on both.

    python benchmarks/frontier.py --models /tmp/frontier_scratch          # after the grid below; ~15 minutes
    python benchmarks/report.py --plots                                   # the table and plot in BENCHMARKS.md

The grid (three seeds; a cell's model stays in --scratch for the speed run):

    python benchmarks/glue_cpu.py --tasks sst2 mrpc --methods pins_structured gfs --sparsities 0.5 0.75 \\
        --seeds 42 43 44 --workers 2 --budget small --scratch /tmp/frontier_scratch --output benchmarks/results/frontier/structured.json
    python benchmarks/glue_cpu.py --tasks sst2 mrpc --methods dense pins --sparsities 0.8 0.9 \\
        --seeds 42 43 44 --workers 2 --budget small --scratch /tmp/frontier_scratch --output benchmarks/results/frontier/unstructured.json
    python benchmarks/glue_cpu.py --tasks sst2 mrpc --methods pins_compound --sparsities 0.9 \\
        --seeds 42 43 44 --workers 2 --budget small --scratch /tmp/frontier_scratch --output benchmarks/results/frontier/compound.json
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
    method: str  # glue_cpu.py's method
    sparsity: float  # glue_cpu.py's --sparsities value (0 for dense)
    group: str  # the results JSON holding its cells
    runtimes: tuple[str, ...]

    @property
    def cell(self) -> str:
        return f"{self.method}-{self.sparsity}"


ORT, DS = "onnxruntime", "deepsparse"
POINTS = (
    Point("dense", "dense", 0.0, "unstructured", (ORT,)),
    Point("PINS 80% (unstructured)", "pins", 0.8, "unstructured", (DS,)),
    Point("PINS 90% (unstructured)", "pins", 0.9, "unstructured", (DS,)),
    Point("structured PINS, 1/2 of heads and FFN units", "pins_structured", 0.5, "structured", (ORT,)),
    Point("structured PINS, 1/4 of heads and FFN units", "pins_structured", 0.75, "structured", (ORT,)),
    Point("GFS, 1/2 of heads and FFN units", "gfs", 0.5, "structured", (ORT,)),
    Point("GFS, 1/4 of heads and FFN units", "gfs", 0.75, "structured", (ORT,)),
    Point("compound: structured 1/2, then 90% of the original weights", "pins_compound", 0.9, "compound", (ORT, DS)),
)


def model_dir(models: Path, task: str, point: Point, seed: int) -> Path:
    """Where glue_cpu.py left the cell's final model (its --scratch layout)."""
    return models / f"{task}-{point.method}-{point.sparsity}-{seed}"


def export_all(models: Path, task: str, seed: int, folder: Path, sequence_length: int) -> dict[str, Path]:
    """Every point's model exported to ONNX (FP32 and INT8) under `folder`; returns {label: onnx_dir}."""
    from hf_pins import export as ex

    out = {}
    for point in POINTS:
        source = model_dir(models, task, point, seed)
        if not (source / "config.json").is_file():
            raise SystemExit(f"error: --models: {source} holds no trained model; run the grid in this script's "
                             f"docstring first")
        target = folder / point.cell
        ex.export_model(source, target, sequence_length=sequence_length, int8=True, log=lambda _: None)
        out[point.label] = target
        print(f"exported {point.label}", flush=True)
    return out


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=Path, default=Path("/tmp/frontier_scratch"),
                        help="glue_cpu.py's --scratch folder of the grid")
    parser.add_argument("--task", default="sst2")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--sequence-length", type=int, default=128)
    parser.add_argument("--seconds", type=float, default=6.0, help="measured seconds per configuration and batch size")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", type=Path, default=SPEED)
    args = parser.parse_args(argv)

    from hf_pins import inference_benchmark as ib

    with tempfile.TemporaryDirectory(prefix="hf_pins_frontier_") as tmp:
        onnx_dirs = export_all(args.models, args.task, args.seed, Path(tmp), args.sequence_length)
        rows = measure(onnx_dirs, args.batch_sizes, args.sequence_length, args.seconds, args.rounds)
    result = {"command": shlex.join(["python", "benchmarks/frontier.py", *(argv if argv is not None else sys.argv[1:])]),
              "task": args.task, "seed": args.seed, "machine": ib.machine_info(),
              "models": shapes(args.models, args.task, args.seed), "results": rows}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1) + "\n")
    for row in rows:
        print(f"b{row['batch_size']:<3} {row['model'][:44]:<44} {row['runtime']:<12} {row['precision']:<5} "
              f"{row['items_per_second']:9.2f} items/s  {row['speedup_vs_dense_ort_fp32']:5.2f}x")
    print(f"written {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
