"""How many bad inputs and faults the test suite tries, by class: collected from the tests themselves.

    python benchmarks/fault_cases.py          # writes benchmarks/results/faults/fault_cases.json

Each case is one collected test (a parametrized test counts once per parameter). `tests/test_report.py` checks that
the committed JSON matches a fresh collection, so the table in BENCHMARKS.md follows the tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUTPUT = REPO / "benchmarks" / "results" / "faults" / "fault_cases.json"

# test file -> {test function: class}; functions not named are not bad-input or fault cases.
TRAIN = "mistakes in a recipe, its values or train's flags"
DATA = "broken or unsuitable data (GLUE files, own data)"
FILES = "broken or incompatible model, tokenizer, teacher or checkpoint files"
OUTPUTS = "unwritable destination, full disk, resumed or overwritten runs"
CLASSES: dict[str, dict[str, str]] = {
    "tests/test_bad_input.py": {
        "test_data_mistakes": DATA, "test_recipe_file_mistakes": TRAIN, "test_model_dir_without_config": FILES,
        "test_prunable_modules_matching_nothing": TRAIN, "test_schedule_longer_than_the_run": TRAIN,
        "test_package_path_of_missing_package": TRAIN, "test_bad_override_syntax": TRAIN,
        "test_teacher_that_is_not_a_model_folder": FILES, "test_teacher_with_the_wrong_number_of_labels": FILES,
        "test_teacher_with_another_vocabulary": FILES, "test_teacher_without_self_regularization": TRAIN,
    },
    "tests/test_surface.py": {
        "test_recipe_mistakes_name_the_key": TRAIN, "test_a_recipe_that_is_a_list_is_refused_even_with_overrides": TRAIN,
        "test_a_value_that_is_an_alias_bomb_is_reported_briefly": TRAIN,
        "test_a_byte_that_is_not_utf8_is_reported_on_its_line": TRAIN, "test_bad_values_never_reach_training": TRAIN,
    },
    "tests/test_methods.py": {"test_method_keys_are_validated_like_every_other_key": TRAIN},
    "tests/test_own_data_cli.py": {"test_bad_input_is_one_line_before_any_model_loads": DATA},
    "tests/test_train_faults.py": {
        "test_resume_under_a_changed_recipe_is_refused_unless_allowed": OUTPUTS,
        "test_overwrite_removes_the_replaced_runs_checkpoints": OUTPUTS,
        "test_corrupt_checkpoint_on_resume_is_one_line": FILES,
        "test_output_dir_under_a_file_is_refused_before_any_work": OUTPUTS,
        "test_full_disk_while_checkpointing_is_one_line_and_leaves_no_partial_checkpoint": OUTPUTS,
        "test_full_disk_while_writing_the_report_keeps_no_partial_file": OUTPUTS,
    },
}


def collected(paths: list[str]) -> list[tuple[str, str]]:
    """(file, test function) for every test pytest collects from `paths`, once per parameter."""
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *paths],
                          cwd=REPO, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"error: collecting the tests failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    items = [line.split("::", 1) for line in done.stdout.splitlines() if "::" in line]
    return [(path, name.split("[", 1)[0]) for path, name in items]


def fault_classes() -> dict[str, str]:
    sys.path.insert(0, str(REPO / "tests"))
    import test_faults  # the export, benchmark, runtime and push side names its own classes

    return test_faults.FAULT_CLASSES


def count() -> dict[str, int]:
    classes = {"tests/test_faults.py": fault_classes(), **CLASSES}
    counts: Counter = Counter()
    for path, name in collected(list(classes)):
        if name in classes[path]:
            counts[classes[path][name]] += 1
    return dict(sorted(counts.items()))


def main() -> int:
    counts = count()
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(json.dumps({"command": "python benchmarks/fault_cases.py", "cases": counts,
                                  "total": sum(counts.values())}, indent=1) + "\n")
    print(json.dumps(counts, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
