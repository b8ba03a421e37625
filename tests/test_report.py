"""The committed reports say what the committed results say: every generated table of BENCHMARKS.md and
docs/research.md is what `benchmarks/report.py` writes from the JSON under `benchmarks/results/`."""

import sys

import pytest
from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import report  # noqa: E402


@pytest.mark.parametrize("name", sorted(report.DOCS))
def test_committed_report_matches_what_the_results_give(name):
    assert report.stale(name) == [], f"run `python benchmarks/report.py` and commit {name}"


def test_a_hand_edited_figure_or_a_lost_marker_is_caught(tmp_path, monkeypatch):
    text = (REPO / "BENCHMARKS.md").read_text()
    start = text.index("<!-- report:glue-means -->")
    row = text.index("| pins | 80% |", start)
    edited = text[:row] + text[row:].replace("65.39", "65.93", 1)  # a figure changed by hand inside a table
    (tmp_path / "BENCHMARKS.md").write_text(edited)
    monkeypatch.setitem(report.DOCS, "BENCHMARKS.md", tmp_path / "BENCHMARKS.md")
    assert report.stale("BENCHMARKS.md") == ["glue-means"]
    assert report.main(["--check"]) == 1

    (tmp_path / "BENCHMARKS.md").write_text(text.replace("<!-- /report:verdicts -->", ""))
    with pytest.raises(SystemExit, match="generators without a marker: \\['verdicts'\\]"):
        report.stale("BENCHMARKS.md")


def test_rewriting_keeps_the_prose_and_fills_every_block(tmp_path, monkeypatch):
    text = (REPO / "BENCHMARKS.md").read_text()
    emptied = report.MARKER.sub(lambda m: f"<!-- report:{m[1]} -->\n<!-- /report:{m[1]} -->", text)
    (tmp_path / "BENCHMARKS.md").write_text(emptied)
    monkeypatch.setitem(report.DOCS, "BENCHMARKS.md", tmp_path / "BENCHMARKS.md")
    assert set(report.stale("BENCHMARKS.md")) == set(report.BLOCKS["BENCHMARKS.md"])
    assert report.render("BENCHMARKS.md", emptied) == text


@pytest.mark.slow
def test_fault_counts_follow_the_tests():
    import json

    import fault_cases

    committed = json.loads(fault_cases.OUTPUT.read_text())
    assert committed["cases"] == fault_cases.count(), "run `python benchmarks/fault_cases.py` and commit its JSON"
