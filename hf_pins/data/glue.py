"""Load GLUE tasks as `datasets.Dataset` splits, from the Hub or from the classic `glue_data/` TSV folder.

The split protocol is the PINS paper's: GLUE keeps its test labels private, so the original validation set becomes
the test set, and a seeded, label-stratified `dev_fraction` of the original training set becomes the dev set used for
model selection. Every random choice uses numpy's PCG64 generator seeded explicitly, so a seed gives the same rows on
every machine and Python version.

Local files are read strictly: a malformed row is a `DataError` naming file and line, never a silently dropped or
merged example (csv quote handling is off because GLUE sentences contain unbalanced `"` characters).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, RecipeError
from .prepare import TaskData, tokenize
from .splits import seeded_subset, stratified_indices
from .tasks import TaskSpec, get_task

__all__ = ["GlueSplits", "load_glue_splits", "tokenize_splits"]

HUB_DATASET = "nyu-mll/glue"

# A GLUE task's splits are `TaskData` like every task's: `train` to fit, `dev` to select checkpoints, `test` to report.
GlueSplits = TaskData
# Tokenization is the same for every task.
tokenize_splits = tokenize


# --------------------------------------------------------------------------------------------------------------------
# Local TSV formats


@dataclass(frozen=True)
class _TsvFormat:
    """Where a task's fields sit in its TSV files. Names refer to the header; integers are positions (no header)."""

    text_columns: tuple[str | int, ...]  # parallel to TaskSpec.text_keys
    label_column: str | int
    label_kind: str  # "id": class ids written as 0/1; "name": label names; "score": STS-B float in [0, 5]
    has_header: bool = True
    num_columns: int | None = None  # only for header-less files; otherwise the header's width
    column_names: tuple[str, ...] = ()  # only for header-less files, for error messages


_STSB_MAX = 5.0

_TSV_FORMATS: dict[str, _TsvFormat] = {
    "cola": _TsvFormat(text_columns=(3,), label_column=1, label_kind="id", has_header=False, num_columns=4,
                       column_names=("source", "label", "original mark", "sentence")),
    "sst2": _TsvFormat(text_columns=("sentence",), label_column="label", label_kind="id"),
    "mrpc": _TsvFormat(text_columns=("#1 String", "#2 String"), label_column="Quality", label_kind="id"),
    "qqp": _TsvFormat(text_columns=("question1", "question2"), label_column="is_duplicate", label_kind="id"),
    "stsb": _TsvFormat(text_columns=("sentence1", "sentence2"), label_column="score", label_kind="score"),
    "mnli": _TsvFormat(text_columns=("sentence1", "sentence2"), label_column="gold_label", label_kind="name"),
    "qnli": _TsvFormat(text_columns=("question", "sentence"), label_column="label", label_kind="name"),
    "rte": _TsvFormat(text_columns=("sentence1", "sentence2"), label_column="label", label_kind="name"),
    "wnli": _TsvFormat(text_columns=("sentence1", "sentence2"), label_column="label", label_kind="id"),
}


def _split_file_name(hub_split: str) -> str:
    """`train` -> `train.tsv`, `validation` -> `dev.tsv`, `validation_matched` -> `dev_matched.tsv` (GLUE's names)."""
    return hub_split.replace("validation", "dev", 1) + ".tsv"


def _accepted_labels(spec: TaskSpec, kind: str) -> str:
    names = spec.label_names or ()
    if kind == "id":
        return ", ".join(f"{i} ({name})" for i, name in enumerate(names))
    return ", ".join(names)


def _parse_label(raw: str, spec: TaskSpec, kind: str, where: str) -> int | float:
    value = raw.strip()
    if kind == "score":
        try:
            score = float(value)
        except ValueError:
            score = float("nan")
        if not (0.0 <= score <= _STSB_MAX):  # also rejects nan and inf
            raise DataError(f"{where}: score {raw!r} is not a number between 0 and {_STSB_MAX:g}")
        return score
    names = spec.label_names or ()
    if kind == "name":
        if value in names:
            return names.index(value)
    elif value in [str(i) for i in range(len(names))]:
        return int(value)
    raise DataError(f"{where}: label {raw!r} is not one of {_accepted_labels(spec, kind)}")


def _read_tsv(path: Path, spec: TaskSpec) -> dict[str, list]:
    """Read and validate one GLUE TSV file into columns named as on the Hub (`label` holds ids or scores)."""
    fmt = _TSV_FORMATS[spec.name]
    if not path.is_file():
        raise DataError(f"{path}: file not found (a GLUE {spec.local_dir} folder needs train.tsv and "
                        f"{', '.join(_split_file_name(s) for s in spec.test_splits.values())})")
    columns: dict[str, list] = {key: [] for key in spec.text_keys}
    labels: list[int | float] = []
    line = 0
    try:
        # newline="" lets csv handle \r\n itself; utf-8-sig drops the byte-order mark MRPC's dev.tsv starts with.
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
            if fmt.has_header:
                header = next(reader, None)
                line = reader.line_num
                if header is None:
                    raise DataError(f"{path}: file is empty; expected a header line and examples")
                missing = [c for c in (*fmt.text_columns, fmt.label_column) if c not in header]
                if missing:
                    raise DataError(f"{path} line {line}: header lacks column(s) {', '.join(map(repr, missing))} "
                                    f"(found {', '.join(map(repr, header))})")
                width = len(header)
                text_pos = [header.index(c) for c in fmt.text_columns]
                label_pos = header.index(fmt.label_column)
                column_names = tuple(header)
            else:
                width = fmt.num_columns
                text_pos = list(fmt.text_columns)
                label_pos = fmt.label_column
                column_names = fmt.column_names
            for row in reader:
                line = reader.line_num
                if not row:  # a blank line carries no example (GLUE's own reader skips them too)
                    continue
                where = f"{path} line {line}"
                if len(row) != width:
                    raise DataError(f"{where}: expected {width} tab-separated columns "
                                    f"({', '.join(column_names)}), found {len(row)}")
                for key, pos in zip(spec.text_keys, text_pos):
                    if not row[pos].strip():
                        raise DataError(f"{where}: column {column_names[pos]!r} ({key}) is empty")
                    columns[key].append(row[pos])
                labels.append(_parse_label(row[label_pos], spec, fmt.label_kind, where))
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} line {line + 1}: not UTF-8 text ({exc.reason})") from exc
    except csv.Error as exc:
        raise DataError(f"{path} line {line + 1}: unreadable row ({exc})") from exc
    if not labels:
        raise DataError(f"{path}: no examples (the file has no data rows)")
    columns["label"] = labels
    return columns


def _features(spec: TaskSpec):
    """Same features as the Hub's `nyu-mll/glue`, so both sources give interchangeable datasets."""
    import datasets

    label = datasets.Value("float32") if spec.is_regression else datasets.ClassLabel(names=list(spec.label_names))
    return datasets.Features({**{key: datasets.Value("string") for key in spec.text_keys}, "label": label})


def _load_from_folder(spec: TaskSpec, glue_dir: Path, key: str) -> tuple[Any, dict[str, Any], str]:
    import datasets

    if not glue_dir.is_dir():
        raise DataError(f"GLUE folder {glue_dir} not found ({key} must be a folder in the classic glue_data "
                        f"layout, with {spec.local_dir}/train.tsv inside)")
    task_dir = glue_dir / spec.local_dir
    if not task_dir.is_dir():
        present = sorted(p.name for p in glue_dir.iterdir() if p.is_dir())
        raise DataError(f"{task_dir}: folder not found; task {spec.name!r} needs {spec.local_dir}/ in {glue_dir} "
                        f"(folders there: {', '.join(present) or 'none'})")
    features = _features(spec)

    def read(hub_split: str):
        return datasets.Dataset.from_dict(_read_tsv(task_dir / _split_file_name(hub_split), spec), features=features)

    train_file = task_dir / _split_file_name("train")
    return read("train"), {key: read(split) for key, split in spec.test_splits.items()}, str(train_file)


def _load_from_hub(spec: TaskSpec, key: str) -> tuple[Any, dict[str, Any], str]:
    import datasets

    try:
        loaded = datasets.load_dataset(HUB_DATASET, spec.hub_config)
    except Exception as exc:  # offline, DNS, proxy, rate limit: all mean "the Hub cannot give us the data"
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DataError(f"cannot load GLUE task {spec.name!r} from the Hugging Face Hub ({HUB_DATASET}, config "
                        f"{spec.hub_config!r}); the Hub is unreachable or refused ({reason}); set {key} to a "
                        f"folder with the GLUE TSV files (classic glue_data layout) to work offline") from exc
    keep = [*spec.text_keys, "label"]

    def pick(split: str):
        if split not in loaded:
            raise DataError(f"{HUB_DATASET} config {spec.hub_config!r} has no split {split!r} "
                            f"(it has {', '.join(loaded)})")
        return loaded[split].select_columns(keep)

    source = f"{HUB_DATASET} ({spec.hub_config}) train split"
    return pick("train"), {key: pick(split) for key, split in spec.test_splits.items()}, source


# --------------------------------------------------------------------------------------------------------------------
# Splitting and capping


def _check_options(dev_fraction: float, split_seed: int, max_train_samples: int | None,
                   max_eval_samples: int | None) -> None:
    if isinstance(dev_fraction, bool) or not isinstance(dev_fraction, (int, float)) or not 0 < dev_fraction < 1:
        raise RecipeError(f"dev_fraction must be a number strictly between 0 and 1, got {dev_fraction!r}")
    if isinstance(split_seed, bool) or not isinstance(split_seed, (int, np.integer)) or split_seed < 0:
        raise RecipeError(f"split_seed must be a non-negative integer, got {split_seed!r}")
    for name, value in (("max_train_samples", max_train_samples), ("max_eval_samples", max_eval_samples)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1):
            raise RecipeError(f"{name} must be a positive integer or null, got {value!r}")


def load_glue_splits(task: str, glue_dir: str | os.PathLike | None = None, dev_fraction: float = 0.1,
                     split_seed: int = 42, max_train_samples: int | None = None,
                     max_eval_samples: int | None = None, glue_dir_key: str = "data.glue_dir") -> GlueSplits:
    """Load a GLUE task split the PINS way: train/dev from the original train set, test = the original dev set.

    `glue_dir=None` downloads `nyu-mll/glue` from the Hub; a path reads `<glue_dir>/<TaskDir>/{train,dev}.tsv`.
    `max_train_samples` / `max_eval_samples` subsample after the split (for quick runs); they never change which rows
    are train and which are dev. `glue_dir_key` is how the caller's user sets `glue_dir` (the recipe key, or
    `export --glue-dir`), for the messages.
    """
    spec = get_task(task)
    _check_options(dev_fraction, split_seed, max_train_samples, max_eval_samples)
    if glue_dir is None:
        original_train, tests, source = _load_from_hub(spec, glue_dir_key)
    else:
        original_train, tests, source = _load_from_folder(spec, Path(os.path.expanduser(os.fspath(glue_dir))), glue_dir_key)

    n = len(original_train)
    labels = None if spec.is_regression else np.asarray(original_train["label"], dtype=np.int64)
    dev_idx = stratified_indices(labels, n, float(dev_fraction), int(split_seed))
    if len(dev_idx) == 0 or len(dev_idx) == n:
        raise DataError(f"{source}: {n} examples are too few to hold out dev_fraction {dev_fraction:g} "
                        f"and keep both train and dev non-empty")
    is_dev = np.zeros(n, dtype=bool)
    is_dev[dev_idx] = True
    train = original_train.select(np.flatnonzero(~is_dev))
    dev = original_train.select(dev_idx)

    train = seeded_subset(train, max_train_samples, int(split_seed), stream=1)
    dev = seeded_subset(dev, max_eval_samples, int(split_seed), stream=2)
    test = {key: seeded_subset(ds, max_eval_samples, int(split_seed), stream=3 + i) for i, (key, ds) in enumerate(tests.items())}
    made = {"train": {"from": "train", "source": source, "rows": len(train)},
            "dev": {"from": "train", "fraction": float(dev_fraction), "stratified": not spec.is_regression,
                    "seed": int(split_seed), "rows": len(dev)},
            **{key: {"from": split, "rows": len(test[key])} for key, split in spec.test_splits.items()}}
    from_hub = glue_dir is None
    return TaskData(train=train, dev=dev, test=test, task=spec, source=HUB_DATASET if from_hub else "local files",
                    dataset_config=spec.hub_config if from_hub else None, splits=made)
