"""What a task's evaluation reports: its metrics from predictions, the one that picks checkpoints, and the Trainer hook.

GLUE tasks keep GLUE's conventions (`glue.glue_metrics`, e.g. mrpc's `combined`); every other task reports the metrics
its spec names (`TaskSpec.metrics`, from the recipe's `data.metrics`), computed by `formulas.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..data.tasks import TaskSpec, get_task
from .formulas import METRICS, metric_values

__all__ = ["compute_metrics_fn", "greater_is_better", "main_metric", "task_metrics"]


def _spec(task: str | TaskSpec) -> TaskSpec:
    """A spec as is; a name must be a GLUE task (other tasks get their spec from their data)."""
    return task if isinstance(task, TaskSpec) else get_task(task)


def task_metrics(task: str | TaskSpec, predictions, references) -> dict[str, float]:
    """The task's metrics for class ids (take the argmax of logits first) or regression scores."""
    spec = _spec(task)
    if spec.is_glue:
        from .glue import glue_metrics  # glue.py re-exports this module's functions; importing it here avoids a cycle

        return glue_metrics(spec.name, predictions, references)
    return metric_values(spec.metrics, predictions, references)


def main_metric(task: str | TaskSpec) -> str:
    """The `task_metrics` key that chooses the best checkpoint on the dev split (and teacher refreshes)."""
    return _spec(task).main_metric


def greater_is_better(metric: str) -> bool:
    """Direction of a metric for `TrainingArguments.greater_is_better`: False only for errors such as `mse`."""
    known = METRICS.get(metric)
    return True if known is None else known.greater_is_better  # GLUE's `combined` is an accuracy-like score


def compute_metrics_fn(task: str | TaskSpec) -> Callable[[Any], dict[str, float]]:
    """A `Trainer(compute_metrics=...)` callback: logits -> argmax (or the single regression output) -> task_metrics."""
    spec = _spec(task)

    def compute(eval_prediction) -> dict[str, float]:
        if hasattr(eval_prediction, "predictions"):
            predictions, references = eval_prediction.predictions, eval_prediction.label_ids
        else:
            predictions, references = eval_prediction
        if isinstance(predictions, (tuple, list)):  # models that also return hidden states or attentions
            predictions = predictions[0]
        predictions = np.asarray(predictions)
        if spec.is_regression:
            if predictions.ndim > 1 and predictions.shape[-1] != 1:
                raise ValueError(f"{spec.name} is a regression task: expected one output per example, "
                                 f"got predictions of shape {predictions.shape}")
            predictions = predictions.reshape(-1)
        elif predictions.ndim > 1:
            predictions = predictions.argmax(axis=-1)
        return task_metrics(spec, predictions, references)

    return compute
