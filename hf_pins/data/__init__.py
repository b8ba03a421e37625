"""GLUE data: task definitions, PINS-style train/dev/test splits and tokenization."""

from .glue import GlueSplits, load_glue_splits, tokenize_splits
from .tasks import GLUE_TASKS, TaskSpec, get_task

__all__ = ["GLUE_TASKS", "GlueSplits", "TaskSpec", "get_task", "load_glue_splits", "tokenize_splits"]
