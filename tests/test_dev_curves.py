"""benchmarks/dev_curves.py: two runs' dev curves compared phase by phase."""

import json
import sys

import pytest
from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
from dev_curves import compare, label, main  # noqa: E402


def evaluation(step, sparsity, dev, at_target=False):
    return {"step": step, "sparsity": sparsity, "dev_metric": dev, "at_target": at_target}


FIRST = {"task": "sst2", "method": "platon", "target_sparsity": 0.8, "evaluations": [
    evaluation(50, 0.0, 0.80), evaluation(100, 0.3, 0.82), evaluation(150, 0.7, 0.84),
    evaluation(200, 0.8, 0.85, True), evaluation(250, 0.8, 0.86, True)]}
RUN = {"task": "sst2", "method": "pins", "target_sparsity": 0.8, "evaluations": [
    evaluation(50, 0.0, 0.80), evaluation(100, 0.3, 0.83), evaluation(150, 0.7, 0.83),
    evaluation(200, 0.8, 0.84, True), evaluation(300, 0.8, 0.90, True)]}  # step 300: the first run has none


def test_phase_differences_by_hand():
    phases = compare(FIRST, RUN)
    assert phases["warm-up"] == {"n": 1, "mean": 0.0, "below": 0, "level": 1, "above": 0}
    assert phases["ramp"]["n"] == 2 and phases["ramp"]["mean"] == pytest.approx(0.0)  # +1 and -1 point
    assert (phases["ramp"]["below"], phases["ramp"]["above"]) == (1, 1)
    assert phases["target"]["n"] == 1 and phases["target"]["mean"] == pytest.approx(-1.0)  # step 250/300 unshared
    assert phases["target"]["below"] == 1


def test_table_row(tmp_path, capsys):
    first, run = tmp_path / "first.json", tmp_path / "run.json"
    first.write_text(json.dumps(FIRST))
    run.write_text(json.dumps(RUN))
    main([str(first), str(run)])
    assert capsys.readouterr().out.splitlines()[-1] == \
        "| sst2 pins 0.8 (run.json) | +0.00 (0 / 1 / 0) | +0.00 (1 / 0 / 1) | -1.00 (1 / 0 / 0) |"


def test_runs_are_named_as_in_the_grid(tmp_path):
    dense = {"task": "sst2", "method": "magnitude", "target_sparsity": 0.0}
    assert label(dense, tmp_path / "d.json") == "sst2 dense 0.0 (d.json)"
    assert label(FIRST, tmp_path / "p.json") == "sst2 platon 0.8 (p.json)"
    assert label({**RUN, "self_regularization": True}, tmp_path / "p.json") == "sst2 pins 0.8 (p.json)"
    no_teacher = {**RUN, "self_regularization": False}
    assert label(no_teacher, tmp_path / "n.json") == "sst2 pins_no_selfreg 0.8 (n.json)"
