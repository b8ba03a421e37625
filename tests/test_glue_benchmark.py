"""The mini-GLUE benchmark harness end to end in its quick mode (checks the harness, not the scores)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import GLUE_DIR, REPO

FIELDS = {"task", "method", "target_sparsity", "measured_sparsity", "seed", "metric", "dev_score", "test_score",
          "train_seconds", "peak_rss_mb"}


@pytest.mark.slow
def test_quick_grid_writes_every_run_and_resumes(tmp_path):
    output = tmp_path / "glue_cpu.json"
    argv = [sys.executable, str(REPO / "benchmarks" / "glue_cpu.py"), "--quick", "--glue-dir", str(GLUE_DIR),
            "--tasks", "rte", "stsb", "--methods", "dense", "pins", "grda", "gfs", "--sparsities", "0.8",
            "--output", str(output), "--scratch", str(tmp_path / "runs"), "--workers", "2",
            "--set", "pruning.score_beta2=0.9"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # two cells side by side, one core each
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900, cwd=REPO, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(output.read_text())
    assert {"machine", "model", "settings", "runs"} <= set(result)
    runs = result["runs"]
    assert {(r["task"], r["method"]) for r in runs} == {(t, m) for t in ("rte", "stsb") for m in ("dense", "pins", "grda", "gfs")}
    for run in runs:
        assert FIELDS <= set(run)
        assert run["target_sparsity"] == (0.0 if run["method"] == "dense" else 0.8)
    assert next(r for r in runs if r["method"] == "pins")["measured_sparsity"] == __import__("pytest").approx(0.8, abs=5e-3)
    assert {r["metric"] for r in runs if r["task"] == "stsb"} == {"pearson"}
    assert {r["device"] for r in runs} == {"cpu"} and result["settings"]["workers"] == 2
    assert result["settings"]["overrides"] == ["pruning.score_beta2=0.9"]
    schedules = {r["method"]: r["schedule"] for r in runs if r["task"] == "rte"}
    assert schedules["grda"] is None and schedules["gfs"] is None  # no pruning schedule: nothing to record
    assert schedules["pins"]["warmup_steps"] >= 0 and schedules["pins"]["final_steps"] >= 1
    assert "score_beta2: 0.9" in (tmp_path / "runs" / "rte-pins-0.8-42" / "recipe.yaml").read_text()

    again = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=REPO, env=env)
    assert again.returncode == 0 and "8 runs already" in again.stdout and "0 to go" in again.stdout
    assert json.loads(output.read_text())["runs"] == runs
    other = subprocess.run(argv[:-1] + ["pruning.score_beta2=0.5"], capture_output=True, text=True, timeout=300,
                           cwd=REPO, env=env)  # another variant must not land among these runs
    assert other.returncode == 2 and "differs from the overrides" in other.stderr
    assert json.loads(output.read_text())["runs"] == runs

    # Completing a grid spread over files: only the cell no named file holds runs, into the new file.
    rest = tmp_path / "rest.json"
    fill = [sys.executable, str(REPO / "benchmarks" / "glue_cpu.py"), "--quick", "--glue-dir", str(GLUE_DIR),
            "--tasks", "rte", "--methods", "dense", "pins", "magnitude", "--sparsities", "0.8", "--output", str(rest),
            "--scratch", str(tmp_path / "runs"), "--set", "pruning.score_beta2=0.9", "--skip-cells-in", str(output)]
    filled = subprocess.run(fill, capture_output=True, text=True, timeout=300, cwd=REPO, env=env)
    assert filled.returncode == 0, filled.stderr[-3000:]
    assert "2 of this grid in --skip-cells-in, 1 to go" in filled.stdout
    assert [(r["task"], r["method"]) for r in json.loads(rest.read_text())["runs"]] == [("rte", "magnitude")]
    variant = [str(tmp_path / "variant.json") if arg == str(rest) else arg for arg in fill[:-3]]
    mixed = subprocess.run(variant + ["pruning.score_beta2=0.5", "--skip-cells-in", str(output)],
                           capture_output=True, text=True, timeout=300, cwd=REPO, env=env)
    assert mixed.returncode == 2 and f"--skip-cells-in {output}: its runs have the overrides" in mixed.stderr
    other_budget = [arg for arg in fill if arg != "--quick"] + ["--budget", "gpu"]
    other_budget[other_budget.index(str(rest))] = str(tmp_path / "gpu.json")
    wrong = subprocess.run(other_budget, capture_output=True, text=True, timeout=300, cwd=REPO, env=env)
    assert wrong.returncode == 2 and "its runs have the budget 'quick', this grid 'gpu'" in wrong.stderr
    assert not (tmp_path / "variant.json").exists() and not (tmp_path / "gpu.json").exists()
    broken = subprocess.run(fill[:-1] + [str(tmp_path / "missing.json")], capture_output=True, text=True,
                            timeout=300, cwd=REPO, env=env)
    assert broken.returncode == 2 and "not a result JSON of this benchmark" in broken.stderr
    assert [(r["task"], r["method"]) for r in json.loads(rest.read_text())["runs"]] == [("rte", "magnitude")]


def test_report_tables_average_only_complete_rows_and_check_the_goal():
    """The report's averages and verdicts come from the JSON: a hand-made grid with known means."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import glue_report

    def row(task, method, sparsity, score, seed=1):
        return {"task": task, "method": method, "target_sparsity": sparsity, "test_score": score, "seed": seed,
                "train_seconds": 1.0}

    runs = [row("rte", "dense", 0.0, 70.0), row("sst2", "dense", 0.0, 90.0),
            row("rte", "pins", 0.8, 69.0), row("sst2", "pins", 0.8, 90.0),
            row("rte", "pins", 0.8, 71.0, seed=2),  # two seeds: the cell's mean is 70
            row("rte", "platon", 0.8, 60.0), row("sst2", "platon", 0.8, 91.0),
            row("rte", "magnitude", 0.8, 50.0)]  # sst2 missing: no average
    lines, averages, common = glue_report.table(runs, 0.8, ["rte", "sst2"])
    assert averages["dense"] == 80.0 and averages["pins"] == 80.0 and averages["platon"] == 75.5
    assert averages["magnitude"] is None and "| magnitude | 50.00 | – | – | – |" in lines
    assert common["partial"] and common["tasks"] == []  # most methods have no run at all here
    assert "no verdict" in "\n".join(glue_report.verdicts(averages, 0.8))  # a method lacks a task
    averages = {m: 70.0 for m in glue_report.PRUNING} | {"dense": 80.0, "pins": 80.0, "platon": 75.5}
    verdict = "\n".join(glue_report.verdicts(averages, 0.8))
    assert "best pruning average pins 80.00" in verdict and "goal 'PINS best' met" in verdict
    assert "0.00 points below dense" in verdict and "'within 1 point' met" in verdict
    averages["platon"] = 81.0
    assert "**not met**" in "\n".join(glue_report.verdicts(averages, 0.9))


def test_report_compares_grids_and_shows_the_spread_over_seeds():
    sys.path.insert(0, str(REPO / "benchmarks"))
    import glue_report

    def row(task, method, sparsity, score, seed=42):
        return {"task": task, "method": method, "target_sparsity": sparsity, "test_score": score, "seed": seed}

    settings = {"tasks": ["rte"], "sparsities": [0.8]}
    old = {"settings": settings, "runs": [row("rte", "dense", 0.0, 60.0), row("rte", "pins", 0.8, 50.0)]}
    new = {"settings": settings, "runs": [row("rte", "dense", 0.0, 60.0), row("rte", "pins", 0.8, 55.0)]}
    lines = glue_report.comparison(old, new, REPO / "old.json")
    assert "| pins | 50.00 | 55.00 |" in lines and "| platon | – | – |" in lines
    more = [row("rte", "pins", 0.8, 57.0, seed=43), row("rte", "pins", 0.8, 56.0, seed=44)]
    lines = glue_report.seed_spread(new["runs"], more, REPO / "more.json")
    # seeds 42, 43, 44 of the one repeated cell: mean 56, sample standard deviation 1
    assert "| rte | pins | 80% | 42: 55.00, 43: 57.00, 44: 56.00 | 56.00 | 1.00 |" in lines
    assert not any("| dense |" in line for line in lines)  # only the cells the extra file repeats
    on_cpu = [dict(row("rte", "pins", 0.8, 54.0, seed=45), device="cpu")]
    lines = glue_report.seed_spread([dict(r, device="cuda") for r in new["runs"]], more + on_cpu, REPO / "a.json",
                                    REPO / "b.json")
    assert "43: 57.00, 44: 56.00, 45: 54.00 (cpu) |" in " ".join(lines) and "`a.json`, `b.json`" in lines[0]


def test_report_averages_each_method_over_the_seeds_every_task_has():
    sys.path.insert(0, str(REPO / "benchmarks"))
    import glue_report

    def row(task, method, score, seed, sparsity=0.8):
        return {"task": task, "method": method, "target_sparsity": sparsity, "test_score": score, "seed": seed}

    grid = [row("rte", "pins", 50.0, 42), row("cola", "pins", 20.0, 42), row("rte", "dense", 60.0, 42, 0.0),
            row("cola", "dense", 30.0, 42, 0.0)]
    more = [row("rte", "pins", 54.0, 43), row("cola", "pins", 22.0, 43), row("cola", "pins", 30.0, 44),
            row("rte", "dense", 62.0, 43, 0.0)]
    lines = glue_report.seed_averages(grid, more, ["rte", "cola"])
    # pins: seeds 42 and 43 cover both tasks (44 only CoLA, left out): rte (50+54)/2 = 52, cola (20+22)/2 = 21,
    # average 36.5; with every seed, cola is (20+22+30)/3 = 24, average (52+24)/2 = 38.
    # dense: CoLA has one seed, so no average; RTE shows its own two seeds' mean, 61.
    assert "| pins | 80% | 42, 43 | 52.00 | 21.00 | 36.50 | 38.00 |" in lines
    assert "| dense | 0% | – | 61.00 (2) | 30.00 (1) | – | – |" in lines


def test_report_differences_pins_to_each_method_seed_by_seed():
    sys.path.insert(0, str(REPO / "benchmarks"))
    import glue_report

    def row(task, method, score, seed, sparsity=0.8):
        return {"task": task, "method": method, "target_sparsity": sparsity, "test_score": score, "seed": seed}

    grid = [row("rte", "pins", 50.0, 42), row("cola", "pins", 20.0, 42), row("rte", "platon", 52.0, 42),
            row("cola", "platon", 16.0, 42), row("rte", "dense", 60.0, 42, 0.0), row("cola", "dense", 30.0, 42, 0.0)]
    more = [row("rte", "pins", 54.0, 43), row("cola", "pins", 22.0, 43), row("rte", "platon", 49.0, 43),
            row("cola", "platon", 23.0, 43), row("cola", "platon", 40.0, 44), row("cola", "dense", 31.0, 43, 0.0)]
    lines = glue_report.seed_differences(glue_report.paired_differences(grid, more, ["rte", "cola"]))
    # PLATON: seed 42 (50+20)/2 - (52+16)/2 = 35 - 34 = +1; seed 43 (54+22)/2 - (49+23)/2 = 38 - 36 = +2; seed 44 lacks
    # RTE and PINS, so it is left out. Mean +1.5, sample std sqrt(0.5) = 0.71, standard error 0.5; Student's t with one
    # degree of freedom, 12.706 at 97.5%: 1.5 -+ 6.35. Were the mean and std to hold, 3 seeds give
    # 4.303 * 0.71 / sqrt(3) = 1.76 (not below 1.5), 4 seeds 3.182 * 0.71 / 2 = 1.12: 4 seeds decide it.
    assert "| platon | 80% | 42, 43 | 42: +1.00, 43: +2.00 | +1.50 | 0.71 | [-4.85, +7.85] | 0 | undecided | 4 |" in lines
    # dense: only seed 42 has both tasks: 35 - 45 = -10; one seed, no std, no interval; judged against the goal's -1.
    assert "| dense | 80% | 42 | 42: -10.00 | -10.00 | – | – | -1 | undecided | – |" in lines


def test_report_judges_the_goal_over_seeds_by_the_paired_intervals():
    sys.path.insert(0, str(REPO / "benchmarks"))
    import glue_report

    def runs(method, sparsity, scores):
        return [{"task": "rte", "method": method, "target_sparsity": sparsity, "test_score": v, "seed": 42 + i}
                for i, v in enumerate(scores)]

    pins = runs("pins", 0.8, [60.0, 62.0, 61.0])
    # Every other pruning method 5 points behind, give or take 1 (differences 5, 4, 6: mean 5, std 1, interval
    # 5 -+ 4.303 / sqrt(3) = [2.52, 7.48], above 0); dense 0.5 ahead of PINS, give or take 0.1 (differences -0.5, -0.4,
    # -0.6: interval [-0.75, -0.25], above the goal's -1).
    others = [r for m in glue_report.PRUNING if m != "pins" for r in runs(m, 0.8, [55.0, 58.0, 55.0])]
    dense = runs("dense", 0.0, [60.5, 62.4, 61.6])
    rows = glue_report.paired_differences([], pins + others + dense, ["rte"])
    platon = next(r for r in rows if r["method"] == "platon")
    assert platon["interval"] == pytest.approx((5 - 4.302653 / 3 ** 0.5, 5 + 4.302653 / 3 ** 0.5), abs=1e-5)
    verdict = "\n".join(glue_report.seed_verdicts(rows))
    assert "- 80%: 'PINS best': met." in verdict
    # a decided row projects nothing
    assert "| [+2.52, +7.48] | 0 | above | – |" in "\n".join(glue_report.seed_differences(rows))
    assert "- 80%: 'within 1 point of dense': met (PINS minus dense [-0.75, -0.25])." in verdict
    # PLATON ahead in every seed (differences -1, -1.2, -0.8: interval [-1.50, -0.50]): not met; dense 3 ahead: not met.
    platon_ahead = [r for r in others if r["method"] != "platon"] + runs("platon", 0.8, [61.0, 63.2, 61.8])
    dense_far = runs("dense", 0.0, [63.0, 65.1, 63.9])
    verdict = "\n".join(glue_report.seed_verdicts(glue_report.paired_differences([], pins + platon_ahead + dense_far,
                                                                                 ["rte"])))
    assert "- 80%: 'PINS best': **not met**: platon ahead." in verdict
    assert "'within 1 point of dense': **not met**" in verdict
    # PLATON level with PINS (differences +0.5, -0.5, 0): undecided, naming the interval that holds 0.
    platon_level = [r for r in others if r["method"] != "platon"] + runs("platon", 0.8, [59.5, 62.5, 61.0])
    verdict = "\n".join(glue_report.seed_verdicts(glue_report.paired_differences([], pins + platon_level, ["rte"])))
    assert "- 80%: 'PINS best': undecided: PINS minus platon [-1.24, +1.24]." in verdict
    assert "'within 1 point of dense': no verdict: dense has no repeated seeds." in verdict


def test_report_revised_runs_replace_the_same_cell_and_seed_in_the_seed_tables():
    sys.path.insert(0, str(REPO / "benchmarks"))
    import glue_report

    def row(task, method, score, seed, sparsity=0.8):
        return {"task": task, "method": method, "target_sparsity": sparsity, "test_score": score, "seed": seed}

    grid = [row("rte", "pins", 50.0, 42), row("stsb", "pins", 80.0, 42), row("rte", "platon", 52.0, 42),
            row("stsb", "platon", 84.0, 42)]
    more = [row("rte", "pins", 54.0, 43), row("stsb", "pins", 81.0, 43), row("rte", "platon", 49.0, 43),
            row("stsb", "platon", 85.0, 43)]
    revised = [row("stsb", "pins", 86.0, 42), row("stsb", "pins", 83.0, 43)]
    lines = glue_report.revisions(grid + more, revised, REPO / "r.json")
    assert "| stsb | pins | 80% | 42 | 80.00 | 86.00 |" in lines and "| stsb | pins | 80% | 43 | 81.00 | 83.00 |" in lines
    runs, extra = glue_report.revise(grid, revised), glue_report.revise(more, revised) + revised
    assert len(runs) == 3 and len(extra) == 5  # each earlier stsb pins run gone, both revised ones in
    lines = glue_report.seed_differences(glue_report.paired_differences(runs, extra, ["rte", "stsb"]))
    # seed 42: (50+86)/2 - (52+84)/2 = 0; seed 43: (54+83)/2 - (49+85)/2 = 1.5; mean 0.75, std 1.06
    assert any(line.startswith("| platon | 80% | 42, 43 | 42: +0.00, 43: +1.50 | +0.75 | 1.06 |") for line in lines)


def test_report_longer_schedules_pair_each_cell_with_the_grid_on_the_same_seeds(tmp_path):
    sys.path.insert(0, str(REPO / "benchmarks"))
    import glue_report

    def row(task, method, score, seed, sparsity=0.8, device="cuda"):
        return {"task": task, "method": method, "target_sparsity": sparsity, "test_score": score, "seed": seed,
                "device": device}

    grid = {"machine": {"device": "cuda"}, "settings": {"budget_name": "gpu", "budget": {
        "rte": {"num_train_epochs": 6, "max_train_samples": None},
        "cola": {"num_train_epochs": 4, "max_train_samples": 2000}}}}
    runs = [row("rte", "dense", 60.0, 42, 0.0), row("rte", "dense", 62.0, 43, 0.0), row("rte", "pins", 50.0, 42),
            row("rte", "pins", 54.0, 43), row("rte", "platon", 52.0, 42), row("rte", "platon", 50.0, 43),
            row("cola", "dense", 30.0, 42, 0.0), row("cola", "pins", 20.0, 42), row("cola", "platon", 22.0, 42)]
    rte = {"settings": {**grid["settings"], "overrides": ["training.num_train_epochs=10"]},
           "runs": [row("rte", "dense", 61.0, 42, 0.0), row("rte", "dense", 61.0, 43, 0.0),
                    row("rte", "pins", 58.0, 42), row("rte", "pins", 60.0, 43),
                    row("rte", "platon", 57.0, 42), row("rte", "platon", 55.0, 43)]}
    longer = ["training.num_train_epochs=8", "data.max_train_samples=null"]
    cola = {"settings": {**grid["settings"], "overrides": longer},
            "runs": [row("cola", m, score, 42, s, "cpu") for m, score, s in
                     [("dense", 31.0, 0.0), ("pins", 28.0, 0.8), ("platon", 24.0, 0.8)]]
            + [row("cola", "pins", 99.0, 45)]}  # seed 45: the grid has none, so it is left out
    lines = glue_report.longer_schedules(grid, runs, [(REPO / "rte.json", rte), (REPO / "cola.json", cola)])
    assert "| rte | pins | 80% | all x 6 -> all x 10 | 42, 43 | 59.00 | 52.00 | +7.00 |" in lines
    assert "| cola | pins | 80% | 2000 x 4 -> all x 8 | 42 (cpu) | 28.00 | 20.00 | +8.00 |" in lines
    # averages over rte and cola: dense (61+31)/2 = 46 against (61+30)/2 = 45.5; PINS 43.5 against 36;
    # PLATON 40 against 36.5. PINS minus dense -2.5 (grid -9.5), minus PLATON +3.5 (grid -0.5).
    assert "| 80% | rte, cola | dense | 46.00 | 45.50 | -2.50 | -9.50 |" in lines
    assert "| 80% | rte, cola | platon | 40.00 | 36.50 | +3.50 | -0.50 |" in lines
    assert "| 80% | rte, cola | pins | 43.50 | 36.00 | – | – |" in lines
    # and seed by seed on the longer runs alone: only seed 42 has both tasks; PINS (58+28)/2 = 43, PLATON
    # (57+24)/2 = 40.5, dense (61+31)/2 = 46
    assert "| platon | 80% | 42 | 42: +2.50 | +2.50 | – | – | 0 | undecided | – |" in lines
    assert "| dense | 80% | 42 | 42: -3.00 | -3.00 | – | – | -1 | undecided | – |" in lines
    # a file that changed more than the epochs is refused, before anything is written
    (tmp_path / "grid.json").write_text(json.dumps(grid | {"runs": runs}))
    (tmp_path / "other.json").write_text(json.dumps({"settings": {**grid["settings"], "overrides": [
        "training.num_train_epochs=8", "training.learning_rate=1e-4"]}, "runs": []}))
    with pytest.raises(SystemExit) as refused:
        glue_report.main([str(tmp_path / "grid.json"), "--longer-json", str(tmp_path / "other.json")])
    assert refused.value.code == 2 and sorted(p.name for p in tmp_path.iterdir()) == ["grid.json", "other.json"]


@pytest.mark.slow
def test_stopped_grid_resumes_its_cell_from_the_checkpoint_it_saved(tmp_path):
    """SIGTERM to the grid (a timeout, a machine's time limit) stops its cell with a checkpoint; the same grid run
    again continues that cell from the checkpoint and counts both parts' time."""
    output, scratch = tmp_path / "grid.json", tmp_path / "runs"
    argv = [sys.executable, str(REPO / "benchmarks" / "glue_cpu.py"), "--quick", "--glue-dir", str(GLUE_DIR),
            "--tasks", "rte", "--methods", "pins", "--sparsities", "0.8", "--output", str(output),
            "--scratch", str(scratch), "--set", "training.num_train_epochs=8",
            "--set", "training.save_strategy=steps", "--set", "training.save_steps=4"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cell = scratch / "rte-pins-0.8-42"
    grid = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)
    deadline = time.time() + 600
    while not (cell / "checkpoint-4").is_dir():
        assert grid.poll() is None, grid.stderr.read()[-3000:]
        assert time.time() < deadline
        time.sleep(0.05)
    grid.send_signal(signal.SIGTERM)
    stdout, stderr = grid.communicate(timeout=300)
    assert grid.returncode == 143, stderr[-3000:]
    assert "STOPPED rte pins 0.8 seed 42: checkpoint saved" in stdout
    assert not output.exists() or json.loads(output.read_text())["runs"] == []
    record = json.loads((cell / "harness_cell.json").read_text())
    stopped_at = max(int(p.name.split("-")[1]) for p in cell.glob("checkpoint-*"))
    assert len(record["parts"]) == 1 and not record["done"] and stopped_at >= 4

    again = subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=REPO, env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    [row] = json.loads(output.read_text())["runs"]
    assert row["resumed_from_steps"] == [stopped_at] and row["measured_sparsity"] == pytest.approx(0.8, abs=5e-3)
    record = json.loads((cell / "harness_cell.json").read_text())
    assert record["done"] and row["train_seconds"] == pytest.approx(sum(p["seconds"] for p in record["parts"]), abs=0.2)


def test_a_cell_folder_of_another_grid_or_a_finished_run_is_not_resumed(tmp_path):
    sys.path.insert(0, str(REPO / "benchmarks"))
    import glue_cpu

    mine = {"budget": "gpu", "overrides": ["training.seed=42"]}
    for record, checkpoint in [({"identity": {**mine, "budget": "cpu"}, "parts": [{}], "done": False}, True),
                               ({"identity": mine, "parts": [{}], "done": True}, True),
                               ({"identity": mine, "parts": [{}], "done": False}, False)]:
        cell = tmp_path / "cell"
        (cell / ("checkpoint-7" if checkpoint else "other")).mkdir(parents=True)
        (cell / glue_cpu.CELL_FILE).write_text(json.dumps(record))
        assert glue_cpu.earlier_parts(cell, mine) == {"identity": mine, "parts": []}
        assert list(cell.iterdir()) == []  # emptied: the cell starts afresh
        cell.rmdir()
    (tmp_path / "cell" / "checkpoint-7").mkdir(parents=True)
    stopped = {"identity": mine, "parts": [{"seconds": 3.0}], "done": False}
    (tmp_path / "cell" / glue_cpu.CELL_FILE).write_text(json.dumps(stopped))
    assert glue_cpu.earlier_parts(tmp_path / "cell", mine) == stopped
    assert glue_cpu.latest_checkpoint_step(tmp_path / "cell") == 7
