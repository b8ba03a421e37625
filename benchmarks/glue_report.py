"""Tables and plots of the mini-GLUE grid, from its JSON alone (`benchmarks/glue_cpu.py` writes it).

    python benchmarks/glue_report.py benchmarks/results/glue/glue_gpu.json --seeds-json MORE.json ...

Per sparsity: one table of methods by tasks with a task-average column (scores in percent: STS-B Pearson, CoLA
Matthews, MRPC mean of F1 and accuracy, others accuracy), means over the seeds a cell has; a cell without a run shows
"–" and its method gets no average. Plots: test score against sparsity (task average per method) and training time per
method. BENCHMARKS.md's and docs/research.md's tables come from these functions through `benchmarks/report.py`, which
names the committed files; this script prints the whole analysis of any set of result files. `--compare OLD.json` adds each method's averages in an earlier
grid next to this one's; `--seeds-json MORE.json [...]` adds the spread over seeds of the cells those files repeat,
each of their methods' task average over the seeds every task has, and PINS's difference to each, seed by seed, with
a paired 95% Student's t interval by which the goal is judged over seeds (met, not met, or undecided).
`--revised-json NEW.json [...]`: runs of the current code for cells that the other files ran with an earlier version
of a method; in those three seed tables they take the place of the earlier runs of the same cell and seed, which a
list names with both scores. The per-sparsity tables keep the grid as it was run. `--longer-json LONG.json [...]`:
cells re-run with more epochs or training examples and nothing else changed; each next to the grid's score on the same
seeds.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from glue_cpu import METHODS, TASKS, cell_key  # noqa: E402

PRUNING = [m for m in METHODS if m != "dense"]
SEEDS_PROJECTED = 500  # the most seeds `seeds_to_decide` looks at


def cell_scores(runs: list[dict], task: str, method: str, sparsity: float) -> list[float]:
    return [r["test_score"] for r in runs if r["task"] == task and r["method"] == method
            and abs(r["target_sparsity"] - sparsity) < 1e-9]


def common_tasks(runs: list[dict], sparsity: float, tasks: list[str]) -> list[str]:
    """The tasks on which every method (dense included) has a run at this sparsity."""
    return [t for t in tasks if all(cell_scores(runs, t, m, 0.0 if m == "dense" else sparsity) for m in METHODS)]


def table(runs: list[dict], sparsity: float, tasks: list[str]) -> tuple[list[str], dict[str, float | None], dict]:
    """Markdown rows for one sparsity (dense first); each method's task average (None if a task is missing) and its
    average over the tasks every method ran (so that an incomplete grid can still be read, marked as such)."""
    common = common_tasks(runs, sparsity, tasks)
    partial = len(common) < len(tasks)
    header = "| method | " + " | ".join(tasks) + " | average |" + (" common |" if partial else "")
    lines = [header, "|" + " --- |" * (len(tasks) + 2 + partial)]
    averages: dict[str, float | None] = {}
    on_common: dict[str, float | None] = {}
    for method in ["dense", *PRUNING]:
        at = 0.0 if method == "dense" else sparsity
        means = {}
        for task in tasks:
            scores = cell_scores(runs, task, method, at)
            means[task] = statistics.mean(scores) if scores else None
        avg = statistics.mean(means.values()) if all(m is not None for m in means.values()) else None
        averages[method] = avg
        on_common[method] = statistics.mean(means[t] for t in common) if common else None
        shown = ["–" if m is None else f"{m:.2f}" for m in means.values()]
        extra = (f" {'–' if on_common[method] is None else f'{on_common[method]:.2f}'} |" if partial else "")
        lines.append(f"| {method} | " + " | ".join(shown) + f" | {'–' if avg is None else f'{avg:.2f}'} |" + extra)
    return lines, averages, {"tasks": common, "averages": on_common, "partial": partial}


def verdicts(averages: dict[str, float | None], sparsity: float) -> list[str]:
    """The project's stated goal, checked on these averages: PINS best of the pruning methods; within 1 point of dense
    at 80%. No verdict while a pruning method lacks a task."""
    missing = [m for m in PRUNING if averages.get(m) is None]
    if missing:
        return [f"- {sparsity:.0%}: no verdict: {', '.join(missing)} lack a task."]
    pins = averages["pins"]
    ranked = sorted(((averages[m], m) for m in PRUNING), reverse=True)
    best_value, best = ranked[0]
    place = [m for _, m in ranked].index("pins") + 1
    out = [f"- {sparsity:.0%}: best pruning average {best} {best_value:.2f}; PINS {pins:.2f} "
           f"(rank {place} of {len(ranked)}): goal 'PINS best' {'met' if best == 'pins' else '**not met**'}."]
    dense = averages.get("dense")
    if sparsity == 0.8 and dense is not None:
        gap = dense - pins
        out.append(f"- 80%: PINS {gap:.2f} points below dense ({dense:.2f}): goal 'within 1 point' "
                   f"{'met' if gap <= 1.0 else '**not met**'}.")
    return out


def plots(data: dict, out_dir: Path, stem: str) -> list[Path]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    runs = data["runs"]
    sparsities = sorted({r["target_sparsity"] for r in runs if r["method"] != "dense"})
    # The tasks every method ran at every sparsity: the same tasks under every line.
    tasks = [t for t in data["settings"]["tasks"] if all(t in common_tasks(runs, s, [t]) for s in sparsities)]
    paths = []

    fig = Figure(figsize=(7, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    dense = [statistics.mean(cell_scores(runs, t, "dense", 0.0) or [float("nan")]) for t in tasks]
    ax.axhline(statistics.mean(dense), color="black", linestyle="--", label="dense")
    for method in PRUNING:
        xs, ys = [], []
        for s in sparsities:
            means = [cell_scores(runs, t, method, s) for t in tasks]
            if all(means):
                xs.append(100 * s)
                ys.append(statistics.mean(statistics.mean(m) for m in means))
        if xs:
            ax.plot(xs, ys, marker="o", label=method, linewidth=2.5 if method == "pins" else 1.2)
    ax.set_xlabel("sparsity (%)")
    ax.set_ylabel(f"test score, average of {', '.join(tasks)}", fontsize=8)
    ax.set_title("Mini-GLUE (all-MiniLM-L6-v2): score against sparsity")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    paths.append(out_dir / f"{stem}_score_vs_sparsity.png")
    fig.savefig(paths[-1], dpi=110)

    fig = Figure(figsize=(7, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    # Times compare only on one kind of machine: the grid machine's rows, tasks where every method ran there.
    device = data["machine"].get("device", "cpu")
    same = [t for t in tasks if all(r.get("device", device) == device for r in runs if r["task"] == t)]
    seconds = [statistics.mean([r["train_seconds"] for r in runs if r["method"] == m and r["task"] in same] or [0.0])
               for m in METHODS]
    ax.bar(range(len(METHODS)), seconds, color=["tab:red" if m == "pins" else "tab:blue" for m in METHODS])
    ax.set_xticks(range(len(METHODS)), METHODS, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(f"training seconds per run, mean over {', '.join(same)}", fontsize=8)
    ax.set_title(f"Training time per method on {device} (same budget per task)")
    fig.tight_layout()
    paths.append(out_dir / f"{stem}_time_per_method.png")
    fig.savefig(paths[-1], dpi=110)
    return paths


def shown_path(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def report(data: dict, json_path: Path, images: list[Path], extra: list[str] = ()) -> str:
    runs, settings, m = data["runs"], data["settings"], data["machine"]
    tasks = [t for t in TASKS if t in settings["tasks"]]
    seeds = sorted({r["seed"] for r in runs})
    devices = sorted({r.get("device", m.get("device", "cpu")) for r in runs})
    lines = [
             f"From `{shown_path(json_path)}` ({len(runs)} runs; seeds {', '.join(map(str, seeds))}; "
             f"trained on: {', '.join(devices)}). Budget per task, the same for every method "
             f"(`{settings['budget_name']}` in `benchmarks/glue_cpu.py`):", ""]
    for task in tasks:
        b = settings["budget"][task]
        samples = "all" if b.get("max_train_samples") is None else b["max_train_samples"]
        lines.append(f"- {task}: {samples} training examples, {b['num_train_epochs']} epochs, max length "
                     f"{b['max_length']}" + (f", batch {b['batch_size']}" if b.get("batch_size") else "")
                     + (f", dev/test capped at {b['max_eval_samples']}" if b.get("max_eval_samples") else ""))
    gpu = f", GPU {m['gpu']} ({m.get('gpu_memory_gib')} GiB)" if m.get("gpu") else ""
    lines += ["", f"Machine of the grid run: {m['cpu']}, {m['cores_logical']} cores{gpu}; torch {m.get('torch')}, "
              f"Python {m.get('python')}. Command: `{settings['command']}`.", ""]
    if settings.get("overrides"):
        lines += ["Recipe overrides for every cell: " + ", ".join(f"`{o}`" for o in settings["overrides"]) + ".", ""]
    if settings.get("notes"):
        lines += [settings["notes"], ""]
    carried = sorted({r["carried_over"] for r in runs if r.get("carried_over")})
    if carried:
        count = sum(1 for r in runs if r.get("carried_over"))
        lines += [f"{count} rows are carried over from {', '.join(f'`{c}`' for c in carried)} (marked `carried_over`).", ""]
    averages_by, commons = {}, {}
    for sparsity in sorted(settings["sparsities"]):
        rows, averages, common = table(runs, sparsity, tasks)
        averages_by[sparsity], commons[sparsity] = averages, common
        lines += [f"Test scores at {sparsity:.0%} sparsity (dense: no pruning):", "", *rows, ""]
        if common["partial"]:
            lines += [f"Not every cell has run: \"common\" averages the tasks every method ran "
                      f"({', '.join(common['tasks']) or 'none'}).", ""]
    lines += [f"The goal stated in the project, checked on the averages above (this file's seeds: "
              f"{', '.join(map(str, seeds))}; with more seeds given, \"The goal judged over seeds\" below decides it):",
              ""]
    for sparsity, averages in averages_by.items():
        lines += verdicts(averages, sparsity)
        common = commons[sparsity]
        if common["partial"] and common["tasks"]:
            ranked = sorted(((v, m) for m, v in common["averages"].items() if m in PRUNING), reverse=True)
            lines.append(f"  - on the common tasks only: best {ranked[0][1]} {ranked[0][0]:.2f}, PINS "
                         f"{common['averages']['pins']:.2f} (rank {[m for _, m in ranked].index('pins') + 1} of "
                         f"{len(ranked)}), dense {common['averages']['dense']:.2f}.")
    lines += ["", *extra, *[f"![{p.stem}]({shown_path(p)})" for p in images]]
    return "\n".join(lines) + "\n"


def averages_of(data: dict) -> dict[float, dict[str, float | None]]:
    tasks = [t for t in TASKS if t in data["settings"]["tasks"]]
    return {s: table(data["runs"], s, tasks)[1] for s in sorted(data["settings"]["sparsities"])}


def comparison(old: dict, new: dict, old_path: Path) -> list[str]:
    """Each method's task average in an earlier grid (`old`) and in this one, per sparsity."""
    before, now = averages_of(old), averages_of(new)
    sparsities = [s for s in now if s in before]
    show = lambda v: "–" if v is None else f"{v:.2f}"  # noqa: E731
    lines = [f"Task averages in `{shown_path(old_path)}` (before) and here (now):", "",
             "| method | " + " | ".join(f"{s:.0%} before | {s:.0%} now" for s in sparsities) + " |",
             "|" + " --- |" * (1 + 2 * len(sparsities))]
    for method in ["dense", *PRUNING]:
        lines.append(f"| {method} | " + " | ".join(f"{show(before[s].get(method))} | {show(now[s].get(method))}"
                                                   for s in sparsities) + " |")
    return lines + [""]


def seed_spread(runs: list[dict], more: list[dict], *more_paths: Path) -> list[str]:
    """Per cell repeated in `more`: the test score of every seed (this grid's and `more`'s), mean and standard deviation.
    A seed trained on another device than this grid's runs says which."""
    cells = sorted({(r["task"], r["method"], r["target_sparsity"]) for r in more},
                   key=lambda c: (TASKS.index(c[0]), c[2], METHODS.index(c[1])))
    devices = {r.get("device") for r in runs}
    files = ", ".join(f"`{shown_path(p)}`" for p in more_paths)
    lines = [f"Spread over seeds (the extra seeds are in {files}):", "",
             "| task | method | sparsity | test score per seed | mean | std |", "| --- | --- | --- | --- | --- | --- |"]
    for task, method, sparsity in cells:
        rows = sorted((r for r in runs + more if (r["task"], r["method"]) == (task, method)
                       and abs(r["target_sparsity"] - sparsity) < 1e-9), key=lambda r: r["seed"])
        scores = [r["test_score"] for r in rows]
        per_seed = ", ".join(f"{r['seed']}: {r['test_score']:.2f}"
                             + ("" if r.get("device") in devices | {None} else f" ({r['device']})") for r in rows)
        std = statistics.stdev(scores) if len(scores) > 1 else float("nan")
        lines.append(f"| {task} | {method} | {sparsity:.0%} | {per_seed} | {statistics.mean(scores):.2f} | {std:.2f} |")
    return lines + [""]


def seed_scores(runs: list[dict], method: str, sparsity: float, tasks: list[str]) -> dict[str, dict[int, float]]:
    """`{task: {seed: test score}}` of one method at one sparsity."""
    return {t: {r["seed"]: r["test_score"] for r in runs if (r["task"], r["method"]) == (t, method)
                and abs(r["target_sparsity"] - sparsity) < 1e-9} for t in tasks}


def shared_seeds(*by_seed: dict[int, float]) -> list[int]:
    """The seeds every one of these `{seed: score}` tables has, in order."""
    return sorted(set.intersection(*(set(table) for table in by_seed)))


def seed_averages(runs: list[dict], more: list[dict], tasks: list[str]) -> list[str]:
    """Per method and sparsity repeated in `more`: the mean over the seeds that every task has (so each task counts
    the same seeds), and the task average once at least two seeds cover every task; a task with fewer shows its own
    seeds' mean, marked with their count, and the row gets no average. A second average takes every seed of each
    task (tasks may then count different seeds), given once every task has at least two."""
    everything = runs + more
    keys = sorted({(r["method"], r["target_sparsity"]) for r in more}, key=lambda k: (k[1], METHODS.index(k[0])))
    lines = ["Means over seeds (each task over the seeds shared by all tasks of the row; an average only where at "
             "least two seeds cover every task; \"(n)\": that task's own n seeds, when the row has no average; "
             "\"all seeds\": the average of each task's mean over all its seeds, where every task has two or more):",
             "", "| method | sparsity | seeds | " + " | ".join(tasks) + " | average | all seeds |",
             "|" + " --- |" * (len(tasks) + 5)]
    for method, sparsity in keys:
        by_task = seed_scores(everything, method, sparsity, tasks)
        shared = shared_seeds(*by_task.values())
        complete = len(shared) >= 2
        on_shared = {t: statistics.mean(by_task[t][s] for s in shared) for t in tasks} if complete else {}
        cells = []
        for task in tasks:
            scores = by_task[task]
            if complete:
                cells.append(f"{on_shared[task]:.2f}")
            elif scores:
                cells.append(f"{statistics.mean(scores.values()):.2f} ({len(scores)})")
            else:
                cells.append("–")
        average = f"{statistics.mean(on_shared.values()):.2f}" if complete else "–"
        every = (f"{statistics.mean(statistics.mean(by_task[t].values()) for t in tasks):.2f}"
                 if all(len(by_task[t]) >= 2 for t in tasks) else "–")
        seeds = ", ".join(map(str, shared)) if complete else "–"
        lines.append(f"| {method} | {sparsity:.0%} | {seeds} | " + " | ".join(cells) + f" | {average} | {every} |")
    return lines + [""]


def paired_interval(differences: list[float], level: float = 0.95) -> tuple[float, float] | None:
    """Student's t interval for the mean of per-seed paired differences; None below two seeds. The seed is the unit
    of replication: it gives both methods the same data order and dropout, so the pairs are what varies."""
    if len(differences) < 2:
        return None
    from scipy.stats import t  # the `bench` extra; only the seed tables need it

    mean, sem = statistics.mean(differences), statistics.stdev(differences) / math.sqrt(len(differences))
    half = float(t.ppf((1 + level) / 2, len(differences) - 1)) * sem
    return mean - half, mean + half


def seeds_to_decide(differences: list[float], bound: float, level: float = 0.95,
                    most: int = SEEDS_PROJECTED) -> int | None:
    """A projection, not a result: the fewest seeds whose interval would exclude `bound` if the mean and the standard
    deviation of these differences stayed as they are. None when they cannot (mean on the bound, or over `most`)."""
    if len(differences) < 2:
        return None
    from scipy.stats import t

    distance, std = abs(statistics.mean(differences) - bound), statistics.stdev(differences)
    for n in range(2, most + 1):
        if float(t.ppf((1 + level) / 2, n - 1)) * std / math.sqrt(n) < distance:
            return n
    return None


def decision(interval: tuple[float, float] | None, bound: float) -> str:
    """Which side of `bound` the interval lies on: `above`, `below`, or `undecided` (it holds the bound, or is None)."""
    if interval is None or interval[0] <= bound <= interval[1]:
        return "undecided"
    return "above" if interval[0] > bound else "below"


def paired_differences(runs: list[dict], more: list[dict], tasks: list[str]) -> list[dict]:
    """PINS against each other method that `more` repeats, per sparsity: on every seed both have on every task, the
    task average of PINS minus the other's (dense: unpruned), with the 95% interval of their mean and the bound it is
    judged against (the goal's -1 point for dense at 80%, else 0)."""
    everything = runs + more
    sparsities = sorted({r["target_sparsity"] for r in more if r["method"] == "pins"})
    others = [m for m in METHODS if m != "pins" and any(r["method"] == m for r in more)]
    rows = []
    for sparsity in sparsities:
        pins = seed_scores(everything, "pins", sparsity, tasks)
        for method in others:
            other = seed_scores(everything, method, 0.0 if method == "dense" else sparsity, tasks)
            shared = shared_seeds(*pins.values(), *other.values())
            differences = [statistics.mean(pins[t][s] for t in tasks) - statistics.mean(other[t][s] for t in tasks)
                           for s in shared]
            bound = -1.0 if method == "dense" and abs(sparsity - 0.8) < 1e-9 else 0.0
            interval = paired_interval(differences)
            rows.append({"method": method, "sparsity": sparsity, "seeds": shared, "differences": differences,
                         "interval": interval, "bound": bound, "decision": decision(interval, bound),
                         "seeds_to_decide": seeds_to_decide(differences, bound)})
    return rows


def shown_interval(row: dict) -> str:
    return f"[{row['interval'][0]:+.2f}, {row['interval'][1]:+.2f}]" if row["interval"] else "(one seed)"


def seed_differences(rows: list[dict]) -> list[str]:
    """The table of `paired_differences` rows. Pairing by seed takes out what a seed does to both methods, so the
    interval of the difference, not the spread of each method, says whether an order is settled."""
    lines = ["PINS minus each method, seed by seed (task averages on the seeds both have on every task; a positive "
             "difference: PINS ahead). \"95% interval\": Student's t over the seeds for the mean difference; "
             "\"decided\": whether it lies wholly above or below the bound (0, or the goal's -1 point for dense at "
             "80%); \"seeds to decide\": for an undecided row, a projection of how many seeds would decide it if the "
             "mean and spread held:", "",
             "| PINS minus | sparsity | seeds | difference per seed | mean | std | 95% interval | bound | decided "
             "| seeds to decide |", "|" + " --- |" * 10]
    for row in rows:
        differences = row["differences"]
        per_seed = ", ".join(f"{s}: {d:+.2f}" for s, d in zip(row["seeds"], differences)) or "–"
        mean = f"{statistics.mean(differences):+.2f}" if differences else "–"
        std = f"{statistics.stdev(differences):.2f}" if len(differences) > 1 else "–"
        shown = shown_interval(row) if row["interval"] else "–"
        if row["decision"] != "undecided" or len(differences) < 2:
            needed = "–"
        else:
            needed = f"over {SEEDS_PROJECTED}" if row["seeds_to_decide"] is None else str(row["seeds_to_decide"])
        lines.append(f"| {row['method']} | {row['sparsity']:.0%} | {', '.join(map(str, row['seeds'])) or '–'} "
                     f"| {per_seed} | {mean} | {std} | {shown} | {row['bound']:g} | {row['decision']} | {needed} |")
    return lines + [""]


def seed_verdicts(rows: list[dict]) -> list[str]:
    """The project's goal judged over seeds from `paired_differences` rows: PINS best of the pruning methods where
    every other one's interval lies above 0, not met where one lies below; within 1 point of dense at 80% where that
    interval lies above -1, not met where it lies below. Anything else is undecided, and says which comparison keeps
    it so."""
    lines = ["The goal judged over seeds (the intervals above):", ""]
    for sparsity in sorted({r["sparsity"] for r in rows}):
        at = {r["method"]: r for r in rows if r["sparsity"] == sparsity}
        missing = [m for m in PRUNING if m != "pins" and m not in at]
        if missing:
            lines.append(f"- {sparsity:.0%}: 'PINS best': no verdict: {', '.join(missing)} have no repeated seeds.")
        else:
            behind = [m for m in PRUNING if m != "pins" and at[m]["decision"] == "below"]
            open_ = [m for m in PRUNING if m != "pins" and at[m]["decision"] == "undecided"]
            if behind:
                verdict = "**not met**: " + ", ".join(behind) + " ahead"
            elif open_:
                verdict = "undecided: " + ", ".join(f"PINS minus {m} {shown_interval(at[m])}" for m in open_)
            else:
                verdict = "met"
            lines.append(f"- {sparsity:.0%}: 'PINS best': {verdict}.")
        if abs(sparsity - 0.8) < 1e-9:
            dense = at.get("dense")
            if dense is None:
                lines.append("- 80%: 'within 1 point of dense': no verdict: dense has no repeated seeds.")
            else:
                word = {"above": "met", "below": "**not met**", "undecided": "undecided"}[dense["decision"]]
                lines.append(f"- 80%: 'within 1 point of dense': {word} (PINS minus dense {shown_interval(dense)}).")
    return lines + [""]


def revise(runs: list[dict], revised: list[dict]) -> list[dict]:
    """`runs` without the runs that `revised` repeats (same task, method, sparsity and seed)."""
    replaced = {cell_key(r) for r in revised}
    return [r for r in runs if cell_key(r) not in replaced]


def revisions(runs: list[dict], revised: list[dict], *paths: Path) -> list[str]:
    """The earlier runs that `revised` replaces in the seed tables: each cell and seed with both test scores."""
    earlier = {cell_key(r): r["test_score"] for r in runs}
    files = ", ".join(f"`{shown_path(p)}`" for p in paths)
    lines = [f"Revised runs (current code, in {files}) that replace earlier runs of the same cell and seed in the "
             "seed tables below:", "", "| task | method | sparsity | seed | earlier | revised |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in sorted(revised, key=lambda r: (TASKS.index(r["task"]), r["target_sparsity"], METHODS.index(r["method"]),
                                            r["seed"])):
        before = earlier.get(cell_key(r))
        lines.append(f"| {r['task']} | {r['method']} | {r['target_sparsity']:.0%} | {r['seed']} | "
                     f"{'–' if before is None else f'{before:.2f}'} | {r['test_score']:.2f} |")
    return lines + [""]


LONGER_KEYS = ("training.num_train_epochs", "data.max_train_samples")  # the overrides a longer schedule may set


def schedule_of(data: dict, task: str) -> str:
    """A result file's training budget for `task` as "examples x epochs": its budget's, with its `--set` applied."""
    budget = data["settings"]["budget"][task]
    samples, epochs = budget.get("max_train_samples"), budget["num_train_epochs"]
    for override in data["settings"].get("overrides") or []:
        key, _, value = override.partition("=")
        if key == "training.num_train_epochs":
            epochs = int(float(value))
        elif key == "data.max_train_samples":
            samples = None if value in ("null", "None", "~", "") else int(value)
    return f"{'all' if samples is None else samples} x {epochs}"


def longer_schedules(grid: dict, runs: list[dict], longer: list[tuple[Path, dict]]) -> list[str]:
    """Cells re-run with a longer schedule and nothing else changed (`longer`: files whose `--set` changes only
    `LONGER_KEYS`, the epochs and the training examples): per cell, the mean test score over its seeds there and the
    grid's (`runs`: the grid with its extra seeds) on the same seeds; then per sparsity each method's average over the
    tasks every method of that sparsity has, and PINS minus each. Pairing by seed keeps a seed's luck out of the
    change; a seed the grid lacks is left out."""
    device = grid["machine"].get("device", "cpu")
    ran = {cell_key(r): r["test_score"] for r in runs}
    cells: dict[tuple, dict[int, dict]] = {}
    schedule: dict[tuple, str] = {}
    for _, data in longer:
        for r in data["runs"]:
            cell = (r["task"], r["method"], round(r["target_sparsity"], 6))
            if cell_key(r) in ran:
                cells.setdefault(cell, {})[r["seed"]] = r
            schedule[cell] = schedule_of(data, r["task"])
    files = ", ".join(f"`{shown_path(p)}`" for p, _ in longer)
    lines = [f"Longer schedules (in {files}; only the training examples x epochs changed): each cell's mean test "
             "score over its seeds, and the grid's on the same seeds (\"(cpu)\": seeds trained on the CPU):", "",
             "| task | method | sparsity | examples x epochs, grid -> longer | seeds | longer | grid | change |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    means = {}
    order = lambda c: (c[2], TASKS.index(c[0]), METHODS.index(c[1]))  # noqa: E731
    for cell in sorted(cells, key=order):
        seeds = sorted(cells[cell])
        now = statistics.mean(cells[cell][s]["test_score"] for s in seeds)
        before = statistics.mean(ran[(*cell, s)] for s in seeds)
        means[cell] = now, before
        shown = ", ".join(f"{s}" + ("" if cells[cell][s].get("device", device) == device
                                    else f" ({cells[cell][s]['device']})") for s in seeds)
        lines.append(f"| {cell[0]} | {cell[1]} | {cell[2]:.0%} | {schedule_of(grid, cell[0])} -> {schedule[cell]} | "
                     f"{shown} | {now:.2f} | {before:.2f} | {now - before:+.2f} |")
    lines += ["", "Their task averages (per sparsity, the tasks that every method there has; dense: unpruned):", "",
              "| sparsity | tasks | method | longer | grid | PINS minus it, longer | PINS minus it, grid |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    paired, paired_tasks = [], []
    for sparsity in sorted({c[2] for c in cells if c[2] > 0}):
        methods = [m for m in METHODS if m != "dense" and any(c[1:] == (m, sparsity) for c in cells)]
        tasks = [t for t in TASKS if all((t, m, sparsity) in cells for m in methods)]
        if not tasks:
            continue
        at = [r for cell, by_seed in cells.items() if cell[2] in (0.0, sparsity) for r in by_seed.values()]
        paired += paired_differences([], at, tasks)
        paired_tasks.append(f"{sparsity:.0%}: {', '.join(tasks)}")
        if all((t, "dense", 0.0) in cells for t in tasks):
            methods = ["dense", *methods]
        average = {m: [statistics.mean(means[(t, m, 0.0 if m == "dense" else sparsity)][i] for t in tasks)
                       for i in (0, 1)] for m in methods}
        for m in methods:
            pins = average.get("pins")
            gaps = [f"{pins[i] - average[m][i]:+.2f}" for i in (0, 1)] if pins and m != "pins" else ["–", "–"]
            lines.append(f"| {sparsity:.0%} | {', '.join(tasks)} | {m} | {average[m][0]:.2f} | {average[m][1]:.2f} | "
                         f"{gaps[0]} | {gaps[1]} |")
    if paired:  # the averages above mix seeds where tasks have different ones; pairs take the seeds every task has
        lines += ["", f"The longer runs alone, on those tasks ({'; '.join(paired_tasks)}):", ""]
        lines += seed_differences(paired)[:-1]
    return lines + [""]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("json", type=Path, nargs="?", default=REPO / "benchmarks" / "results" / "glue" / "glue_gpu.json")
    parser.add_argument("--compare", type=Path, help="an earlier grid's JSON: its averages next to these")
    parser.add_argument("--seeds-json", type=Path, nargs="+", help="more seeds of some cells (one or more files)")
    parser.add_argument("--longer-json", type=Path, nargs="+", default=[],
                        help="cells re-run with a longer schedule (--set training.num_train_epochs=N and/or "
                             "data.max_train_samples=M, nothing else)")
    parser.add_argument("--revised-json", type=Path, nargs="+", default=[],
                        help="current-code runs that replace earlier runs of the same cells in the seed tables")
    options = parser.parse_args(argv)
    path = options.json.resolve()
    data = json.loads(path.read_text())
    longer = [(f.resolve(), json.loads(f.read_text())) for f in options.longer_json]
    for f, other in longer:
        changed = [o for o in other["settings"].get("overrides") or [] if o.partition("=")[0] not in LONGER_KEYS]
        if other["settings"]["budget_name"] != data["settings"]["budget_name"] or changed:
            parser.error(f"--longer-json {shown_path(f)}: only {' and '.join(LONGER_KEYS)} may differ from the grid's "
                         f"settings (its budget {other['settings']['budget_name']!r}, other overrides "
                         f"{changed or 'none'})")
    images = plots(data, path.parent, path.stem)
    extra = []
    if options.compare:
        extra += comparison(json.loads(options.compare.read_text()), data, options.compare.resolve())
    if options.revised_json and not options.seeds_json:
        parser.error("--revised-json: only used with --seeds-json (it revises the seed tables)")
    if options.seeds_json:
        more = [r for f in options.seeds_json for r in json.loads(f.read_text())["runs"]]
        runs = data["runs"]
        revised = [r for f in options.revised_json for r in json.loads(f.read_text())["runs"]]
        if revised:
            extra += revisions(runs + more, revised, *(f.resolve() for f in options.revised_json))
            runs, more = revise(runs, revised), revise(more, revised) + revised
        paths = [f.resolve() for f in options.seeds_json + options.revised_json]
        extra += seed_spread(runs, more, *paths)
        tasks = [t for t in TASKS if t in data["settings"]["tasks"]]
        differences = paired_differences(runs, more, tasks)
        extra += seed_averages(runs, more, tasks) + seed_differences(differences) + seed_verdicts(differences)
    if longer:
        everything = (runs + more) if options.seeds_json else data["runs"]
        extra += longer_schedules(data, everything, longer)
    block = report(data, path, images, extra)
    print(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
