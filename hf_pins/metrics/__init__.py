"""Task metrics: numpy formulas, GLUE's conventions, a Trainer callback and an offline `evaluate` module."""

from __future__ import annotations

from pathlib import Path

from .compute import compute_metrics_fn, greater_is_better, main_metric, task_metrics
from .formulas import (
    METRICS,
    accuracy,
    binary_f1,
    f1_macro,
    f1_micro,
    matthews_correlation,
    mean_squared_error,
    pearson,
    precision_macro,
    recall_macro,
    spearman,
)
from .glue import glue_metrics, glue_score_percent

__all__ = [
    "METRICS",
    "accuracy",
    "binary_f1",
    "compute_metrics_fn",
    "f1_macro",
    "f1_micro",
    "glue_metrics",
    "glue_score_percent",
    "greater_is_better",
    "load_glue_metric",
    "main_metric",
    "matthews_correlation",
    "mean_squared_error",
    "pearson",
    "precision_macro",
    "recall_macro",
    "spearman",
    "task_metrics",
    "GLUE_METRIC_DIR",
]

# The evaluate module ships inside the package (package data `metrics/glue_offline/*.py`).
GLUE_METRIC_DIR = Path(__file__).resolve().parent / "glue_offline"


def load_glue_metric(task: str, **kwargs):
    """`evaluate.load` the offline GLUE metric for `task`; works with HF_HUB_OFFLINE=1 because the path is local.

    Results stay in memory by default (`keep_in_memory=True`) so evaluation writes no cache files.
    """
    import evaluate

    from ..data.tasks import get_task

    spec = get_task(task)  # a DataError naming the accepted tasks, rather than evaluate's KeyError
    kwargs.setdefault("keep_in_memory", True)
    return evaluate.load(str(GLUE_METRIC_DIR), config_name=spec.name, **kwargs)
