"""How much of PINS's loss the teacher had, phase by phase, from runs' `pruning_report.json` files.

Each dev evaluation in a report records `teacher_weight`, the mean weight `w` of the teacher term over the training
batches since the evaluation before (None where nothing was distilled). This prints one Markdown row per report: the
mean of those values over the ramp (evaluations after the dense warm-up, before the target) and over the final phase
(at the target), the last one, and the teacher refreshes.

    python benchmarks/teacher_weight.py benchmarks/results/teacher_weight/teacher_weight_logs/*.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from dev_curves import phase_of


def phase_weights(report: dict) -> dict:
    """Mean teacher weight over the ramp and at the target, the last one, and where the last teacher was adopted."""
    ramp, final, weights = [], [], []
    for evaluation in report.get("evaluations") or []:
        weight = evaluation.get("teacher_weight")
        if weight is None:
            continue
        weights.append(weight)
        phase = phase_of(evaluation)
        if phase == "target":
            final.append(weight)
        elif phase == "ramp":
            ramp.append(weight)
    refreshes = report.get("teacher_refreshes") or []
    return {
        "ramp": statistics.mean(ramp) if ramp else None,
        "final": statistics.mean(final) if final else None,
        "last": weights[-1] if weights else None,
        "refreshes": len(refreshes),
        "last_teacher_step": refreshes[-1]["step"] if refreshes else None,
        "last_teacher_sparsity": refreshes[-1].get("sparsity") if refreshes else None,
    }


def _cell(value, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def rows(paths: list[Path]) -> list[str]:
    lines = ["| task | method | sparsity | steps | teacher weight: ramp | at the target | last | teacher refreshes "
             "| last teacher: step (sparsity) |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for path in paths:
        report = json.loads(path.read_text(encoding="utf-8"))
        w = phase_weights(report)
        last = "–" if w["last_teacher_step"] is None else (
            f"{w['last_teacher_step']} ({_cell(w['last_teacher_sparsity'])})")
        lines.append(f"| {report['task']} | {report['method']} | {report['target_sparsity']:.0%} | "
                     f"{report['total_steps']} | {_cell(w['ramp'])} | {_cell(w['final'])} | {_cell(w['last'])} | "
                     f"{w['refreshes']} | {last} |")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path, help="pruning_report.json files")
    args = parser.parse_args(argv)
    print("\n".join(rows(args.reports)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
