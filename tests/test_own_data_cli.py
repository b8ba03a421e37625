"""`hf-pins train` on a user's own data, end to end: every source format, 2/4/20 classes and regression, the
label names in config.json, report and card, a fine-tuned model's label order, and bad input before any model loads."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from test_cli_train import run_cli
from test_own_data import examples, write_csv, write_jsonl

SMALL_RUN = {"num_train_epochs": 2, "per_device_train_batch_size": 8, "learning_rate": 1e-3, "eval_steps": 4,
             "save_steps": 100, "logging_steps": 4, "use_cpu": True, "disable_tqdm": True, "seed": 3}


@pytest.fixture(autouse=True)
def datasets_cache(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf_datasets_cache"))


@pytest.fixture
def tiny_base_dir(tmp_path, tiny_model_dir):
    """The tiny BERT without a classification head (a pre-trained encoder: a fresh head of any size fits it)."""
    import shutil

    from transformers import BertForSequenceClassification

    folder = tmp_path / "tiny-base"
    shutil.copytree(tiny_model_dir, folder)
    for name in ("model.safetensors", "config.json"):
        (folder / name).unlink()
    BertForSequenceClassification.from_pretrained(tiny_model_dir).bert.save_pretrained(folder)
    return folder


def write_split(folder, name, rows, suffix):
    path = folder / f"{name}{suffix}"
    if suffix in (".csv", ".tsv"):
        return write_csv(path, rows, "\t" if suffix == ".tsv" else ",")
    if suffix == ".jsonl":
        return write_jsonl(path, rows)
    if suffix == ".json":
        path.write_text(json.dumps(rows), encoding="utf-8")
        return path
    from datasets import Dataset

    Dataset.from_list(rows).to_parquet(str(path))
    return path


def recipe_for(tmp_path, model_dir, task, data) -> str:
    recipe = {"model": str(model_dir), "task": task, "data": {"max_length": 32, **data},
              "pruning": {"target_sparsity": 0.5, "mask_update_interval": 2}, "training": SMALL_RUN}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return str(path)


def train(capsys, recipe, out, *extra):
    code, stdout, stderr = run_cli(capsys, "train", recipe, "--output-dir", str(out), *extra)
    return code, stdout, stderr


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".json", ".jsonl", ".parquet"])
def test_every_file_format_trains(tmp_path, tiny_base_dir, capsys, suffix):
    classes = ["billing", "delivery", "refund", "other"]
    train_file = write_split(tmp_path, "train", examples(96, classes), suffix)
    test_file = write_split(tmp_path, "test", examples(24, classes, seed=1), suffix)
    recipe = recipe_for(tmp_path, tiny_base_dir, "text-classification",
                        {"train_file": str(train_file), "test_file": str(test_file)})
    code, stdout, stderr = train(capsys, recipe, tmp_path / "model")
    assert code == 0, stderr
    report = json.loads((tmp_path / "model" / "pruning_report.json").read_text())
    assert report["data"]["label_names"] == sorted(classes) and report["data"]["dataset"] == "local files"
    assert set(report["metrics"]["test"]) >= {"accuracy", "f1_macro"}
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert [config["id2label"][str(i)] for i in range(4)] == sorted(classes)
    assert report["overall"] == pytest.approx(0.5, abs=1e-3)


@pytest.mark.parametrize("k", [2, 20])
def test_two_and_twenty_classes(tmp_path, tiny_base_dir, capsys, k):
    classes = [f"class_{i:02d}" for i in range(k)]
    train_file = write_split(tmp_path, "train", examples(20 * k, classes), ".csv")
    recipe = recipe_for(tmp_path, tiny_base_dir, "text-classification", {"train_file": str(train_file)})
    code, _, stderr = train(capsys, recipe, tmp_path / "model")
    assert code == 0, stderr
    report = json.loads((tmp_path / "model" / "pruning_report.json").read_text())
    assert len(report["data"]["label_names"]) == k
    assert report["data"]["splits"]["test"]["fraction"] == 0.1  # only a train split: a seeded test fraction
    assert report["main_metric"] == "accuracy" and ("f1" if k == 2 else "f1_macro") in report["metrics"]["test"]
    card = (tmp_path / "model" / "README.md").read_text()
    assert "local files (`train.csv`)" in card and "held out" in card


def test_regression(tmp_path, tiny_base_dir, capsys):
    rng = np.random.default_rng(0)
    rows = [{"text": f"item {i} scores {int(v)}", "score": float(v)} for i, v in enumerate(rng.uniform(0, 5, 96))]
    train_file = write_split(tmp_path, "train", rows, ".jsonl")
    recipe = recipe_for(tmp_path, tiny_base_dir, "regression", {"train_file": str(train_file), "label_column": "score"})
    code, _, stderr = train(capsys, recipe, tmp_path / "model")
    assert code == 0, stderr
    report = json.loads((tmp_path / "model" / "pruning_report.json").read_text())
    assert report["main_metric"] == "pearson" and {"pearson", "spearmanr", "mse"} <= set(report["metrics"]["test"])
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["problem_type"] == "regression" and len(config["id2label"]) == 1


def test_a_save_to_disk_folder_and_a_hub_dataset(tmp_path, tiny_base_dir, capsys, monkeypatch):
    """A dataset saved with save_to_disk reads as it is; a Hub id goes through datasets.load_dataset, intercepted here
    (no network) to serve the same rows as if downloaded."""
    import datasets

    rows = examples(96, ["no", "yes"])
    saved = tmp_path / "saved"
    datasets.DatasetDict({"train": datasets.Dataset.from_list(rows),
                          "validation": datasets.Dataset.from_list(examples(24, ["no", "yes"], seed=2))}
                         ).save_to_disk(str(saved))
    recipe = recipe_for(tmp_path, tiny_base_dir, "text-classification", {"dataset_name": str(saved)})
    code, _, stderr = train(capsys, recipe, tmp_path / "disk")
    assert code == 0, stderr

    calls = []

    def from_the_hub(name, config=None, revision=None, **kwargs):
        calls.append((name, config, revision))
        return datasets.load_from_disk(str(saved))

    import hf_pins.data.sources

    monkeypatch.setattr(hf_pins.data.sources, "load_dataset", from_the_hub, raising=False)
    monkeypatch.setattr(datasets, "load_dataset", from_the_hub)
    recipe = recipe_for(tmp_path, tiny_base_dir, "text-classification",
                        {"dataset_name": "someone/reviews", "dataset_revision": "v1"})
    code, _, stderr = train(capsys, recipe, tmp_path / "hub")
    assert code == 0, stderr
    assert calls and calls[0][0] == "someone/reviews" and calls[0][2] == "v1"
    card = (tmp_path / "hub" / "README.md").read_text()
    assert "the dataset `someone/reviews`" in card
    meta = yaml.safe_load(card.split("---")[1])
    assert meta["datasets"] == ["someone/reviews"]
    assert meta["model-index"][0]["results"][0]["dataset"]["split"] == "validation"


def test_a_fine_tuned_models_label_order_is_kept_and_other_names_refused(tmp_path, tiny_model_dir, capsys):
    import shutil

    tiny_model_dir = shutil.copytree(tiny_model_dir, tmp_path / "fine-tuned")  # its config is edited below
    from transformers import AutoConfig

    train_file = write_split(tmp_path, "train", examples(64, ["neg", "pos"]), ".csv")
    config = AutoConfig.from_pretrained(tiny_model_dir)
    config.id2label, config.label2id = {0: "pos", 1: "neg"}, {"pos": 0, "neg": 1}
    config.architectures = ["BertForSequenceClassification"]
    config.save_pretrained(tiny_model_dir)
    recipe = recipe_for(tmp_path, tiny_model_dir, "text-classification", {"train_file": str(train_file)})
    code, _, stderr = train(capsys, recipe, tmp_path / "model")
    assert code == 0, stderr
    saved = json.loads((tmp_path / "model" / "config.json").read_text())["id2label"]
    assert saved == {"0": "pos", "1": "neg"}  # the model's order, not the sorted one
    config.id2label, config.label2id = {0: "bad", 1: "good"}, {"bad": 0, "good": 1}
    config.save_pretrained(tiny_model_dir)
    code, _, stderr = train(capsys, recipe, tmp_path / "other")
    assert code == 2 and len(stderr.strip().splitlines()) == 1 and "bad" in stderr and "neg" in stderr
    assert not (tmp_path / "other").exists()


@pytest.mark.parametrize("data, fragment", [
    ({"train_file": "TRAIN", "text_columns": ["body"]}, "body"),
    ({"train_file": "TRAIN", "label_column": "intent"}, "intent"),
    ({"train_file": "TRAIN", "text_columns": ["text", "text", "text"]}, "data.text_columns"),
    ({"train_file": "TRAIN", "dataset_name": "x/y"}, "data.dataset_name"),
    ({}, "data.dataset_name"),
    ({"train_file": "TRAIN", "labels": ["billing"]}, "data.labels"),
    ({"train_file": "MISSING"}, "missing.csv"),
])
def test_bad_input_is_one_line_before_any_model_loads(tmp_path, tiny_base_dir, capsys, monkeypatch, data, fragment):
    train_file = write_split(tmp_path, "train", examples(40, ["billing", "refund"]), ".csv")
    data = {k: (str(train_file) if v == "TRAIN" else str(tmp_path / "missing.csv") if v == "MISSING" else v)
            for k, v in data.items()}
    import hf_pins.training

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the data was checked")

    monkeypatch.setattr(hf_pins.training, "load_model_and_tokenizer", no_model)
    recipe = recipe_for(tmp_path, tiny_base_dir, "text-classification", data)
    code, _, stderr = train(capsys, recipe, tmp_path / "model")
    assert code == 2 and len(stderr.strip().splitlines()) == 1 and fragment in stderr, stderr
    assert not (tmp_path / "model").exists()
