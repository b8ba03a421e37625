"""A user's mistake in recipe, model, data or output directory: one line on stderr, exit 2, nothing written."""

import shutil

import pytest
from conftest import REPO

from hf_pins.cli import main

DEMO_RTE = REPO / "hf_pins" / "demo_data" / "RTE"


def _glue_copy(tmp_path, edit=None):
    folder = tmp_path / "glue"
    shutil.copytree(DEMO_RTE, folder / "RTE")
    if edit:
        edit(folder / "RTE")
    return folder


def _replace_line(path, number, text):
    lines = path.read_text().splitlines()
    lines[number - 1] = text
    path.write_text("\n".join(lines) + "\n")


DATA_MISTAKES = {
    "wrong column count": (lambda d: _replace_line(d / "train.tsv", 5, "4\tonly one sentence\tentailment"), "train.tsv line 5"),
    "label outside the task's set": (lambda d: _replace_line(d / "train.tsv", 7, "6\tA b.\tC d.\tmaybe"), "train.tsv line 7"),
    "empty split": (lambda d: (d / "dev.tsv").write_text("index\tsentence1\tsentence2\tlabel\n"), "dev.tsv"),
    "missing file": (lambda d: (d / "dev.tsv").unlink(), "dev.tsv"),
    "empty sentence": (lambda d: _replace_line(d / "train.tsv", 3, "2\t \tC d.\tentailment"), "train.tsv line 3"),
}


@pytest.mark.parametrize("mistake", sorted(DATA_MISTAKES))
def test_data_mistakes(tmp_path, tiny_recipe, capsys, mistake):
    edit, fragment = DATA_MISTAKES[mistake]
    glue = _glue_copy(tmp_path, edit)
    _assert_refused(capsys, tmp_path, tiny_recipe, fragment, "--set", f"data.glue_dir={glue}")


RECIPE_MISTAKES = {
    "yaml syntax": ("model: {name_or_path: x\ntask: rte\n", "line"),
    "top level not a mapping": ("- a\n- b\n", "expected a mapping"),
    "python tag": ("model: !!python/name:os.system\ntask: rte\n", "not valid YAML"),
    "missing model": ("task: rte\n", "model"),
    "wrong type in list": ("model: {name_or_path: x}\ntask: rte\npruning: {prunable_modules: 5}\n", "pruning.prunable_modules"),
    "invalid regular expression": ("model: {name_or_path: x}\ntask: rte\npruning: {prunable_modules: ['(']}\n",
                                   "pruning.prunable_modules"),
    "self-regularization without evaluation": ("model: {name_or_path: x}\ntask: rte\ntraining: {eval_strategy: 'no'}\n",
                                               "self_regularization"),
    "sharded weights (FSDP)": ("model: {name_or_path: x}\ntask: rte\ntraining: {fsdp: full_shard}\n", "training.fsdp"),
    "sharded weights (DeepSpeed)": ("model: {name_or_path: x}\ntask: rte\ntraining: {deepspeed: ds.json}\n",
                                    "training.deepspeed"),
    "regression teacher weight out of range": ("model: {name_or_path: x}\ntask: stsb\n"
                                               "pruning: {experimental: {regression_alpha: 1.5}}\n",
                                               "pruning.experimental.regression_alpha"),
    "teacher on regression without a weight": ("model: {name_or_path: x}\ntask: stsb\n"
                                               "pruning: {self_regularization_teacher: some/teacher}\n",
                                               "pruning.experimental.regression_alpha is set"),
    "pruning field under training": ("model: {name_or_path: x}\ntask: rte\ntraining: {target_sparsity: 0.5}\n",
                                     "training.target_sparsity"),
}


@pytest.mark.parametrize("mistake", sorted(RECIPE_MISTAKES))
def test_recipe_file_mistakes(tmp_path, capsys, mistake):
    text, fragment = RECIPE_MISTAKES[mistake]
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(text)
    _assert_refused(capsys, tmp_path, recipe, fragment)


def test_model_dir_without_config(tmp_path, tiny_recipe, capsys):
    (tmp_path / "empty-model").mkdir()
    _assert_refused(capsys, tmp_path, tiny_recipe, "empty-model", "--set", f"model.name_or_path={tmp_path / 'empty-model'}")


def test_prunable_modules_matching_nothing(tmp_path, tiny_recipe, capsys):
    _assert_refused(capsys, tmp_path, tiny_recipe, "matches no nn.Linear", "--set", "pruning.prunable_modules=[nothing_here]")


def test_schedule_longer_than_the_run(tmp_path, tiny_recipe, capsys):
    _assert_refused(capsys, tmp_path, tiny_recipe, "pruning.dense_warmup_*", "--set", "pruning.dense_warmup_steps=10000")
    _assert_refused(capsys, tmp_path, tiny_recipe, "pruning.dense_warmup_*", "--set", "pruning.dense_warmup_epochs=50")
    _assert_refused(capsys, tmp_path, tiny_recipe, "pruning.dense_warmup_epochs", "--set",
                    "pruning.dense_warmup_epochs=-1")


def test_package_path_of_missing_package(tmp_path, tiny_recipe, capsys):
    _assert_refused(capsys, tmp_path, tiny_recipe, "no_such_package", "--set", "model.name_or_path=pkg:no_such_package/model")


def test_bad_override_syntax(tmp_path, tiny_recipe, capsys):
    _assert_refused(capsys, tmp_path, tiny_recipe, "key.path=value", "--set", "pruning.target_sparsity")


def test_teacher_that_is_not_a_model_folder(tmp_path, tiny_recipe, capsys):
    _assert_refused(capsys, tmp_path, tiny_recipe, "pruning.self_regularization_teacher",
                    "--set", f"pruning.self_regularization_teacher={tmp_path / 'no-such-teacher'}")


def test_teacher_with_the_wrong_number_of_labels(tmp_path, tiny_recipe, tiny_model_dir, capsys):
    from conftest import tiny_bert
    from transformers import AutoConfig

    tiny_bert(num_labels=3, vocab_size=AutoConfig.from_pretrained(tiny_model_dir).vocab_size).save_pretrained(tmp_path / "three")
    _assert_refused(capsys, tmp_path, tiny_recipe, "predicts 3 labels",
                    "--set", f"pruning.self_regularization_teacher={tmp_path / 'three'}")


def test_teacher_with_another_vocabulary(tmp_path, tiny_recipe, capsys):
    from conftest import tiny_bert

    tiny_bert(vocab_size=10).save_pretrained(tmp_path / "other-vocab")
    _assert_refused(capsys, tmp_path, tiny_recipe, "the student's token ids",
                    "--set", f"pruning.self_regularization_teacher={tmp_path / 'other-vocab'}")


def test_teacher_without_self_regularization(tmp_path, tiny_recipe, tiny_model_dir, capsys):
    _assert_refused(capsys, tmp_path, tiny_recipe, "self_regularization_teacher", "--set",
                    f"pruning.self_regularization_teacher={tiny_model_dir}", "--set", "pruning.self_regularization=false")


def _assert_refused(capsys, tmp_path, recipe, fragment, *extra):
    out = tmp_path / "out"
    capsys.readouterr()  # what building the fixtures printed is not the command's output
    code = main(["train", str(recipe), "--output-dir", str(out), *extra])
    stderr = capsys.readouterr().err
    lines = stderr.strip().splitlines()
    assert code == 2, stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert fragment in lines[0], lines[0]
    assert not out.exists()
