"""The data stage: read, check and split a task's data before any model loads, then tokenize it.

`prepare_data(task, data)` is the one entry point. A GLUE task goes through `glue.load_glue_splits`, unchanged. The
general tasks (`text-classification`, `regression`) follow the same protocol on the user's data:

- *dev* is a seeded, label-stratified `dev_fraction` of train (regression: uniform), unless `data.dev_split` names an
  existing split;
- *test* is the dataset's labelled `validation` split, else its labelled `test` split; it is only reported. Data with
  neither gets a seeded, stratified `test_fraction` of train as test, drawn before dev;
- `max_train_samples` / `max_eval_samples` take seeded subsets after splitting, as for GLUE.

Labels are encoded once, before splitting, into a `ClassLabel` column `label` (regression: `float32`), so splits,
metrics, `config.json` and predictions agree on what class id 0 means. Every check works on Arrow columns, and rows
are chosen by index: no split is ever copied into Python lists.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..errors import DataError, RecipeError
from ..paths import resolve_package_path
from .arguments import DataArguments
from .sources import RawData, load_raw
from .splits import seeded_subset, stratified_indices
from .tasks import REGRESSION, TaskSpec, is_glue_task

__all__ = ["TaskData", "align_labels", "model_label_names", "prepare_data", "tokenize"]

# Text columns tried, in order, when the recipe names none (run_glue.py's sentence1/sentence2 first).
_USUAL_TEXT_COLUMNS = (("sentence1", "sentence2"), ("text",), ("sentence",))
_TEST_STREAM = 1000  # seed stream of the test hold-out, independent of the dev draw (which uses split_seed itself)


@dataclass
class TaskData:
    """A task's data in its three roles: `train` to fit, `dev` to select checkpoints, `test` (by name) to report.

    `source` is the dataset id, or "local files"; `splits` records how each role was made, for the report.
    """

    train: Any
    dev: Any
    test: dict[str, Any]
    task: TaskSpec
    source: str = "local files"
    dataset_config: str | None = None
    dataset_revision: str | None = None
    splits: dict[str, Any] = field(default_factory=dict)

    def card_data(self) -> dict[str, Any]:
        """What the model card says about the data: where it came from and what the labels are."""
        return {"dataset": self.source, "dataset_config": self.dataset_config,
                "dataset_revision": self.dataset_revision, "task": self.task.name,
                "label_names": list(self.task.label_names or ()), "metrics": list(self.task.metrics)}


# --------------------------------------------------------------------------------------------------------------------
# Labels of a model that is already fine-tuned


def model_label_names(id2label: dict | None) -> list[str] | None:
    """The class names a model was fine-tuned with, in id order; None for a fresh head (transformers' `LABEL_i`)."""
    if not id2label:
        return None
    names = [str(id2label[i]) for i in sorted(id2label, key=int)]
    if names == [f"LABEL_{i}" for i in range(len(names))]:
        return None
    return names


def align_labels(model_id2label: dict | None, spec: TaskSpec) -> tuple[str, ...] | None:
    """The label order to train in when starting from a model that already has a head for this task.

    None: the model's head is fresh (or the order already agrees), keep the data's order. A tuple: the same names in
    the model's order, so its head keeps meaning what it meant. Different names raise one line saying which.
    """
    names = model_label_names(model_id2label)
    if names is None:
        return None
    if spec.is_regression:
        raise DataError(f"model.name_or_path: the model is a classifier with labels {', '.join(names)}; task "
                        f"{spec.name} needs one output (start from a model without a classification head)")
    ours = list(spec.label_names or ())
    if names == ours:
        return None
    if sorted(names) != sorted(ours) or len(set(names)) != len(names):
        only_model = [n for n in names if n not in ours] or ["none"]
        only_data = [n for n in ours if n not in names] or ["none"]
        raise DataError(f"model.name_or_path: the model's labels ({', '.join(names)}) differ from the data's "
                        f"({', '.join(ours)}): only in the model: {', '.join(only_model)}; only in the data: "
                        f"{', '.join(only_data)}")
    return tuple(names)


def _relabel_in_memory(task_data: TaskData, order: tuple[str, ...]) -> TaskData:
    """GLUE's small splits take the model's label order by rewriting the column in memory."""
    import datasets

    old = list(task_data.task.label_names)
    lookup = np.array([order.index(name) for name in old], dtype=np.int64)
    spec = replace(task_data.task, label_names=tuple(order))

    def apply(dataset):
        features = dataset.features.copy()
        features["label"] = datasets.ClassLabel(names=list(order))
        return dataset.map(lambda batch: {"label": lookup[np.asarray(batch["label"], dtype=np.int64)].tolist()},
                           batched=True, features=features, keep_in_memory=True)

    return replace(task_data, task=spec, train=apply(task_data.train), dev=apply(task_data.dev),
                   test={k: apply(v) for k, v in task_data.test.items()})


# --------------------------------------------------------------------------------------------------------------------
# Columns


def _columns_listing(dataset) -> str:
    return ", ".join(dataset.column_names) or "none"


def _text_columns(raw: RawData, data: DataArguments) -> list[str]:
    train = raw.splits["train"]
    if data.text_columns is not None:
        for column in data.text_columns:
            if column == data.label_column:
                raise RecipeError(f"data.text_columns: {column!r} is the label column (data.label_column)")
            if column not in train.column_names:
                raise DataError(f"data.text_columns: {column!r} is not a column of {raw.origin('train')} (columns: "
                                f"{_columns_listing(train)})")
        return list(data.text_columns)
    for candidate in _USUAL_TEXT_COLUMNS:
        if all(c in train.column_names and c != data.label_column for c in candidate):
            return list(candidate)
    texts = [c for c in train.column_names if c != data.label_column and _is_text(train.features[c])]
    if len(texts) in (1, 2):
        return texts
    raise DataError(f"data.text_columns: cannot tell which columns of {raw.origin('train')} hold the text (columns: "
                    f"{_columns_listing(train)}); name one, or two for pairs")


def _is_text(feature) -> bool:
    return getattr(feature, "dtype", None) in ("string", "large_string")


def _check_columns(raw: RawData, split: str, text_columns: list[str], label_column: str) -> None:
    dataset = raw.splits[split]
    for column in (*text_columns, label_column):
        if column not in dataset.column_names:
            key = "label_column" if column == label_column else "text_columns"
            raise DataError(f"data.{key}: {column!r} is not a column of {raw.origin(split)} (columns: "
                            f"{_columns_listing(dataset)})")
    for column in text_columns:
        if not _is_text(dataset.features[column]):
            raise DataError(f"data.text_columns: column {column!r} of {raw.origin(split)} holds "
                            f"{dataset.features[column]}, not text")


def _check_texts(raw: RawData, split: str, text_columns: list[str]) -> None:
    import pyarrow.compute as pc

    dataset = raw.splits[split]
    for column in text_columns:
        values = dataset.with_format("arrow")[column]
        empty = pc.fill_null(pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(values)), 0), True)
        if pc.any(empty).as_py():
            row = int(np.flatnonzero(empty.to_numpy(zero_copy_only=False))[0])
            raise DataError(f"{raw.where(split, row)}: column {column!r} is empty (every example needs its text)")


# --------------------------------------------------------------------------------------------------------------------
# Labels


def _label_values(dataset, column: str):
    return dataset.with_format("arrow")[column]


def _is_labelled(raw: RawData, split: str, label_column: str) -> bool:
    """Hub test splits often keep the label column with -1 (or null) everywhere: they carry no labels."""
    import pyarrow.compute as pc

    dataset = raw.splits[split]
    if label_column not in dataset.column_names or len(dataset) == 0:
        return split in raw.files  # a local file without labels is a mistake worth an error later, not a skip
    values = _label_values(dataset, label_column)
    missing = pc.is_null(values)
    if _class_label(dataset, label_column) is not None:
        missing = pc.or_(missing, pc.fill_null(pc.less(values, 0), True))
    return not pc.all(missing).as_py()


def _class_label(dataset, column: str):
    import datasets

    feature = dataset.features.get(column)
    return feature if isinstance(feature, datasets.ClassLabel) else None


def _as_text_labels(raw: RawData, split: str, column: str):
    """The label column as strings (ClassLabel ids become their names), with the row of the first unusable value."""
    import pyarrow as pa
    import pyarrow.compute as pc

    dataset = raw.splits[split]
    values = _label_values(dataset, column)
    class_label = _class_label(dataset, column)
    if class_label is not None:
        ids = values.to_numpy(zero_copy_only=False) if values.null_count == 0 else None
        bad = None if ids is None else np.flatnonzero((ids < 0) | (ids >= class_label.num_classes))
        if ids is None or bad.size:
            row = int(bad[0]) if ids is not None else int(np.flatnonzero(pc.is_null(values).to_numpy(
                zero_copy_only=False))[0])
            raise DataError(f"{raw.where(split, row)}: no label in column {column!r} (an unlabelled example)")
        return pc.take(pa.array(class_label.names, type=pa.string()), pa.array(ids))
    kind = values.type
    if pa.types.is_floating(kind):
        numbers = values.to_numpy(zero_copy_only=False)
        fractional = np.flatnonzero(~np.isnan(numbers) & (numbers != np.round(numbers)))
        if fractional.size:
            raise DataError(f"{raw.where(split, int(fractional[0]))}: label {numbers[fractional[0]]!r} in column "
                            f"{column!r} is not a class; for numeric targets use task: regression")
        values = pc.cast(pc.if_else(pc.is_nan(values), None, values), pa.int64())
    elif not (pa.types.is_integer(kind) or pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        raise DataError(f"data.label_column: column {column!r} of {raw.origin(split)} holds {kind} values; expected "
                        f"class names (strings), integers or a ClassLabel")
    if values.null_count:
        row = int(np.flatnonzero(pc.is_null(values).to_numpy(zero_copy_only=False))[0])
        raise DataError(f"{raw.where(split, row)}: no label in column {column!r}")
    texts = pc.cast(values, pa.string())
    empty = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(texts)), 0)
    if pc.any(empty).as_py():
        row = int(np.flatnonzero(empty.to_numpy(zero_copy_only=False))[0])
        raise DataError(f"{raw.where(split, row)}: no label in column {column!r} (empty)")
    return texts


def _sorted_names(distinct: set[str]) -> list[str]:
    """Distinct labels in a stable order: numerically when they are all integers (`2` before `10`), else as text."""
    try:
        return sorted(distinct, key=int)
    except ValueError:
        return sorted(distinct)


def _label_names(raw: RawData, data: DataArguments, splits: list[str], texts: dict) -> list[str]:
    import pyarrow.compute as pc

    class_label = _class_label(raw.splits["train"], data.label_column)
    if data.labels is None:
        if class_label is not None:
            return list(class_label.names)
        distinct: set[str] = set()
        for split in splits:
            distinct.update(pc.unique(texts[split]).to_pylist())
        names = _sorted_names(distinct)
        if len(names) < 2:
            raise DataError(f"data.label_column: column {data.label_column!r} of {raw.origin('train')} holds one "
                            f"class ({names[0]}); classification needs at least two")
        return names
    return list(data.labels)


def _encode_classes(raw: RawData, split: str, texts, names: list[str], data: DataArguments) -> np.ndarray:
    """Class ids in `names` order; integers that are not all names are taken as ids into `data.labels`."""
    import pyarrow as pa
    import pyarrow.compute as pc

    ids = pc.index_in(texts, value_set=pa.array(names, type=pa.string()))
    dataset = raw.splits[split]
    raw_kind = _label_values(dataset, data.label_column).type
    if ids.null_count and data.labels is not None and _class_label(dataset, data.label_column) is None \
            and pa.types.is_integer(raw_kind):
        numbers = np.asarray(pc.cast(texts, pa.int64()).to_numpy(zero_copy_only=False))
        if numbers.min() >= 0 and numbers.max() < len(names):
            return numbers.astype(np.int64)
        row = int(np.flatnonzero((numbers < 0) | (numbers >= len(names)))[0])
        raise DataError(f"{raw.where(split, row)}: label {numbers[row]} is neither one of data.labels "
                        f"({', '.join(names)}) nor a class id 0 to {len(names) - 1}")
    if ids.null_count:
        row = int(np.flatnonzero(pc.is_null(ids).to_numpy(zero_copy_only=False))[0])
        where = "data.labels" if data.labels is not None else "the labels of the other splits"
        raise DataError(f"{raw.where(split, row)}: label {texts[row].as_py()!r} is not one of {', '.join(names)} "
                        f"({where})")
    return np.asarray(ids.to_numpy(zero_copy_only=False), dtype=np.int64)


def _encode_targets(raw: RawData, split: str, column: str) -> np.ndarray:
    """Regression targets as finite float32; the first NaN, empty or non-numeric value is an error naming its row."""
    import pyarrow as pa
    import pyarrow.compute as pc

    values = _label_values(raw.splits[split], column)
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        try:
            numbers = pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False)
        except pa.ArrowInvalid:  # Python's float() also takes " 1.5" and "1_000"; it names the first bad text
            texts = values.to_pylist()
            numbers = np.empty(len(texts), dtype=np.float64)
            for row, text in enumerate(texts):
                try:
                    numbers[row] = float(text)
                except (TypeError, ValueError):
                    raise DataError(f"{raw.where(split, row)}: target {text!r} in column {column!r} is not a number "
                                    f"(task regression)") from None
        numbers = np.where(pc.is_null(values).to_numpy(zero_copy_only=False), np.nan, numbers)
    elif pa.types.is_integer(values.type) or pa.types.is_floating(values.type) or pa.types.is_decimal(values.type):
        numbers = pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False)
        numbers = np.where(pc.is_null(values).to_numpy(zero_copy_only=False), np.nan, numbers)
    else:
        raise DataError(f"data.label_column: column {column!r} of {raw.origin(split)} holds {values.type} values; "
                        f"task regression needs numbers")
    bad = np.flatnonzero(~np.isfinite(numbers))
    if bad.size:
        row = int(bad[0])
        raise DataError(f"{raw.where(split, row)}: target {numbers[row]!r} in column {column!r} is not a finite "
                        f"number (task regression)")
    return numbers.astype(np.float32)


# --------------------------------------------------------------------------------------------------------------------
# Splits


def _with_label(dataset, text_columns: list[str], values: np.ndarray, feature):
    """The text columns plus `label` (the encoded values); text stays memory-mapped, the label column is new."""
    return dataset.select_columns(text_columns).add_column("label", values, feature=feature)


def _check_stratifiable(ids: np.ndarray | None, names, origin: str, purpose: str, key: str) -> None:
    if ids is None:
        return
    classes, counts = np.unique(ids, return_counts=True)
    small = [(names[c], n) for c, n in zip(classes, counts) if n < 2]
    if small:
        name, count = small[0]
        raise DataError(f"data.{key}: class {name!r} has {count} example in {origin}; a stratified {purpose} needs "
                        f"at least 2 of each class (add examples, drop the class, or name an existing split)")


def _hold_out(ids: np.ndarray | None, n: int, fraction: float, seed, origin: str, role: str, key: str):
    held = stratified_indices(ids, n, fraction, seed)
    if len(held) == 0 or len(held) == n:
        raise DataError(f"{origin}: {n} examples are too few to hold out data.{key} {fraction:g} as {role} and keep "
                        f"both non-empty")
    keep = np.ones(n, dtype=bool)
    keep[held] = False
    return np.flatnonzero(keep), held


def _prepare_general(task: str, data: DataArguments, label_order: tuple[str, ...] | None) -> TaskData:
    import datasets

    regression = task == REGRESSION
    raw = load_raw(data)
    present = list(raw.splits)
    if "train" not in raw.splits:
        raise DataError(f"data.dataset_name: {raw.origin('train').rsplit(' split', 1)[0]} has no 'train' split "
                        f"(splits: {', '.join(present)})")
    if data.dev_split is not None and data.dev_split not in raw.splits:
        raise DataError(f"data.dev_split: no split {data.dev_split!r} (splits: {', '.join(present)})")
    if data.label_column not in raw.splits["train"].column_names:
        raise DataError(f"data.label_column: {data.label_column!r} is not a column of {raw.origin('train')} "
                        f"(columns: {_columns_listing(raw.splits['train'])})")
    text_columns = _text_columns(raw, data)

    # Roles: the dev split if named; the test split: labelled validation, else labelled test.
    candidates = [s for s in ("validation", "test") if s in raw.splits and s != data.dev_split]
    test_split = next((s for s in candidates if _is_labelled(raw, s, data.label_column)), None)
    unused = [s for s in present if s not in ("train", data.dev_split, test_split)]
    if test_split is not None and data.test_fraction is not None:
        raise RecipeError(f"data.test_fraction: the data has a labelled {test_split!r} split, which is the test "
                          f"split; remove test_fraction (or use that split as dev with data.dev_split)")
    used = ["train"] + [s for s in (data.dev_split, test_split) if s is not None]
    for split in used:
        _check_columns(raw, split, text_columns, data.label_column)
        if len(raw.splits[split]) == 0:
            raise DataError(f"data.{raw.key(split)}: {raw.origin(split)} has no examples")
        _check_texts(raw, split, text_columns)

    # Labels, encoded once for every split in use.
    if regression:
        encoded = {s: _encode_targets(raw, s, data.label_column) for s in used}
        names, feature = None, datasets.Value("float32")
        canonical = {s: None for s in used}
    else:
        texts = {s: _as_text_labels(raw, s, data.label_column) for s in used}
        names = _label_names(raw, data, used, texts)
        canonical = {s: _encode_classes(raw, s, texts[s], names, data) for s in used}
        encoded = canonical
    metrics = tuple(data.metrics or _default_metrics(regression, len(names or ())))
    if not regression and "f1" in metrics and len(names) != 2:
        raise RecipeError(f"data.metrics: f1 is the F1 of class id 1 for two classes; the data has {len(names)} "
                          f"classes ({', '.join(names)}): use f1_macro or f1_micro")
    spec = TaskSpec(name=task, text_keys=tuple(text_columns), label_names=None if regression else tuple(names),
                    is_regression=regression, metrics=metrics, test_splits={"test": test_split or "train"})
    if label_order is not None:  # the model's order; splits below still stratify on the data's own order
        order = align_labels(dict(enumerate(label_order)), spec)
        if order is not None:
            lookup = np.array([order.index(n) for n in names], dtype=np.int64)
            encoded = {s: lookup[ids] for s, ids in encoded.items()}
            names = list(order)
            spec = replace(spec, label_names=tuple(order))
    if not regression:
        feature = datasets.ClassLabel(names=list(names))
    full = {s: _with_label(raw.splits[s], text_columns, encoded[s], feature) for s in used}

    seed = int(data.split_seed)
    train_origin = raw.origin("train")
    pool = np.arange(len(full["train"]))
    made: dict[str, Any] = {"train": {"from": "train", "source": train_origin}}
    if test_split is None:
        fraction = data.test_fraction if data.test_fraction is not None else 0.1
        _check_stratifiable(canonical["train"], names, train_origin, "test_fraction hold-out", "test_fraction")
        keep, held = _hold_out(canonical["train"], len(pool), fraction, [seed, _TEST_STREAM], train_origin, "test",
                               "test_fraction")
        test = full["train"].select(held, keep_in_memory=True)
        pool = keep
        made["test"] = {"from": "train", "fraction": fraction, "stratified": not regression, "seed": seed,
                        "reason": "the data has no labelled validation or test split"}
    else:
        test = full[test_split]
        made["test"] = {"from": test_split, "source": raw.origin(test_split)}
    if data.dev_split is not None:
        dev = full[data.dev_split]
        made["dev"] = {"from": data.dev_split, "source": raw.origin(data.dev_split)}
    else:
        labels = None if regression else canonical["train"][pool]
        _check_stratifiable(labels, names, train_origin, "dev_fraction hold-out", "dev_fraction")
        keep, held = _hold_out(labels, len(pool), data.dev_fraction, seed, train_origin, "dev", "dev_fraction")
        dev = full["train"].select(pool[held], keep_in_memory=True)
        pool = pool[keep]
        made["dev"] = {"from": "train", "fraction": data.dev_fraction, "stratified": not regression, "seed": seed}
    train = full["train"] if len(pool) == len(full["train"]) else full["train"].select(pool, keep_in_memory=True)

    train = seeded_subset(train, data.max_train_samples, seed, stream=1)
    dev = seeded_subset(dev, data.max_eval_samples, seed, stream=2)
    test = seeded_subset(test, data.max_eval_samples, seed, stream=3)
    for role, dataset in (("train", train), ("dev", dev), ("test", test)):
        made[role]["rows"] = len(dataset)
    if unused:
        made["unused_splits"] = unused
    return TaskData(train=train, dev=dev, test={"test": test}, task=spec,
                    source=raw.dataset_id or "local files", dataset_config=data.dataset_config_name,
                    dataset_revision=data.dataset_revision, splits=made)


def _default_metrics(regression: bool, num_labels: int) -> list[str]:
    if regression:
        return ["pearson", "spearmanr", "mse"]
    return ["accuracy", "f1"] if num_labels == 2 else ["accuracy", "f1_macro"]


# --------------------------------------------------------------------------------------------------------------------
# Entry points


def prepare_data(task: str, data: DataArguments, label_order: list[str] | tuple[str, ...] | None = None) -> TaskData:
    """Read, check and split the task's data; raises `UserError` (one line naming key, file and line) before any model
    loads.

    `label_order` is the class names of a model already fine-tuned on the task (`model_label_names(config.id2label)`);
    the labels then take the model's order, and names that differ are an error. Rows chosen for each split do not
    depend on it.
    """
    data.check_task(task)
    if is_glue_task(task):
        from .glue import load_glue_splits

        glue_dir = data.glue_dir and resolve_package_path(data.glue_dir, "data.glue_dir")
        task_data = load_glue_splits(task, glue_dir=glue_dir, dev_fraction=data.dev_fraction,
                                     split_seed=data.split_seed, max_train_samples=data.max_train_samples,
                                     max_eval_samples=data.max_eval_samples)
        order = None if label_order is None else align_labels(dict(enumerate(label_order)), task_data.task)
        return task_data if order is None else _relabel_in_memory(task_data, order)
    return _prepare_general(task, data, None if label_order is None else tuple(label_order))


def _tokenized_cache_file(dataset, tokenizer, text_keys, max_length: int) -> str | None:
    """A file in the datasets cache named after the input and the tokenizer, or None for in-memory data.

    Naming the file ourselves keeps `map` from writing next to a `save_to_disk` folder the user owns."""
    if not dataset.cache_files:
        return None
    import datasets
    from datasets.fingerprint import Hasher

    key = Hasher.hash([dataset._fingerprint, list(text_keys), int(max_length), tokenizer])
    folder = os.path.join(datasets.config.HF_DATASETS_CACHE, "hf_pins_tokenized")
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, f"{key}.arrow")


def tokenize(task_data: TaskData, tokenizer, max_length: int = 128) -> TaskData:
    """Tokenized copies of every split, truncated to `max_length` but NOT padded (`map(batched=True)`).

    Padding per batch (`transformers.DataCollatorWithPadding`) keeps short-text tasks several times faster than padding
    everything to `max_length`. Memory-mapped data is tokenized into the datasets cache and reused by the next run with
    the same data and tokenizer; small in-memory data (GLUE TSV files) stays in memory.
    """
    if isinstance(max_length, bool) or not isinstance(max_length, (int, np.integer)) or max_length < 2:
        raise RecipeError(f"max_length must be an integer of at least 2, got {max_length!r}")
    text_keys = list(task_data.task.text_keys)

    def encode(batch):
        return dict(tokenizer(*(batch[key] for key in text_keys), truncation=True, max_length=int(max_length)))

    def apply(dataset, role: str):
        cache_file = _tokenized_cache_file(dataset, tokenizer, text_keys, max_length)
        return dataset.map(encode, batched=True, remove_columns=text_keys, keep_in_memory=cache_file is None,
                           cache_file_name=cache_file, desc=f"tokenizing {task_data.task.name} {role}")

    return replace(task_data, train=apply(task_data.train, "train"), dev=apply(task_data.dev, "dev"),
                   test={key: apply(ds, key) for key, ds in task_data.test.items()})
