"""What a task is: which columns hold text, which labels exist and in what order, which metrics judge it.

A recipe's `task` is one of the nine GLUE tasks (fixed columns, labels and metrics), or `text-classification` /
`regression` on the user's own data, whose spec `hf_pins.data.prepare` derives from the data. GLUE column names and
label order follow the Hub's `nyu-mll/glue` features, so a model trained from the classic `glue_data/` TSV files and one
trained from the Hub agree on what class id 0 means.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import DataError

TEXT_CLASSIFICATION = "text-classification"
REGRESSION = "regression"
GENERAL_TASKS = (TEXT_CLASSIFICATION, REGRESSION)


@dataclass(frozen=True)
class TaskSpec:
    """Everything the loaders, the metrics and the model head need to know about one task.

    `metrics` are the names the evaluation reports, the first one choosing checkpoints. For GLUE, `hub_config` and
    `local_dir` say where its data lives, and `test_splits` maps our test split names to the Hub split that plays that
    role: GLUE keeps its test labels private, so (as in the PINS paper) the original validation set is the test set.
    Local files are named after the Hub split (`validation` -> `dev.tsv`, `validation_matched` -> `dev_matched.tsv`).
    """

    name: str
    text_keys: tuple[str, ...]
    label_names: tuple[str, ...] | None
    is_regression: bool
    hub_config: str | None = None
    local_dir: str | None = None
    # A dict is unhashable; leave it out of the hash so a frozen TaskSpec can still be a dict key.
    test_splits: dict[str, str] = field(default_factory=lambda: {"test": "validation"}, hash=False)
    metrics: tuple[str, ...] = ()

    @property
    def num_labels(self) -> int:
        """Size of the classification head: one output for regression tasks (STS-B)."""
        return 1 if self.is_regression else len(self.label_names or ())

    @property
    def main_metric(self) -> str:
        """The metric that chooses checkpoints and teacher refreshes: the first one."""
        return self.metrics[0]

    @property
    def is_glue(self) -> bool:
        """One of the nine GLUE tasks, evaluated with GLUE's own conventions (`hf_pins.metrics.glue`)."""
        return GLUE_TASKS.get(self.name) == self


# GLUE's metrics per task, the selection metric first (mrpc/qqp: `combined`, the mean of accuracy and F1).
_GLUE_METRICS = {"cola": ("matthews_correlation",), "mrpc": ("combined", "accuracy", "f1"),
                 "qqp": ("combined", "accuracy", "f1"), "stsb": ("pearson", "spearmanr")}


def _classification(name: str, text_keys: tuple[str, ...], label_names: tuple[str, ...], local_dir: str,
                    test_splits: dict[str, str] | None = None) -> TaskSpec:
    return TaskSpec(name=name, text_keys=text_keys, label_names=label_names, is_regression=False, hub_config=name,
                    local_dir=local_dir, test_splits=test_splits or {"test": "validation"},
                    metrics=_GLUE_METRICS.get(name, ("accuracy",)))


GLUE_TASKS: dict[str, TaskSpec] = {
    "cola": _classification("cola", ("sentence",), ("unacceptable", "acceptable"), "CoLA"),
    "sst2": _classification("sst2", ("sentence",), ("negative", "positive"), "SST-2"),
    "mrpc": _classification("mrpc", ("sentence1", "sentence2"), ("not_equivalent", "equivalent"), "MRPC"),
    "qqp": _classification("qqp", ("question1", "question2"), ("not_duplicate", "duplicate"), "QQP"),
    "stsb": TaskSpec(name="stsb", text_keys=("sentence1", "sentence2"), label_names=None, is_regression=True,
                     hub_config="stsb", local_dir="STS-B", test_splits={"test": "validation"},
                     metrics=_GLUE_METRICS["stsb"]),
    "mnli": _classification("mnli", ("premise", "hypothesis"), ("entailment", "neutral", "contradiction"), "MNLI",
                            {"test_matched": "validation_matched", "test_mismatched": "validation_mismatched"}),
    "qnli": _classification("qnli", ("question", "sentence"), ("entailment", "not_entailment"), "QNLI"),
    "rte": _classification("rte", ("sentence1", "sentence2"), ("entailment", "not_entailment"), "RTE"),
    "wnli": _classification("wnli", ("sentence1", "sentence2"), ("not_entailment", "entailment"), "WNLI"),
}


def _glue_key(name: str) -> str:
    return str(name).strip().lower().replace("-", "").replace("_", "")


def is_glue_task(name: str) -> bool:
    """Whether a recipe's `task` names a GLUE task (in any spelling `get_task` accepts)."""
    return _glue_key(name) in GLUE_TASKS


def get_task(name: str) -> TaskSpec:
    """Look a GLUE task up by name; case and `-`/`_` are forgiven (`SST-2`, `sts_b`) because users copy folder names."""
    key = _glue_key(name)
    spec = GLUE_TASKS.get(key)
    if spec is None:
        raise DataError(f"unknown GLUE task {name!r}; accepted tasks: {', '.join(GLUE_TASKS)}")
    return spec
