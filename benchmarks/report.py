"""Every table of BENCHMARKS.md and docs/research.md, from the committed JSON under `benchmarks/results/` alone.

Each table lives between two markers, `<!-- report:NAME -->` and `<!-- /report:NAME -->`; this script rewrites what
lies between them and nothing else, so the prose around the tables stays hand-written. A benchmark script writes its
JSON; this script turns the JSON into tables:

    python benchmarks/report.py            # rewrite the generated blocks of both files
    python benchmarks/report.py --check    # exit 1, naming the stale blocks, if a file differs from what it would write
    python benchmarks/report.py --plots    # also redraw the mini-GLUE and frontier plots (PNG; not part of --check)

Which files feed which table is written once, below (`GLUE`, `LONGER`, ...); each results folder's README says the
same in one line. Scores are in percent, as the grid writes them.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import frontier  # noqa: E402
import glue_report as gr  # noqa: E402
from dev_curves import compare  # noqa: E402
from glue_cpu import TASKS  # noqa: E402
from teacher_weight import phase_weights  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
DOCS = {"BENCHMARKS.md": REPO / "BENCHMARKS.md", "docs/research.md": REPO / "docs" / "research.md"}
MARKER = re.compile(r"<!-- report:([a-z0-9-]+) -->\n.*?<!-- /report:\1 -->", re.S)

# The mini-GLUE grid: seed 42 of every cell, the further seeds, and current-code reruns of cells that an earlier
# version of PINS's regression teacher ran (they replace those runs in every table over seeds).
GLUE = RESULTS / "glue"
GRID = GLUE / "glue_gpu.json"
SEEDS = [GLUE / f for f in (
    "glue_gpu_seeds.json", "glue_cpu_cola90_seeds.json", "glue_cpu_cola90_seeds_no_selfreg.json",
    "glue_cpu_cola80_seeds.json", "glue_cpu_cola90_seeds_45_46.json", "glue_cpu_80_seeds_sst2_stsb.json",
    "glue_cpu_90_seed43.json", "glue_cpu_80_stsb_no_selfreg.json", "glue_cpu_90_seed44.json", "glue_cpu_90_seed45.json",
    "glue_cpu_80_seed45.json", "glue_gpu_seed43.json", "glue_gpu_seed44_dense_no_selfreg.json", "glue_gpu_seed44.json",
    "glue_cpu_dense_seed45.json")]
REVISED = [GLUE / "glue_cpu_80_stsb_pins_revised.json", GLUE / "glue_cpu_90_stsb_pins_revised.json"]
LONGER = [RESULTS / "glue_recipe_budgets" / f for f in (
    "glue_gpu_rte_e10.json", "glue_gpu_e8.json", "glue_cpu_cola90_e8.json", "glue_gpu_sst2_e3.json")]
VARIANTS = RESULTS / "pins_variants"
NAMES = {"dense": "dense fine-tuning", "pins": "PINS", "platon": "PLATON", "pins_no_selfreg": "PINS without self-reg.",
         "magnitude": "magnitude", "movement": "movement", "soft_movement": "soft movement", "grda": "gRDA",
         "gfs": "GFS (structured)"}


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def runs_of(*paths: Path, **match) -> list[dict]:
    """The runs of these files whose fields equal `match` (target_sparsity compared to 1e-9)."""
    out = []
    for path in paths:
        for run in load(path)["runs"]:
            if all(abs(run.get(k, -1) - v) < 1e-9 if k == "target_sparsity" else run.get(k) == v
                   for k, v in match.items()):
                out.append(run)
    return out


def glue_runs() -> tuple[list[dict], list[dict]]:
    """(the grid's runs, every further seed) with the revised runs in place of the ones they repeat."""
    runs = load(GRID)["runs"]
    more = [r for f in SEEDS for r in load(f)["runs"]]
    revised = [r for f in REVISED for r in load(f)["runs"]]
    return gr.revise(runs, revised), gr.revise(more, revised) + revised


def five_task_mean(everything: list[dict], method: str, sparsity: float) -> tuple[float, list[int]]:
    """A method's five-task average over the seeds every task has, and those seeds."""
    by_task = gr.seed_scores(everything, method, sparsity, list(TASKS))
    seeds = gr.shared_seeds(*by_task.values())
    return statistics.mean(statistics.mean(by_task[t][s] for s in seeds) for t in TASKS), seeds


def seed_range(seeds: list[int]) -> str:
    return f"{seeds[0]}-{seeds[-1]}" if seeds == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 2 else \
        ", ".join(map(str, seeds))


def reading(row: dict) -> str:
    if row["decision"] == "undecided":
        return "level: the interval holds 0" if row["bound"] == 0 else "undecided: the interval holds -1"
    if row["bound"] == -1:
        return "**more than 1 point below**" if row["decision"] == "below" else "within 1 point"
    return "PINS ahead" if row["decision"] == "above" else "**PINS behind**"


# ---------------------------------------------------------------------------------------------------- BENCHMARKS.md


def block_summary() -> list[str]:
    """The first screen: per sparsity, each method's five-task average over seeds and PINS minus it, paired."""
    runs, more = glue_runs()
    everything = runs + more
    rows = {(r["method"], r["sparsity"]): r for r in gr.paired_differences(runs, more, list(TASKS))}
    lines = ["| sparsity | method | five-task average | seeds | PINS minus it (95% interval) | reading |",
             "| --- | --- | ---: | --- | --- | --- |"]
    for sparsity in (0.8, 0.9):
        pins, seeds = five_task_mean(everything, "pins", sparsity)
        lines.append(f"| {sparsity:.0%} | **PINS** | **{pins:.2f}** | {seed_range(seeds)} | | |")
        for method in ("dense", "platon", "pins_no_selfreg", "magnitude", "gfs", "movement", "soft_movement", "grda"):
            mean, seeds = five_task_mean(everything, method, 0.0 if method == "dense" else sparsity)
            row = rows[(method, sparsity)]
            diff = statistics.mean(row["differences"])
            lines.append(f"| {sparsity:.0%} | {NAMES[method]}{' (0%)' if method == 'dense' else ''} | {mean:.2f} | "
                         f"{seed_range(seeds)} | {diff:+.2f} {gr.shown_interval(row)} | {reading(row)} |")
    return lines


def block_verdicts() -> list[str]:
    runs, more = glue_runs()
    return gr.seed_verdicts(gr.paired_differences(runs, more, list(TASKS)))[2:-1]


def block_step_overhead() -> list[str]:
    data = load(RESULTS / "step_overhead" / "step_overhead.json")
    labels = {"plain": "plain `Trainer` fine-tuning", "pins": "PINS (self-regularization on, bf16 teacher)",
              "pins_no_selfreg": "PINS without self-regularization"}
    lines = ["| configuration | s/step | x plain | peak RSS MB | x plain | scores + masks, share of a step |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in data["runs"]:
        share = "–" if r["config"] == "plain" else f"{r['pruning_share_of_step']:.1%}"
        lines.append(f"| {labels.get(r['config'], r['config'])} | {r['step_seconds_median']:.3f} | "
                     f"{r['step_time_ratio']:.2f} | {r['peak_rss_mb']:.0f} | {r['peak_memory_ratio']:.2f} | {share} |")
    m = data["machine"]
    lines += ["", f"Machine: {m['cpu']}, {m['cores']} cores, {data['settings']['threads']} threads, torch {m['torch']}, "
              f"Python {m['python']}; {data['settings']['steps']} steps, batch {data['settings']['batch_size']}, "
              f"length {data['settings']['max_length']}."]
    return lines


def block_step_overhead_rerun() -> list[str]:
    data = load(RESULTS / "step_overhead" / "step_overhead_scorers.json")
    lines = ["| configuration | s/step | x plain | scores + masks, share of a step |", "| --- | ---: | ---: | ---: |"]
    for r in data["runs"]:
        share = "–" if r["config"] == "plain" else f"{r['pruning_share_of_step']:.1%}"
        lines.append(f"| {r['config']} | {r['step_seconds_median']:.3f} | {r['step_time_ratio']:.2f} | {share} |")
    return lines


def inference_table(rows: list[dict]) -> list[str]:
    base = next(r for r in rows if (r["model"], r["runtime"], r["precision"]) == ("dense", "onnxruntime", "fp32"))
    lines = ["| model | sparsity | runtime | precision | items/s | median ms | p90 ms | vs dense ONNX Runtime FP32 |",
             "| --- | ---: | --- | --- | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['sparsity']:.0%} | {r['runtime']} | {r['precision']} | "
                     f"{r['items_per_second']:.2f} | {r['latency_ms_median']:.1f} | {r['latency_ms_p90']:.1f} | "
                     f"{r['items_per_second'] / base['items_per_second']:.2f}x |")
    return lines


def block_inference_bert_base() -> list[str]:
    data = load(RESULTS / "inference" / "inference_bert_base.json")
    lines = []
    for threads in sorted({r["threads"] for r in data["results"]}):
        lines += [f"{threads} thread{'s' if threads > 1 else ''} per runtime:", "",
                  *inference_table([r for r in data["results"] if r["threads"] == threads]), ""]
    acc = data["accuracy"]
    lines.append(f"INT8's accuracy cost, on an 80%-sparse MiniLM fine-tuned on SST-2 ({acc['eval_split']}): "
                 f"FP32 {acc['fp32']:.4f}, INT8 {acc['int8']:.4f} ({acc['delta'] * 100:+.2f} points) with ONNX Runtime, "
                 f"INT8 {acc['int8_deepsparse']:.4f} with DeepSparse.")
    return lines


def block_inference_minilm() -> list[str]:
    data = load(RESULTS / "inference" / "inference_minilm_glue.json")
    lines = [*inference_table(data["results"]), ""]
    for label, info in data["models"].items():
        acc = info.get("int8_accuracy")
        if acc:
            lines.append(f"- {label} ({info['source']}): test {acc['metric']} on {acc['examples']} examples, FP32 "
                         f"{acc['fp32']:.4f}, INT8 {acc['int8']:.4f} ({100 * acc['delta']:+.2f} points).")
    return lines


def block_glue_budget() -> list[str]:
    data = load(GRID)
    lines = ["| task | training examples | epochs | max length | batch | metric |", "| --- | --- | ---: | ---: | ---: | --- |"]
    metric = {"rte": "accuracy", "mrpc": "mean of F1 and accuracy", "stsb": "Pearson", "cola": "Matthews",
              "sst2": "accuracy"}
    for task in TASKS:
        b = data["settings"]["budget"][task]
        samples = "all" if b.get("max_train_samples") is None else f"{b['max_train_samples']:,}"
        cap = f" (dev and test capped at {b['max_eval_samples']:,})" if b.get("max_eval_samples") else ""
        lines.append(f"| {task} | {samples}{cap} | {b['num_train_epochs']} | {b['max_length']} | {b['batch_size']} | "
                     f"{metric[task]} |")
    return lines


def block_glue_means() -> list[str]:
    runs, more = glue_runs()
    return gr.seed_averages(runs, more, list(TASKS))[2:-1]


def block_glue_differences() -> list[str]:
    runs, more = glue_runs()
    return gr.seed_differences(gr.paired_differences(runs, more, list(TASKS)))[2:-1]


def longer() -> list[str]:
    runs, more = glue_runs()
    return gr.longer_schedules(load(GRID), runs + more, [(f, load(f)) for f in LONGER])


def block_glue_longer() -> list[str]:
    lines = longer()
    start = next(i for i, line in enumerate(lines) if line.startswith("Their task averages"))
    return lines[start + 2:-1]


# ------------------------------------------------------------------------------------------------ docs/research.md


def block_score_agreement() -> list[str]:
    data = load(RESULTS / "score_agreement" / "score_agreement.json")
    lines = ["| CoLA, PINS driving | mask updates | PINS's own criterion | PLATON's | PINS with the SGD stand-in "
             "(`importance_update: sgd`) | magnitude | test score of the run |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for run in sorted(data["runs"], key=lambda r: r["target_sparsity"]):
        s = run["summary"]
        cell = lambda name: f"{s[name]['same_choice']:.2%} ({s[name]['lowest_in_one_update']:.2%})"  # noqa: E731
        lines.append(f"| {run['target_sparsity']:.0%}, seed {run['seed']} | {len(run['updates'])} | {cell('pins')} | "
                     f"{cell('platon')} | {cell('pins_sgd')} | {cell('magnitude')} | {run['test_score']:.2f} |")
    return lines


def dev_test_table(rows: list[tuple[str, list[dict]]], seeds: list[int]) -> list[str]:
    """One row per variant: dev / test per seed and their means over the seeds it has."""
    lines = ["| run | " + " | ".join(f"seed {s}: dev / test" for s in seeds) + " | mean dev / test |",
             "| --- |" + " --- |" * (len(seeds) + 1)]
    for label, runs in rows:
        by_seed = {r["seed"]: r for r in runs}
        cells = [f"{by_seed[s]['dev_score']:.2f} / {by_seed[s]['test_score']:.2f}" if s in by_seed else "–"
                 for s in seeds]
        have = [by_seed[s] for s in seeds if s in by_seed]
        mean = (f"{statistics.mean(r['dev_score'] for r in have):.2f} / "
                f"{statistics.mean(r['test_score'] for r in have):.2f}")
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {mean} |")
    return lines


def block_signed() -> list[str]:
    signed = RESULTS / "signed_ranking" / "glue_cpu_80_signed.json"
    lines = ["| PINS at 80%, seed 42 | ranking | dev | test |", "| --- | --- | ---: | ---: |"]
    for task in ("mrpc", "rte"):
        for label, run in (("`absolute` (default)", runs_of(GRID, task=task, method="pins", target_sparsity=0.8)[0]),
                           ("`signed` (the paper's)", runs_of(signed, task=task)[0])):
            lines.append(f"| {task} | {label} | {run['dev_score']:.2f} | {run['test_score']:.2f} |")
    return lines


def block_selfreg_seeds() -> list[str]:
    """PINS minus PINS without self-regularization at 80%, dev and test, per seed, on the tasks where it acts."""
    runs, more = glue_runs()
    everything = runs + more + runs_of(RESULTS / "self_regularization" / "glue_cpu_80_seed45_no_selfreg.json")
    lines = ["| task | seeds | dev, per seed | dev, mean | test, per seed | test, mean |",
             "| --- | --- | --- | ---: | --- | ---: |"]
    for task in ("rte", "mrpc", "cola", "sst2"):
        pick = lambda m: {r["seed"]: r for r in everything  # noqa: E731
                          if (r["task"], r["method"]) == (task, m) and abs(r["target_sparsity"] - 0.8) < 1e-9}
        pins, plain = pick("pins"), pick("pins_no_selfreg")
        seeds = sorted(set(pins) & set(plain))
        dev = [pins[s]["dev_score"] - plain[s]["dev_score"] for s in seeds]
        test = [pins[s]["test_score"] - plain[s]["test_score"] for s in seeds]
        lines.append(f"| {task} | {seed_range(seeds)} | {', '.join(f'{d:+.2f}' for d in dev)} | "
                     f"{statistics.mean(dev):+.2f} | {', '.join(f'{d:+.2f}' for d in test)} | "
                     f"{statistics.mean(test):+.2f} |")
    return lines


def block_teacher_weight() -> list[str]:
    lines = ["| task | sparsity | steps | teacher weight: ramp | at the target | teacher refreshes | "
             "last teacher: step (sparsity) | test |", "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |"]
    tests = {(r["task"], r["target_sparsity"]): r["test_score"]
             for r in runs_of(RESULTS / "teacher_weight" / "glue_cpu_teacher_weight.json")}
    for path in sorted((RESULTS / "teacher_weight" / "teacher_weight_logs").glob("*.json")):
        report = load(path)
        w = phase_weights(report)
        lines.append(f"| {report['task']} | {report['target_sparsity']:.0%} | {report['total_steps']} | {w['ramp']:.2f} | "
                     f"{w['final']:.2f} | {w['refreshes']} | {w['last_teacher_step']} ({w['last_teacher_sparsity']:.2f}) "
                     f"| {tests[(report['task'], report['target_sparsity'])]:.2f} |")
    return lines


def block_sst2_one_epoch() -> list[str]:
    folder = RESULTS / "sst2_one_epoch"
    logs = folder / "sst2_e1_logs"
    variants = [("PLATON", "sst2-platon-0.8-{}", runs_of(folder / "glue_cpu_sst2_e1_platon.json")),
                ("PINS without self-regularization", "sst2-pins_no_selfreg-0.8-{}",
                 runs_of(folder / "glue_cpu_sst2_e1.json", folder / "glue_cpu_sst2_e1_seed43.json",
                         method="pins_no_selfreg")),
                ("PINS (`entropy` weight, the default)", "sst2-pins-0.8-{}",
                 runs_of(folder / "glue_cpu_sst2_e1.json", folder / "glue_cpu_sst2_e1_seed43.json", method="pins")),
                ("PINS, `entropy_if_correct`", "sst2-pins-0.8-{}-entropy_if_correct",
                 runs_of(folder / "glue_cpu_sst2_e1_entropy_if_correct.json",
                         folder / "glue_cpu_sst2_e1_seed43_entropy_if_correct.json"))]
    lines = ["| SST-2 at 80%, all examples x 1 epoch | dev / test, seed 42 | seed 43 | test, mean | dev minus PLATON: "
             "ramp, seed 42 / 43 | at the target, seed 42 / 43 | teacher weight: ramp / target, seed 42 / 43 |",
             "| --- | --- | --- | ---: | --- | --- | --- |"]
    for label, stem, runs in variants:
        by_seed = {r["seed"]: r for r in runs}
        cells = [f"{by_seed[s]['dev_score']:.2f} / {by_seed[s]['test_score']:.2f}" for s in (42, 43)]
        curves, weights = [], []
        for seed in (42, 43):
            report = load(logs / f"{stem.format(seed)}.pruning_report.json")
            curves.append(compare(load(logs / f"sst2-platon-0.8-{seed}.pruning_report.json"), report))
            w = phase_weights(report)
            weights.append("–" if w["ramp"] is None else f"{w['ramp']:.2f} / {w['final']:.2f}")
        phase = lambda name: "–" if label == "PLATON" else " / ".join(  # noqa: E731
            f"{c[name]['mean']:+.2f}" for c in curves)
        lines.append(f"| {label} | {cells[0]} | {cells[1]} | "
                     f"{statistics.mean(r['test_score'] for r in runs):.2f} | {phase('ramp')} | {phase('target')} | "
                     f"{', '.join(weights) if any(w != '–' for w in weights) else '–'} |")
    return lines


def cola_defaults(sparsity: float) -> list[dict]:
    """PINS's defaults on CoLA on the CPU, seeds 42 to 45, seeded classification head (the variants' reference)."""
    later = GLUE / ("glue_cpu_80_seed45.json" if sparsity == 0.8 else "glue_cpu_cola90_seeds_45_46.json")
    return (runs_of(RESULTS / "teacher_weight" / "glue_cpu_teacher_weight.json", task="cola", target_sparsity=sparsity)
            + runs_of(VARIANTS / "glue_cpu_cola_pins_seeded_head.json", target_sparsity=sparsity)
            + runs_of(later, task="cola", method="pins", seed=45))


def block_cola_variants() -> list[str]:
    lines = []
    for sparsity in (0.8, 0.9):
        pick = lambda name: runs_of(VARIANTS / name, target_sparsity=sparsity)  # noqa: E731
        rows = [("defaults", cola_defaults(sparsity)),
                ("`score_beta2: 0.99`", pick("glue_cpu_cola_beta2_099.json")),
                ("`experimental.max_sparsity_gap: 0.1`", pick("glue_cpu_cola_gap01.json")),
                ("constant weight 0.5, `experimental.skip_trivial_teacher`", pick("glue_cpu_cola_constant_weight.json"))]
        if sparsity == 0.8:
            rows.append(("`experimental.entropy_if_correct`", pick("glue_cpu_cola_entropy_if_correct.json")
                         + pick("glue_cpu_cola_entropy_if_correct_42_45.json")))
        lines += [f"PINS on CoLA at {sparsity:.0%}:", "", *dev_test_table(rows, [42, 43, 44, 45]), ""]
    return lines[:-1]


def block_mrpc_guard() -> list[str]:
    defaults = (runs_of(RESULTS / "teacher_weight" / "glue_cpu_teacher_weight.json", task="mrpc")
                + runs_of(GLUE / "glue_cpu_80_seed45.json", task="mrpc", method="pins"))
    return dev_test_table([("defaults", defaults), ("`experimental.entropy_if_correct`",
                                                    runs_of(VARIANTS / "glue_cpu_mrpc_entropy_if_correct.json"))],
                          [42, 45])


def block_rte_at_target() -> list[str]:
    return dev_test_table([("defaults (distillation throughout)", runs_of(VARIANTS / "glue_cpu_rte80_pins_cpu.json")),
                           ("`experimental.distil_at_target: false`",
                            runs_of(VARIANTS / "glue_cpu_rte80_at_target_false.json"))], [43, 44])


def block_stsb_regression() -> list[str]:
    seeds_file = GLUE / "glue_cpu_80_seeds_sst2_stsb.json"
    earlier = runs_of(GRID, task="stsb", method="pins", target_sparsity=0.8) + runs_of(seeds_file, task="stsb",
                                                                                     method="pins")
    plain = (runs_of(GRID, task="stsb", method="pins_no_selfreg", target_sparsity=0.8)
             + runs_of(GLUE / "glue_cpu_80_stsb_no_selfreg.json"))
    return dev_test_table([("no teacher on regression (`experimental.regression_alpha: 0`, the default; "
                            "PINS without self-regularization)", plain),
                           ("`experimental.regression_alpha: 0.2`",
                            runs_of(VARIANTS / "glue_cpu_80_stsb_alpha02.json")),
                           ("`experimental.regression_alpha: 0.5`", earlier),
                           ("PINS with the default", runs_of(REVISED[0]))], [42, 43, 44])


def block_warmup() -> list[str]:
    """Task averages of seed 42 with the short dense warm-up (7% of the steps) and with one epoch."""
    lines = gr.comparison(load(RESULTS / "glue_short_warmup" / "glue_gpu_short_warmup.json"), load(GRID),
                          RESULTS / "glue_short_warmup" / "glue_gpu_short_warmup.json")[2:-1]
    return [lines[0].replace(" before |", ", warm-up 7% |").replace(" now |", ", warm-up 1 epoch |"), *lines[1:]]


def block_longer_cells() -> list[str]:
    lines = longer()
    end = next(i for i, line in enumerate(lines) if line.startswith("Their task averages"))
    return lines[2:end - 1]


def block_cola_gap() -> list[str]:
    """PINS minus dense per task over the seeds both have (the grid's budget), at 80%."""
    runs, more = glue_runs()
    everything = runs + more
    lines = ["| task | seeds | dense | PINS 80% | PINS minus dense |", "| --- | --- | ---: | ---: | ---: |"]
    for task in TASKS:
        pins = gr.seed_scores(everything, "pins", 0.8, [task])[task]
        dense = gr.seed_scores(everything, "dense", 0.0, [task])[task]
        seeds = gr.shared_seeds(pins, dense)
        a, b = statistics.mean(dense[s] for s in seeds), statistics.mean(pins[s] for s in seeds)
        lines.append(f"| {task} | {seed_range(seeds)} | {a:.2f} | {b:.2f} | {b - a:+.2f} |")
    return lines


def block_own_data() -> list[str]:
    """Load and tokenize a generated 200,000-row CSV, first run and again from the datasets cache."""
    data = load(RESULTS / "own_data" / "own_data.json")
    lines = ["| run | load + check + split (s) | tokenize (s) | peak memory (MiB) | of which imports (MiB) | rows train / dev / test |",
             "| --- | ---: | ---: | ---: | ---: | --- |"]
    for name, phase in data["phases"].items():
        rows = phase["rows"]
        lines.append(f"| {name} | {phase['load_check_split_s']:.2f} | {phase['tokenize_s']:.2f} | "
                     f"{phase['peak_rss_mib']:.0f} | {phase['rss_after_imports_mib']:.0f} | "
                     f"{rows['train']:,} / {rows['dev']:,} / {rows['test']:,} |")
    return lines


def block_own_data_vs_glue() -> list[str]:
    """The same rows, recipe and seed through the GLUE path and as CSV files through the general path."""
    data = load(RESULTS / "own_data" / "own_data_vs_glue.json")
    lines = ["| path | test accuracy | dev accuracy | sparsity |", "| --- | ---: | ---: | ---: |"]
    for name, label in (("glue_path", f"GLUE ({data['task']})"), ("own_data_path", "own data (CSV files)")):
        run = data["results"][name]
        lines.append(f"| {label} | {run['test']['accuracy']:.4f} | {run['dev']['accuracy']:.4f} | "
                     f"{run['overall']:.4f} |")
    return lines


def block_faults() -> list[str]:
    """Bad inputs and faults the test suite tries, by class (a fresh collection must give the same counts)."""
    data = load(RESULTS / "faults" / "fault_cases.json")
    lines = ["| class of bad input or fault | cases |", "| --- | ---: |"]
    lines += [f"| {name} | {count} |" for name, count in data["cases"].items()]
    return lines + [f"| total | {data['total']} |"]


def block_frontier() -> list[str]:
    speed = load(frontier.SPEED)
    seeds = sorted({r["seed"] for r in frontier.runs()})
    dense = {(r["batch_size"], r["runtime"], r["precision"]): r["items_per_second"] for r in speed["results"]
             if r["model"] == "dense"}
    machine = speed["machine"]
    return [*frontier.table(), "",
            f"Speed: {speed['task']} models of seed {speed['seed']}, one run (`{speed['command']}`) on "
            f"{machine['cpu']} ({machine['cores_physical']} cores); dense ONNX Runtime FP32 ran "
            f"{dense[(1, 'onnxruntime', 'fp32')]:.1f} items/s at batch 1 and {dense[(32, 'onnxruntime', 'fp32')]:.1f} "
            f"at batch 32. Test scores: seeds {seed_range(seeds)}, each point's interval paired by seed with dense.",
            "", *frontier.versus_gfs()]


BLOCKS = {
    "BENCHMARKS.md": {"summary": block_summary, "verdicts": block_verdicts, "step-overhead": block_step_overhead,
                      "step-overhead-rerun": block_step_overhead_rerun,
                      "inference-bert-base": block_inference_bert_base, "inference-minilm": block_inference_minilm,
                      "glue-budget": block_glue_budget, "glue-means": block_glue_means,
                      "glue-differences": block_glue_differences, "glue-longer": block_glue_longer,
                      "own-data": block_own_data, "frontier": block_frontier, "own-data-vs-glue": block_own_data_vs_glue, "faults": block_faults},
    "docs/research.md": {"score-agreement": block_score_agreement, "signed": block_signed,
                         "selfreg-seeds": block_selfreg_seeds, "teacher-weight": block_teacher_weight,
                         "sst2-one-epoch": block_sst2_one_epoch, "cola-variants": block_cola_variants,
                         "mrpc-guard": block_mrpc_guard, "rte-at-target": block_rte_at_target,
                         "stsb-regression": block_stsb_regression, "warmup": block_warmup,
                         "longer-cells": block_longer_cells, "cola-gap": block_cola_gap},
}


def render(name: str, text: str) -> str:
    """`text` with every generated block rewritten; a marker without a generator, or a generator without a marker,
    is an error (a table that silently stops being generated is the failure this script exists to prevent)."""
    blocks = BLOCKS[name]
    found = MARKER.findall(text)
    unknown, missing = set(found) - set(blocks), set(blocks) - set(found)
    if unknown or missing:
        raise SystemExit(f"error: {name}: markers without a generator: {sorted(unknown) or 'none'}; "
                         f"generators without a marker: {sorted(missing) or 'none'}")
    return MARKER.sub(lambda m: f"<!-- report:{m[1]} -->\n" + "\n".join(blocks[m[1]]()) + f"\n<!-- /report:{m[1]} -->",
                      text)


def stale(name: str) -> list[str]:
    """The blocks of `name` whose committed text differs from what `render` writes."""
    text = DOCS[name].read_text()
    now = {m[1]: m[0] for m in MARKER.finditer(text)}
    new = {m[1]: m[0] for m in MARKER.finditer(render(name, text))}
    return [block for block in new if new[block] != now.get(block)]


def plots() -> list[Path]:
    """The score-against-sparsity plot from every seed (each cell's mean), the time plot from the grid's machine."""
    runs, more = glue_runs()
    grid = load(GRID)
    paths = gr.plots(grid, GLUE, "glue") + [frontier.plot()]
    with tempfile.TemporaryDirectory() as tmp:
        shutil.move(gr.plots({**grid, "runs": runs + more}, Path(tmp), "glue")[0], paths[0])
    return paths


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a generated block is stale")
    parser.add_argument("--plots", action="store_true", help="also redraw the mini-GLUE plots")
    options = parser.parse_args(argv)
    if options.check:
        out = {name: stale(name) for name in DOCS}
        bad = [f"{name}: {', '.join(blocks)}" for name, blocks in out.items() if blocks]
        if bad:
            print("stale generated blocks (run `python benchmarks/report.py`): " + "; ".join(bad), file=sys.stderr)
            return 1
        return 0
    for name, path in DOCS.items():
        path.write_text(render(name, path.read_text()))
        print(f"wrote {path.relative_to(REPO)}")
    if options.plots:
        for path in plots():
            print(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
