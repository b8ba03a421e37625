"""Shared fixtures: tiny BERT models built from a config and small synthetic token datasets (no network)."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
from datasets import Dataset  # noqa: E402
from transformers import BertConfig, BertForSequenceClassification  # noqa: E402

from hf_pins.extras import EXTRAS  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
GLUE_DIR = REPO.parent / "shared" / "glue"

torch.set_num_threads(min(2, torch.get_num_threads()))


def tiny_bert(num_labels: int = 2, seed: int = 0, **overrides) -> BertForSequenceClassification:
    torch.manual_seed(seed)
    settings = dict(vocab_size=64, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                    max_position_embeddings=64, num_labels=num_labels)
    config = BertConfig(**{**settings, **overrides})
    return BertForSequenceClassification(config)


def token_dataset(n: int = 64, num_labels: int = 2, seed: int = 0) -> Dataset:
    """Sequences of random token ids; the label is a simple function of the tokens, so it can be learnt."""
    rng = np.random.default_rng(seed)
    rows = {"input_ids": [], "attention_mask": [], "label": []}
    for _ in range(n):
        length = int(rng.integers(4, 12))
        ids = [2] + rng.integers(5, 64, size=length).tolist() + [3]
        rows["input_ids"].append(ids)
        rows["attention_mask"].append([1] * len(ids))
        if num_labels == 1:
            rows["label"].append(float(np.mean(ids) / 64 * 5))
        else:
            rows["label"].append(int(sum(i < 32 for i in ids) > len(ids) / 2) % num_labels)
    return Dataset.from_dict(rows)


class OneWeight(torch.nn.Module):
    """A single prunable 1x2 matrix `[1, -2]`, named like an encoder block's projection (`layer.0.proj`): the
    hand-computed score examples use it."""

    def __init__(self):
        super().__init__()
        self.layer = torch.nn.ModuleList([torch.nn.Module()])
        self.layer[0].proj = torch.nn.Linear(2, 1, bias=False)
        with torch.no_grad():
            self.layer[0].proj.weight.copy_(torch.tensor([[1.0, -2.0]]))


@pytest.fixture
def tiny_model():
    return tiny_bert()


def pad_collate(features: list[dict]) -> dict:
    """Dynamic padding for `token_dataset` rows (what DataCollatorWithPadding does, without a tokenizer)."""
    width = max(len(f["input_ids"]) for f in features)
    ids = torch.zeros(len(features), width, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, f in enumerate(features):
        ids[i, : len(f["input_ids"])] = torch.tensor(f["input_ids"])
        mask[i, : len(f["input_ids"])] = 1
    labels = torch.tensor([f["label"] for f in features])
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def accuracy_metric(prediction) -> dict:
    return {"accuracy": float((prediction.predictions.argmax(-1) == prediction.label_ids).mean())}


def make_trainer(output_dir, model=None, train=None, dev=None, teacher_model=None, callbacks=None, **overrides):
    """A PINSTrainer on a tiny model with small, fast defaults; `overrides` are PINSConfig fields."""
    from hf_pins import PINSConfig, PINSTrainer

    settings = dict(
        output_dir=str(output_dir), num_train_epochs=4, per_device_train_batch_size=8, learning_rate=1e-3,
        eval_strategy="steps", eval_steps=4, save_strategy="no", logging_steps=4, report_to=[],
        metric_for_best_model="accuracy", greater_is_better=True, target_sparsity=0.8, use_cpu=True, seed=1,
        disable_tqdm=True, mask_update_interval=2, dense_warmup_ratio=0.1, pruning_final_ratio=0.25,
    )
    settings.update(overrides)
    return PINSTrainer(
        model=model if model is not None else tiny_bert(),
        args=PINSConfig(**settings),
        train_dataset=train if train is not None else token_dataset(64),
        eval_dataset=dev if dev is not None else token_dataset(32, seed=1),
        data_collator=pad_collate,
        compute_metrics=accuracy_metric,
        teacher_model=teacher_model,
        callbacks=callbacks,
    )


def _demo_vocabulary() -> list[str]:
    """Lower-cased words of the shipped demo data, enough for a tiny WordPiece vocabulary."""
    import re

    words = set()
    for name in ("train.tsv", "dev.tsv"):
        text = (REPO / "hf_pins" / "demo_data" / "RTE" / name).read_text(encoding="utf-8").lower()
        words.update(re.findall(r"[a-z]+|[^\sa-z]", text))
    return ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted(words)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny BERT with its own tokenizer, saved like a Hub checkpoint (the recipe tests' `model.name_or_path`)."""
    from transformers import BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-bert")
    vocab = _demo_vocabulary()
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True)
    tokenizer.save_pretrained(folder)
    model = tiny_bert(vocab_size=len(vocab))
    model.config.max_position_embeddings = 64
    model.save_pretrained(folder)
    return folder


@pytest.fixture
def tiny_recipe(tmp_path, tiny_model_dir) -> Path:
    """A recipe that runs `hf-pins train` end to end on the tiny model and demo data in a few seconds."""
    import yaml

    recipe = {
        "model": {"name_or_path": str(tiny_model_dir)},
        "task": "rte",
        "data": {"glue_dir": "pkg:hf_pins/demo_data", "max_length": 48,
                 "max_train_samples": 64, "max_eval_samples": 32},
        "pruning": {"method": "pins", "target_sparsity": 0.8, "mask_update_interval": 2},
        "training": {"num_train_epochs": 2, "per_device_train_batch_size": 8, "learning_rate": 1e-3,
                     "eval_steps": 4, "save_steps": 8, "logging_steps": 4, "use_cpu": True, "disable_tqdm": True,
                     "seed": 3},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


# Optional parts of hf_pins (pyproject extras) and the modules their tests need. A test marked with the extra's name is
# skipped, with the reason in the summary, where that part is not installed (CI's transformers-5 environment);
# with HF_PINS_REQUIRE_EXTRAS=1 (the locked environment, which installs every extra) a missing part stops the run.


def missing_module(modules) -> str | None:
    """The first of `modules` that cannot be imported, with the reason, or None."""
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:  # ImportError, or a broken install (DeepSparse with an onnx it cannot use)
            return f"{name} ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
    return None


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: runs a real model for minutes or a subprocess suite (deselect with -m 'not slow')")
    if os.environ.get("HF_PINS_REQUIRE_EXTRAS") == "1":
        for extra, modules in EXTRAS.items():
            if (missing := missing_module(modules)) is not None:
                raise pytest.UsageError(f"HF_PINS_REQUIRE_EXTRAS=1 but hf_pins[{extra}] is not usable: {missing}")


def pytest_collection_modifyitems(config, items):
    for extra, modules in EXTRAS.items():
        marked = [item for item in items if item.get_closest_marker(extra) is not None]
        if marked and (missing := missing_module(modules)) is not None:
            skip = pytest.mark.skip(reason=f"needs hf_pins[{extra}]: {missing} is not importable")
            for item in marked:
                item.add_marker(skip)
