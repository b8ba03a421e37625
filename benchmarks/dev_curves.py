"""Where two runs part ways: their dev curves compared phase by phase, from the runs' `pruning_report.json` files.

A final test score says which run ended ahead; the dev curve says when the difference was made. Each report lists
every dev evaluation with its step, sparsity and whether the target was reached. This prints one Markdown row per
run named after the first: at the steps both runs evaluated, the mean of (run minus first) over the dense warm-up
(sparsity 0), the ramp and the final phase (at the target), and at how many of those evaluations the run was below,
level with or above the first. Scores in percent (the reports keep fractions).

    python benchmarks/dev_curves.py sst2-platon.json sst2-pins.json sst2-pins_no_selfreg.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

PHASES = ("warm-up", "ramp", "target")


def phase_of(evaluation: dict) -> str:
    if evaluation["at_target"]:
        return "target"
    return "ramp" if evaluation["sparsity"] > 0 else "warm-up"


def compare(first: dict, run: dict) -> dict[str, dict]:
    """Per phase: `n` shared evaluations, `mean` of run minus first (points), and `below` / `level` / `above` counts.

    The phase is the first run's at each step (both runs follow the same schedule when they share a budget)."""
    theirs = {e["step"]: e["dev_metric"] for e in run.get("evaluations") or []}
    differences: dict[str, list[float]] = {phase: [] for phase in PHASES}
    for evaluation in first.get("evaluations") or []:
        if evaluation["step"] in theirs:
            differences[phase_of(evaluation)].append(100 * (theirs[evaluation["step"]] - evaluation["dev_metric"]))
    return {phase: {"n": len(values),
                    "mean": statistics.mean(values) if values else None,
                    "below": sum(v < 0 for v in values),
                    "level": sum(v == 0 for v in values),
                    "above": sum(v > 0 for v in values)}
            for phase, values in differences.items()}


def label(report: dict, path: Path) -> str:
    """Named as in the grid: dense fine-tuning runs as magnitude pruning to sparsity 0, and PINS without a teacher
    (`self_regularization` false in the report: what ran) is pins_no_selfreg."""
    sparsity, method = report.get("target_sparsity", "?"), report.get("method", "?")
    if sparsity == 0:
        method = "dense"
    elif method == "pins" and report.get("self_regularization") is False:
        method = "pins_no_selfreg"
    return f"{report.get('task', '?')} {method} {sparsity} ({path.name})"


def cell(phase: dict) -> str:
    if not phase["n"]:
        return "-"
    return f"{phase['mean']:+.2f} ({phase['below']} / {phase['level']} / {phase['above']})"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("first", type=Path, help="the run the others are compared with")
    parser.add_argument("others", type=Path, nargs="+")
    args = parser.parse_args(argv)
    first = json.loads(args.first.read_text())
    print(f"Dev score minus that of {label(first, args.first)}, mean over shared evaluations "
          "(evaluations below / level / above):\n")
    print("| run | " + " | ".join(PHASES) + " |")
    print("| --- |" + " --- |" * len(PHASES))
    for path in args.others:
        report = json.loads(path.read_text())
        phases = compare(first, report)
        print(f"| {label(report, path)} | " + " | ".join(cell(phases[p]) for p in PHASES) + " |")


if __name__ == "__main__":
    main()
