"""Shared fixtures: tiny BERT models built from a config and small synthetic token datasets (no network)."""

from __future__ import annotations

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

REPO = Path(__file__).resolve().parents[1]
GLUE_DIR = REPO.parent / "shared" / "glue"

torch.set_num_threads(min(2, torch.get_num_threads()))


def tiny_bert(num_labels: int = 2, seed: int = 0, **overrides) -> BertForSequenceClassification:
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=64, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=64, num_labels=num_labels, **overrides,
    )
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


@pytest.fixture
def tiny_model():
    return tiny_bert()
