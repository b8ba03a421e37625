"""benchmarks/teacher_weight.py: the teacher's share of the loss per phase, from a run's pruning report."""

import json
import sys

import pytest
from conftest import REPO, make_trainer

sys.path.insert(0, str(REPO / "benchmarks"))
from teacher_weight import phase_weights, rows  # noqa: E402


def test_phase_means_by_hand(tmp_path):
    report = {
        "task": "cola", "method": "pins", "target_sparsity": 0.8, "total_steps": 40,
        "evaluations": [
            {"step": 10, "sparsity": 0.0, "at_target": False, "teacher_weight": None},  # before the first teacher
            {"step": 20, "sparsity": 0.0, "at_target": False, "teacher_weight": 0.1},   # dense warm-up: not the ramp
            {"step": 30, "sparsity": 0.5, "at_target": False, "teacher_weight": 0.2},
            {"step": 40, "sparsity": 0.7, "at_target": False, "teacher_weight": 0.4},
            {"step": 50, "sparsity": 0.8, "at_target": True, "teacher_weight": 0.6},
        ],
        "teacher_refreshes": [{"step": 10, "sparsity": 0.0}, {"step": 30, "sparsity": 0.5}],
    }
    weights = phase_weights(report)
    assert weights["ramp"] == pytest.approx(0.3) and weights["final"] == pytest.approx(0.6)
    assert weights["last"] == 0.6 and weights["refreshes"] == 2
    assert (weights["last_teacher_step"], weights["last_teacher_sparsity"]) == (30, 0.5)
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    assert rows([path])[-1] == "| cola | pins | 80% | 40 | 0.30 | 0.60 | 0.60 | 2 | 30 (0.50) |"


def test_a_trainer_run_without_a_teacher_has_no_weights(tmp_path):
    trainer = make_trainer(tmp_path, self_regularization=False)
    trainer.train()
    weights = phase_weights({"evaluations": trainer.evaluations})
    assert weights["ramp"] is None and weights["final"] is None and weights["refreshes"] == 0
