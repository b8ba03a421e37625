"""The recipe's `data:` section as a dataclass: where the data comes from, which columns mean what, how it is split.

Keys follow `transformers/examples/pytorch/text-classification/run_glue.py` (`dataset_name`, `train_file`,
`max_train_samples`, ...), which people already know. Values are checked here, one key at a time and in combination;
whatever needs the task or the data itself is checked by `check_task` and by `hf_pins.data.prepare.prepare_data`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Optional

from ..errors import RecipeError
from ..metrics.formulas import METRICS
from .tasks import GENERAL_TASKS, GLUE_TASKS, REGRESSION, is_glue_task

__all__ = ["DataArguments", "FILE_FORMATS"]

# File suffix -> the `datasets` builder that reads it (and the delimiter for csv).
FILE_FORMATS: dict[str, tuple[str, str | None]] = {
    ".csv": ("csv", ","),
    ".tsv": ("csv", "\t"),
    ".json": ("json", None),
    ".jsonl": ("json", None),
    ".parquet": ("parquet", None),
}
_FILE_KEYS = ("train_file", "validation_file", "test_file")
# Keys that describe a user's own data; a GLUE task fixes all of them itself.
_OWN_DATA_KEYS = ("dataset_name", "dataset_config_name", "dataset_revision", *_FILE_KEYS, "text_columns", "labels",
                  "metrics", "dev_split", "test_fraction")


@dataclass
class DataArguments:
    """
    Where the training data comes from and how it becomes train, dev and test splits (the recipe's `data:` section).

    Parameters that choose the data:
        glue_dir (`str` or `None`, defaults to `None`):
            GLUE tasks only: a folder in the classic `glue_data/` layout (`RTE/train.tsv`, ...); `None` loads
            `nyu-mll/glue` from the Hub. `pkg:PACKAGE/SUBDIR` names a folder inside an installed package.
        dataset_name (`str` or `None`, defaults to `None`):
            A Hub dataset id (`ag_news`) or a local folder: one written by `Dataset.save_to_disk`, or one of data
            files `datasets.load_dataset` can read. Not together with `train_file`.
        dataset_config_name (`str` or `None`, defaults to `None`):
            The Hub dataset's configuration (`glue`'s `rte`, ...).
        dataset_revision (`str` or `None`, defaults to `None`):
            A branch, tag or commit of the Hub dataset, to pin the data a result was measured on.
        train_file, validation_file, test_file (`str` or `None`, default to `None`):
            Local files of one format: `.csv`, `.tsv`, `.json` (JSON Lines or a list of records), `.jsonl`, `.parquet`.

    Parameters that say what the columns mean:
        text_columns (`list[str]` or `None`, defaults to `None`):
            One text column, or two for sentence pairs (NLI, paraphrase). `None` infers them: `sentence1` and
            `sentence2`, else `text`, else `sentence`, else the only one or two text columns besides the label.
        label_column (`str`, defaults to `"label"`):
            The column holding the class (a ClassLabel, a string or an integer) or the regression target (a number).
        labels (`list[str]` or `None`, defaults to `None`):
            The classes in a fixed order (class id 0 first); a label outside them is an error. `None` takes the
            ClassLabel names, else the distinct values sorted (integers numerically). Integer labels match `labels`
            by their text when all of them appear there, else they are class ids into `labels`.
        metrics (`list[str]` or `None`, defaults to `None`):
            What the evaluation reports; the first one chooses checkpoints and teacher refreshes. `None`: accuracy and
            f1 for two classes, accuracy and f1_macro for more, pearson, spearmanr and mse for regression.

    Parameters that control the splits:
        dev_split (`str` or `None`, defaults to `None`):
            An existing split to select checkpoints on (`validation`), instead of a fraction of train. The test
            split is then the dataset's labelled `test` split.
        dev_fraction (`float`, defaults to `0.1`):
            Share of the training split held out (seeded, label-stratified; regression: uniform) as the dev split.
        test_fraction (`float` or `None`, defaults to `None`):
            Share of the training split held out as the test split when the data has no labelled `validation` or
            `test` split (`None`: 0.1 then). An error when such a split exists.
        split_seed (`int`, defaults to `42`):
            Seed of every random choice of rows (numpy's PCG64), so a seed gives the same rows everywhere.
        max_length (`int`, defaults to `128`):
            Tokens per example after truncation (examples are padded per batch, not to this length).
        max_train_samples, max_eval_samples (`int` or `None`, default to `None`):
            Seeded subsets of the train split and of the dev and test splits, taken after splitting (quick runs).
    """

    glue_dir: Optional[str] = field(default=None, metadata={
        "help": "GLUE tasks only: a folder in the classic glue_data layout; None loads nyu-mll/glue from the Hub."})
    dataset_name: Optional[str] = field(default=None, metadata={
        "help": "A Hub dataset id, or a local folder (save_to_disk, or data files); not together with train_file."})
    dataset_config_name: Optional[str] = field(default=None, metadata={"help": "The Hub dataset's configuration."})
    dataset_revision: Optional[str] = field(default=None, metadata={
        "help": "A branch, tag or commit of the Hub dataset."})
    train_file: Optional[str] = field(default=None, metadata={
        "help": "A local .csv, .tsv, .json, .jsonl or .parquet file with the training examples."})
    validation_file: Optional[str] = field(default=None, metadata={
        "help": "A local file like train_file; its labelled examples are the test split (or the dev split with "
                "dev_split: validation)."})
    test_file: Optional[str] = field(default=None, metadata={"help": "A local file like train_file."})
    text_columns: Optional[list[str]] = field(default=None, metadata={
        "help": "One text column, or two for sentence pairs; None infers them."})
    label_column: str = field(default="label", metadata={"help": "The column with the class or regression target."})
    labels: Optional[list[str]] = field(default=None, metadata={
        "help": "The classes in a fixed order; None: ClassLabel names, else the sorted distinct values."})
    metrics: Optional[list[str]] = field(default=None, metadata={
        "help": f"Metrics to report, the first choosing checkpoints; accepted: {', '.join(METRICS)}."})
    dev_split: Optional[str] = field(default=None, metadata={
        "help": "An existing split to use as dev instead of a fraction of train."})
    dev_fraction: float = field(default=0.1, metadata={
        "help": "Share of train held out (seeded, stratified) as the dev split."})
    test_fraction: Optional[float] = field(default=None, metadata={
        "help": "Share of train held out as test when the data has no labelled validation or test split (None: 0.1)."})
    split_seed: int = field(default=42, metadata={"help": "Seed of every random choice of rows."})
    max_length: int = field(default=128, metadata={"help": "Tokens per example after truncation."})
    max_train_samples: Optional[int] = field(default=None, metadata={
        "help": "A seeded subset of the train split, taken after splitting."})
    max_eval_samples: Optional[int] = field(default=None, metadata={
        "help": "A seeded subset of the dev and test splits, taken after splitting."})

    def __post_init__(self):
        for name in ("glue_dir", "dataset_name", "dataset_config_name", "dataset_revision", *_FILE_KEYS, "dev_split"):
            _optional_text(self, name)
        if not isinstance(self.label_column, str) or not self.label_column.strip():
            raise RecipeError(f"data.label_column: expected a column name, got {self.label_column!r}")
        self.text_columns = _text_columns(self.text_columns)
        self.labels = _labels(self.labels)
        self.metrics = _metrics(self.metrics)
        _fraction(self, "dev_fraction", optional=False)
        _fraction(self, "test_fraction", optional=True)
        if self.test_fraction is not None and self.dev_fraction + self.test_fraction >= 1:
            raise RecipeError(f"data.test_fraction: dev_fraction + test_fraction must stay below 1 so that training "
                              f"keeps examples, got {self.dev_fraction:g} + {self.test_fraction:g}")
        _integer(self, "split_seed", low=0)
        _integer(self, "max_length", low=8, high=4096)
        _integer(self, "max_train_samples", low=1, optional=True)
        _integer(self, "max_eval_samples", low=1, optional=True)
        self._check_sources()

    def _check_sources(self) -> None:
        files = [key for key in _FILE_KEYS if getattr(self, key) is not None]
        if self.dataset_name is not None and files:
            raise RecipeError(f"data.dataset_name: set together with data.{files[0]}; give one of them (a dataset "
                              f"id or folder, or local files)")
        if self.glue_dir is not None and (self.dataset_name is not None or files):
            other = "dataset_name" if self.dataset_name is not None else files[0]
            raise RecipeError(f"data.glue_dir: set together with data.{other}; glue_dir is for GLUE tasks only, "
                              f"{other} for text-classification and regression")
        if files and self.train_file is None:
            raise RecipeError(f"data.{files[0]}: needs data.train_file (the training examples) as well")
        for key in ("dataset_config_name", "dataset_revision"):
            if getattr(self, key) is not None and self.dataset_name is None:
                raise RecipeError(f"data.{key}: only with data.dataset_name (a Hub dataset)")
        suffixes = {}
        for key in files:
            suffix = _suffix(getattr(self, key))
            if suffix not in FILE_FORMATS:
                raise RecipeError(f"data.{key}: {getattr(self, key)!r} has no known file type; accepted: "
                                  f"{', '.join(FILE_FORMATS)}")
            suffixes[key] = suffix
        kinds = {FILE_FORMATS[s] for s in suffixes.values()}
        if len(kinds) > 1:
            given = ", ".join(f"{key} {suffix}" for key, suffix in suffixes.items())
            raise RecipeError(f"data.validation_file: files must share one format ({given})")
        if self.dev_split == "train":
            raise RecipeError("data.dev_split: 'train' is the training split; name another split (e.g. validation), "
                              "or leave dev_split unset to hold out dev_fraction of train")

    def check_task(self, task: str) -> None:
        """Checks that need the recipe's `task`: GLUE fixes its own data; the general tasks need a source."""
        if is_glue_task(task):
            given = [key for key in _OWN_DATA_KEYS if getattr(self, key) is not None]
            if self.label_column != "label":
                given.append("label_column")
            if given:
                raise RecipeError(f"data.{given[0]}: GLUE task {task!r} fixes its own data, columns and metrics (set "
                                  f"only data.glue_dir, or nothing for the Hub); for other data use task: "
                                  f"{' or '.join(GENERAL_TASKS)}")
            return
        if task not in GENERAL_TASKS:
            raise RecipeError(f"task: expected one of {', '.join([*GLUE_TASKS, *GENERAL_TASKS])}, got {task!r}")
        if self.glue_dir is not None:
            raise RecipeError(f"data.glue_dir: only for GLUE tasks; task {task} reads data.dataset_name or "
                              f"data.train_file")
        if self.dataset_name is None and self.train_file is None:
            raise RecipeError(f"data.dataset_name: task {task} needs data; set data.dataset_name (a Hub dataset id or "
                              f"a local folder) or data.train_file (a local file)")
        if self.metrics is not None:
            regression = task == REGRESSION
            wrong = [name for name in self.metrics if METRICS[name].regression != regression]
            if wrong:
                kind = "regression" if regression else "classification"
                accepted = [name for name, metric in METRICS.items() if metric.regression == regression]
                raise RecipeError(f"data.metrics: {', '.join(wrong)} do not apply to {kind}; accepted: "
                                  f"{', '.join(accepted)}")
        if task == REGRESSION and self.labels is not None:
            raise RecipeError("data.labels: class names do not apply to task regression (its targets are numbers)")

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


def _suffix(path: str) -> str:
    name = path.rsplit("/", 1)[-1].lower()
    return "." + name.rsplit(".", 1)[-1] if "." in name else ""


def _optional_text(args: DataArguments, name: str) -> None:
    value = getattr(args, name)
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise RecipeError(f"data.{name}: expected a non-empty string or null, got {value!r}")


def _as_list(name: str, value) -> list | None:
    if value is None:
        return None
    if isinstance(value, str):  # `text_columns: text` means the one column
        return [value]
    if not isinstance(value, (list, tuple)):
        raise RecipeError(f"data.{name}: expected a list, got {value!r}")
    return list(value)


def _text_columns(value) -> list[str] | None:
    columns = _as_list("text_columns", value)
    if columns is None:
        return None
    if not columns or not all(isinstance(c, str) and c.strip() for c in columns):
        raise RecipeError(f"data.text_columns: expected one or two column names, got {value!r}")
    if len(columns) > 2:
        raise RecipeError(f"data.text_columns: at most two columns (one text, or a pair of texts), got "
                          f"{len(columns)}: {', '.join(columns)}")
    if len(set(columns)) != len(columns):
        raise RecipeError(f"data.text_columns: the same column twice ({columns[0]}); a pair needs two columns")
    return columns


def _labels(value) -> list[str] | None:
    labels = _as_list("labels", value)
    if labels is None:
        return None
    if any(isinstance(label, bool) or not isinstance(label, (str, int)) for label in labels):
        raise RecipeError(f"data.labels: expected class names (strings or integers), got {value!r}")
    labels = [str(label) for label in labels]  # YAML reads `labels: [1, 2]` as integers
    if len(labels) < 2 or any(not label.strip() for label in labels):
        raise RecipeError(f"data.labels: expected at least two non-empty class names, got {value!r}")
    twice = sorted({label for label in labels if labels.count(label) > 1})
    if twice:
        raise RecipeError(f"data.labels: {', '.join(twice)} listed more than once")
    return labels


def _metrics(value) -> list[str] | None:
    names = _as_list("metrics", value)
    if names is None:
        return None
    if not names:
        raise RecipeError(f"data.metrics: expected at least one of {', '.join(METRICS)}, got an empty list")
    for name in names:
        if name not in METRICS:
            raise RecipeError(f"data.metrics: unknown metric {name!r}; accepted: {', '.join(METRICS)}")
    if len(set(names)) != len(names):
        raise RecipeError(f"data.metrics: a metric listed twice in {', '.join(names)}")
    return names


def _fraction(args: DataArguments, name: str, optional: bool) -> None:
    value = getattr(args, name)
    if value is None and optional:
        return
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) and 0 < value < 1
    if not ok:
        raise RecipeError(f"data.{name}: expected a number strictly between 0 and 1"
                          f"{' or null' if optional else ''}, got {value!r}")
    setattr(args, name, float(value))


def _integer(args: DataArguments, name: str, low: int, high: int | None = None, optional: bool = False) -> None:
    value = getattr(args, name)
    if value is None and optional:
        return
    ok = not isinstance(value, bool) and isinstance(value, int) and value >= low and (high is None or value <= high)
    if not ok:
        accepted = f"an integer in [{low}, {high}]" if high is not None else f"an integer >= {low}"
        raise RecipeError(f"data.{name}: expected {accepted}{' or null' if optional else ''}, got {value!r}")
