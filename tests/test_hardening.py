"""Interruption (SIGKILL, SIGTERM), divergence, unsafe YAML and a fuzz of recipe loading."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from conftest import REPO, make_trainer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file

from hf_pins.errors import RecipeError
from hf_pins.recipe import load_recipe, validate_recipe

LONG_RUN = ["--set", "training.num_train_epochs=40", "--set", "training.eval_steps=20", "--set", "training.save_steps=20",
            "--set", "training.save_total_limit=null"]


def _cli(recipe, out, *extra):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return [sys.executable, "-m", "hf_pins.cli", "train", str(recipe), "--output-dir", str(out), *LONG_RUN, *extra], env


def _run(recipe, out, *extra):
    argv, env = _cli(recipe, out, *extra)
    return subprocess.run(argv, env=env, capture_output=True, text=True, cwd=REPO, timeout=600)


def _interrupt_after_checkpoint(recipe, out, sig) -> subprocess.Popen:
    argv, env = _cli(recipe, out)
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    deadline = time.time() + 300
    while not (out / "checkpoint-40").is_dir():
        assert process.poll() is None, process.stderr.read()[-2000:]
        assert time.time() < deadline
        time.sleep(0.02)
    process.send_signal(sig)
    process.wait(timeout=120)
    return process


def _same_weights(a: Path, b: Path):
    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, tiny_model_dir):
    import yaml as _yaml

    folder = tmp_path_factory.mktemp("uninterrupted")
    recipe = folder / "recipe.yaml"
    recipe.write_text(_yaml.safe_dump({
        "model": {"name_or_path": str(tiny_model_dir)}, "task": "rte",
        "data": {"glue_dir": "pkg:hf_pins/demo_data", "max_length": 48, "max_train_samples": 64, "max_eval_samples": 32},
        "pruning": {"method": "pins", "target_sparsity": 0.8, "mask_update_interval": 2},
        "training": {"per_device_train_batch_size": 8, "learning_rate": 1e-3, "logging_steps": 20, "use_cpu": True,
                     "disable_tqdm": True, "seed": 3},
    }))
    done = _run(recipe, folder / "out")
    assert done.returncode == 0, done.stderr[-3000:]
    return recipe, folder / "out"


def test_sigkill_then_resume_equals_uninterrupted_run(tmp_path, uninterrupted):
    recipe, reference = uninterrupted
    out = tmp_path / "killed"
    process = _interrupt_after_checkpoint(recipe, out, signal.SIGKILL)
    assert process.returncode == -signal.SIGKILL
    assert not (out / "model.safetensors").exists()  # it really was cut short
    for checkpoint in out.glob("checkpoint-*"):  # whatever the moment of the kill: complete or absent
        assert (checkpoint / "pruning_state.json").is_file() and (checkpoint / "model.safetensors").is_file()
    resumed = _run(recipe, out, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    _same_weights(out, reference)


def test_sigterm_saves_a_checkpoint_and_stops(tmp_path, uninterrupted):
    recipe, reference = uninterrupted
    out = tmp_path / "terminated"
    process = _interrupt_after_checkpoint(recipe, out, signal.SIGTERM)
    stderr = process.stderr.read()
    assert process.returncode == 128 + signal.SIGTERM, stderr[-2000:]
    assert "--resume" in stderr.strip().splitlines()[-1]
    assert not (out / "model.safetensors").exists()
    steps = sorted(int(p.name.split("-")[1]) for p in out.glob("checkpoint-*"))
    assert steps[-1] > 40  # a checkpoint was written where the run stopped, not only on the save schedule
    resumed = _run(recipe, out, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    _same_weights(out, reference)


def test_non_finite_loss_stops_with_a_clear_error(tmp_path):
    from hf_pins.trainer import TrainingDiverged

    trainer = make_trainer(tmp_path, save_strategy="steps", save_steps=4)
    with torch.no_grad():
        trainer.model.classifier.weight[0, 0] = float("nan")
    with pytest.raises(TrainingDiverged, match="training loss is nan at step 1"):
        trainer.train()


def test_yaml_tags_that_construct_objects_are_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.yaml"
    path.write_text(f"model: !!python/object/apply:os.system ['touch {marker}']\ntask: rte\n")
    with pytest.raises(RecipeError, match="evil.yaml line 1: not valid YAML"):
        load_recipe(path)
    assert not marker.exists()


_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                     st.text(max_size=12))
_values = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                          st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                       max_leaves=8)
_VALID = yaml.safe_load((REPO / "recipes" / "demo.yaml").read_text())
_KEYS = [(section, key) for section, body in _VALID.items() if isinstance(body, dict) for key in body]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(["model", "task", "data", "pruning", "training", "extra"]), _values, max_size=6))
def test_random_recipes_raise_only_recipe_errors(raw):
    try:
        validate_recipe(raw, "fuzz.yaml")
    except RecipeError:
        pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_KEYS), _values)
def test_mutated_valid_recipes_raise_only_recipe_errors(key, value):
    raw = yaml.safe_load(yaml.safe_dump(_VALID))
    raw[key[0]][key[1]] = value
    try:
        validate_recipe(raw, "fuzz.yaml")
    except RecipeError as exc:
        assert str(exc).startswith("fuzz.yaml: ")


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_random_yaml_text_raises_only_recipe_errors(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "recipe.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        load_recipe(path)
    except RecipeError:
        pass
