"""GLUE metrics in plain numpy, so training and evaluation need neither scikit-learn, SciPy nor the Hub.

The formulas match scikit-learn (`accuracy_score`, binary `f1_score`, `matthews_corrcoef`) and SciPy (`pearsonr`,
`spearmanr` with average ranks for ties); the tests check that. One deliberate difference: where those libraries
return NaN or warn because a correlation is undefined (constant predictions or constant references, which happens with
a collapsed model early in training), these return 0.0. A NaN would break "pick the best checkpoint" comparisons and
JSON reports, and "no correlation" is the honest reading of a constant predictor.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..data.tasks import get_task

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


def _pair(predictions, references, dtype) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(predictions, dtype=dtype).reshape(-1)
    ref = np.asarray(references, dtype=dtype).reshape(-1)
    if pred.shape != ref.shape:
        raise ValueError(f"{pred.size} predictions but {ref.size} references")
    if pred.size == 0:
        raise ValueError("cannot compute a metric on zero examples")
    return pred, ref


def accuracy(predictions, references) -> float:
    """Fraction of exact matches."""
    pred, ref = _pair(predictions, references, np.int64)
    return float(np.mean(pred == ref))


def binary_f1(predictions, references, positive: int = 1) -> float:
    """F1 of the positive class; 0.0 when there are neither predicted nor true positives (scikit-learn's default)."""
    pred, ref = _pair(predictions, references, np.int64)
    tp = np.sum((pred == positive) & (ref == positive))
    fp = np.sum((pred == positive) & (ref != positive))
    fn = np.sum((pred != positive) & (ref == positive))
    denominator = 2 * tp + fp + fn
    return float(2 * tp / denominator) if denominator else 0.0


def matthews_correlation(predictions, references) -> float:
    """Matthews correlation (multi-class form, which equals the binary phi coefficient); 0.0 when undefined."""
    pred, ref = _pair(predictions, references, np.int64)
    classes, codes = np.unique(np.concatenate([ref, pred]), return_inverse=True)
    k = len(classes)
    confusion = np.zeros((k, k), dtype=np.float64)
    np.add.at(confusion, (codes[: ref.size], codes[ref.size:]), 1.0)
    true_totals = confusion.sum(axis=1)
    pred_totals = confusion.sum(axis=0)
    correct = np.trace(confusion)
    n = confusion.sum()
    cov_true_pred = correct * n - true_totals @ pred_totals
    cov_pred_pred = n * n - pred_totals @ pred_totals
    cov_true_true = n * n - true_totals @ true_totals
    if cov_pred_pred == 0 or cov_true_true == 0:
        return 0.0
    return float(np.clip(cov_true_pred / np.sqrt(cov_true_true * cov_pred_pred), -1.0, 1.0))


def _correlation(x: np.ndarray, y: np.ndarray) -> float:
    x = x - x.mean()
    y = y - y.mean()
    scale = np.sqrt((x @ x) * (y @ y))
    if not np.isfinite(scale) or scale == 0:
        return 0.0
    return float(np.clip((x @ y) / scale, -1.0, 1.0))


def pearson(predictions, references) -> float:
    """Pearson's r; 0.0 when either side is constant (SciPy returns NaN there)."""
    pred, ref = _pair(predictions, references, np.float64)
    return _correlation(pred, ref)


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks where tied values share the mean of the ranks they span (SciPy's `rankdata(method="average")`)."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], values.size]  # exclusive
    group_rank = (starts + ends + 1) / 2.0  # mean of 1-based ranks starts+1 .. ends
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = np.repeat(group_rank, ends - starts)
    return ranks


def spearman(predictions, references) -> float:
    """Spearman's rho: Pearson's r of average ranks; 0.0 when either side is constant."""
    pred, ref = _pair(predictions, references, np.float64)
    return _correlation(_average_ranks(pred), _average_ranks(ref))


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


def main_metric(task: str) -> str:
    """The `glue_metrics` key to maximise when choosing the best checkpoint on the dev split."""
    name = get_task(task).name
    return {"cola": "matthews_correlation", "stsb": "pearson", "mrpc": "combined", "qqp": "combined"}.get(
        name, "accuracy")


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


def compute_metrics_fn(task: str) -> Callable[[Any], dict[str, float]]:
    """A `Trainer(compute_metrics=...)` callback: logits -> argmax (or the single regression output) -> glue_metrics."""
    spec = get_task(task)

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
        return glue_metrics(spec.name, predictions, references)

    return compute
