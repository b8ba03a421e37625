"""GLUE's conventions: which metrics each task reports and its leaderboard number (formulas in `formulas.py`)."""

from __future__ import annotations

from ..data.tasks import get_task
from .compute import compute_metrics_fn, main_metric  # noqa: F401  (their home before other tasks existed)
from .formulas import accuracy, binary_f1, matthews_correlation, pearson, spearman

__all__ = [
    "accuracy",
    "binary_f1",
    "matthews_correlation",
    "pearson",
    "spearman",
    "glue_metrics",
    "main_metric",
    "glue_score_percent",
    "compute_metrics_fn",
]


def glue_metrics(task: str, predictions, references) -> dict[str, float]:
    """GLUE's metrics for `task`; mrpc and qqp also get `combined` (mean of accuracy and F1), their selection metric.

    Classification predictions are class ids (take the argmax of logits first); STS-B predictions are scores.
    """
    spec = get_task(task)
    if spec.is_regression:
        return {"pearson": pearson(predictions, references), "spearmanr": spearman(predictions, references)}
    if spec.name == "cola":
        return {"matthews_correlation": matthews_correlation(predictions, references)}
    if spec.name in ("mrpc", "qqp"):
        acc = accuracy(predictions, references)
        f1 = binary_f1(predictions, references)
        return {"accuracy": acc, "f1": f1, "combined": (acc + f1) / 2.0}
    return {"accuracy": accuracy(predictions, references)}


def glue_score_percent(task: str, metrics: dict[str, float]) -> float:
    """The task's number in GLUE-leaderboard convention, in percent (mrpc/qqp: mean of F1 and accuracy).

    Accepts `glue_metrics` output, also with the Trainer's `eval_`/`test_` prefixes on the keys.
    """
    name = get_task(task).name

    def get(key: str) -> float:
        if key in metrics:
            return float(metrics[key])
        for candidate, value in metrics.items():
            if candidate == key or candidate.endswith("_" + key):
                return float(value)
        raise KeyError(f"metrics for {name} lack {key!r} (got {', '.join(metrics)})")

    if name == "stsb":
        score = get("pearson")
    elif name == "cola":
        score = get("matthews_correlation")
    elif name in ("mrpc", "qqp"):
        score = (get("f1") + get("accuracy")) / 2.0
    else:
        score = get("accuracy")
    return 100.0 * score
