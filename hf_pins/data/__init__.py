"""The data stage: task definitions, reading and checking a task's data, train/dev/test splits and tokenization.

`prepare_data(task, DataArguments(...))` serves every task (the nine GLUE tasks, `text-classification`, `regression`);
`tokenize` then encodes its splits. `load_glue_splits` / `tokenize_splits` are the GLUE case of the same.
"""

from .arguments import DataArguments
from .glue import GlueSplits, load_glue_splits, tokenize_splits
from .prepare import TaskData, align_labels, model_label_names, prepare_data, tokenize
from .tasks import GENERAL_TASKS, GLUE_TASKS, REGRESSION, TEXT_CLASSIFICATION, TaskSpec, get_task, is_glue_task

__all__ = [
    "GENERAL_TASKS",
    "GLUE_TASKS",
    "REGRESSION",
    "TEXT_CLASSIFICATION",
    "DataArguments",
    "GlueSplits",
    "TaskData",
    "TaskSpec",
    "align_labels",
    "get_task",
    "is_glue_task",
    "load_glue_splits",
    "model_label_names",
    "prepare_data",
    "tokenize",
    "tokenize_splits",
]
