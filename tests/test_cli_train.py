"""`hf-pins train` end to end on a tiny model, and what a user's mistake looks like."""

import json

import pytest
import torch
import yaml
from safetensors.torch import load_file

from hf_pins.cli import main


def run_cli(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_train_writes_a_sparse_model_with_recipe_and_report(tmp_path, tiny_recipe, capsys):
    out = tmp_path / "model"
    code, stdout, _ = run_cli(capsys, "train", str(tiny_recipe), "--output-dir", str(out))
    assert code == 0
    assert "sparsity" in stdout and str(out) in stdout
    for name in ("config.json", "model.safetensors", "tokenizer.json", "recipe.yaml", "pruning_report.json"):
        assert (out / name).is_file(), name
    report = json.loads((out / "pruning_report.json").read_text())
    assert report["overall"] == pytest.approx(0.8, abs=1e-3)
    assert set(report["metrics"]) == {"dev", "test"} and "accuracy" in report["metrics"]["test"]
    weights = load_file(str(out / "model.safetensors"))
    zeros = sum(int((weights[n] == 0).sum()) for n in report["modules"])
    assert zeros / report["prunable_weights"] == pytest.approx(report["overall"])
    resolved = yaml.safe_load((out / "recipe.yaml").read_text())
    assert resolved["pruning"]["target_sparsity"] == 0.8 and resolved["training"]["metric_for_best_model"] == "accuracy"


def test_set_overrides_and_resume(tmp_path, tiny_recipe, capsys):
    out = tmp_path / "model"
    code, _, _ = run_cli(capsys, "train", str(tiny_recipe), "--output-dir", str(out),
                         "--set", "pruning.target_sparsity=0.5", "--set", "training.save_steps=4")
    assert code == 0
    assert json.loads((out / "pruning_report.json").read_text())["overall"] == pytest.approx(0.5, abs=1e-3)
    code, stdout, _ = run_cli(capsys, "train", str(tiny_recipe), "--output-dir", str(out),
                              "--set", "pruning.target_sparsity=0.5", "--set", "training.save_steps=4", "--resume")
    assert code == 0 and "sparsity" in stdout


def test_given_teacher_from_the_recipe_is_scored_saved_by_name_and_resumed(tmp_path, tiny_recipe, tiny_model_dir, capsys):
    out = tmp_path / "model"
    teacher = ["--set", f"pruning.self_regularization_teacher={tiny_model_dir}", "--set", "training.save_steps=4"]
    code, _, _ = run_cli(capsys, "train", str(tiny_recipe), "--output-dir", str(out), *teacher)
    assert code == 0
    report = json.loads((out / "pruning_report.json").read_text())
    first = report["teacher_refreshes"][0]
    assert first["step"] == 0 and first["source"] == str(tiny_model_dir) and 0.0 <= first["dev_metric"] <= 1.0
    checkpoint = sorted(out.glob("checkpoint-*"))[-1]
    meta = json.loads((checkpoint / "pruning_state.json").read_text())["selfreg"]
    saved = load_file(str(checkpoint / "pruning_state.safetensors"))
    # The given teacher is not copied into checkpoints: either it is still the teacher (named), or a student copy is.
    assert (meta["source"] == str(tiny_model_dir)) != any(k.startswith("selfreg.teacher.") for k in saved)
    code, stdout, _ = run_cli(capsys, "train", str(tiny_recipe), "--output-dir", str(out), *teacher, "--resume")
    assert code == 0 and "sparsity" in stdout


def test_the_recipe_seed_fixes_the_new_classification_head(tmp_path, tiny_recipe, tiny_model_dir, capsys):
    """A base model without a task head gets a fresh one at load time: the recipe's seed must decide it."""
    import shutil

    from transformers import BertModel

    base = tmp_path / "base"
    BertModel.from_pretrained(tiny_model_dir).save_pretrained(base)
    for name in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json"):
        if (tiny_model_dir / name).exists():
            shutil.copy(tiny_model_dir / name, base / name)
    runs = []
    for name in ("a", "b"):
        code, _, _ = run_cli(capsys, "train", str(tiny_recipe), "--output-dir", str(tmp_path / name),
                             "--set", f"model.name_or_path={base}", "--set", "training.num_train_epochs=1")
        assert code == 0
        runs.append(load_file(str(tmp_path / name / "model.safetensors")))
    assert runs[0].keys() == runs[1].keys() and all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])


@pytest.mark.parametrize("override, fragment", [
    ("pruning.target_sparsity=1.2", "pruning.target_sparsity"),
    ("pruning.method=bogus", "pruning.method"),
    ("training.learning_rate=fast", "training.learning_rate"),
    ("data.glue_dir=/nonexistent/glue", "/nonexistent/glue"),
    ("model.name_or_path=/nonexistent/model", "/nonexistent/model"),
    ("task=imagenet", "task"),
    ("unknown.key=1", "unknown"),
])
def test_user_errors_give_one_line_exit_2_and_write_nothing(tmp_path, tiny_recipe, capsys, override, fragment):
    out = tmp_path / "never"
    code, stdout, stderr = run_cli(capsys, "train", str(tiny_recipe), "--output-dir", str(out), "--set", override)
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], stderr
    assert "Traceback" not in stderr
    assert not out.exists()


def test_non_empty_output_dir_is_refused_without_overwrite(tmp_path, tiny_recipe, capsys):
    out = tmp_path / "existing"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    code, _, stderr = run_cli(capsys, "train", str(tiny_recipe), "--output-dir", str(out))
    assert code == 2 and "--overwrite" in stderr
    assert sorted(p.name for p in out.iterdir()) == ["precious.txt"]
    code, _, stderr = run_cli(capsys, "train", str(tiny_recipe), "--output-dir", str(tmp_path / "empty"), "--resume")
    assert code == 2 and "checkpoint" in stderr and not (tmp_path / "empty").exists()


def test_missing_recipe_file(tmp_path, capsys):
    code, _, stderr = run_cli(capsys, "train", str(tmp_path / "nope.yaml"))
    assert code == 2 and "nope.yaml" in stderr and len(stderr.strip().splitlines()) == 1


METHOD_SETTINGS = {
    "pins": [], "magnitude": [], "movement": [], "soft_movement": [], "platon": [],
    "grda": ["pruning.method_args.lr=0.05", "pruning.method_args.c=0.02", "pruning.method_args.calibration_trials=2"],
    "gfs": ["pruning.target_sparsity=0.5"],
}


@pytest.mark.parametrize("method", list(METHOD_SETTINGS))
def test_every_method_trains_from_the_command_line(tmp_path, tiny_recipe, capsys, method):
    out = tmp_path / "model"
    sets = [f"pruning.method={method}", *METHOD_SETTINGS[method]]
    code, stdout, _ = run_cli(capsys, "train", str(tiny_recipe), "--output-dir", str(out),
                              *[arg for s in sets for arg in ("--set", s)])
    assert code == 0, stdout
    report = json.loads((out / "pruning_report.json").read_text())
    assert report["method"] == method and set(report["modules"]) and "accuracy" in report["metrics"]["test"]
    if method == "grda":  # sparsity is gRDA's outcome; a final cut, if any, is named
        grda = report["grda"]
        assert 0 < grda["sparsity_reached"] and report["final_cut"] == grda["final_cut"]
        assert len(grda["calibration"]["trials"]) == 2 and grda["c"] == grda["calibration"]["chosen_c"]
        expected = max(grda["sparsity_reached"], 0.8) if grda["final_cut"] else grda["sparsity_reached"]
        assert report["overall"] == pytest.approx(expected, abs=1e-3)
    elif method == "gfs":  # a smaller encoder that reloads exactly
        from transformers import AutoModelForSequenceClassification

        structure = report["structure"]
        assert structure["parameters"]["after"] < structure["parameters"]["before"]
        model, info = AutoModelForSequenceClassification.from_pretrained(out, output_loading_info=True)
        from hf_pins.pruning.targets import find_prunable

        nonzero = sum(int((p != 0).sum()) for p in find_prunable(model).values())
        assert report["overall"] == pytest.approx(1 - nonzero / report["prunable_weights"], abs=1e-6)
        assert not any(info.values()), info
        assert sum(p.numel() for p in model.parameters()) == structure["parameters"]["after"]
    else:
        assert abs(report["overall"] - 0.8) <= 0.005


def test_run_training_hands_callbacks_to_the_trainer(tmp_path, tiny_recipe):
    from transformers import TrainerCallback

    from hf_pins.recipe import load_recipe
    from hf_pins.training import run_training

    class RecordsSteps(TrainerCallback):
        def __init__(self):
            self.steps: list[int] = []

        def on_optimizer_step(self, args, state, control, **kwargs):
            self.steps.append(state.global_step)

    callback = RecordsSteps()
    result = run_training(load_recipe(tiny_recipe), output_dir=str(tmp_path / "run"), callbacks=[callback])
    assert callback.steps == list(range(result.report["total_steps"]))
