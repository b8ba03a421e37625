"""Every metric a recipe can name, in plain numpy, so training and evaluation need neither scikit-learn, SciPy nor the
Hub (numpy is already a dependency of torch, transformers and datasets; scikit-learn and SciPy would add about 150 MB
to the install for a few lines of arithmetic).

The formulas match scikit-learn (`accuracy_score`, `f1_score`, `precision_score`, `recall_score`, `matthews_corrcoef`,
`mean_squared_error`) and SciPy (`pearsonr`, `spearmanr` with average ranks for ties); the tests check that. One
deliberate difference: where those libraries return NaN or warn because a value is undefined (constant predictions or
references, which happens with a collapsed model early in training), these return 0.0. A NaN would break "pick the best
checkpoint" comparisons and JSON reports, and "no correlation" is the honest reading of a constant predictor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = [
    "METRICS",
    "Metric",
    "accuracy",
    "binary_f1",
    "f1_macro",
    "f1_micro",
    "matthews_correlation",
    "mean_squared_error",
    "metric_values",
    "pearson",
    "precision_macro",
    "recall_macro",
    "spearman",
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


def _per_class_counts(predictions, references) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True positives, predicted and true counts per class, over the classes seen in either (scikit-learn's labels)."""
    pred, ref = _pair(predictions, references, np.int64)
    classes = np.unique(np.concatenate([ref, pred]))
    tp = np.array([np.sum((pred == c) & (ref == c)) for c in classes], dtype=np.float64)
    predicted = np.array([np.sum(pred == c) for c in classes], dtype=np.float64)
    actual = np.array([np.sum(ref == c) for c in classes], dtype=np.float64)
    return tp, predicted, actual


def _safe_ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0.0 where the denominator is 0 (scikit-learn's `zero_division=0`)."""
    out = np.zeros_like(numerator)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def precision_macro(predictions, references) -> float:
    """Unweighted mean over classes of the precision; a class never predicted counts 0.0."""
    tp, predicted, _ = _per_class_counts(predictions, references)
    return float(np.mean(_safe_ratio(tp, predicted)))


def recall_macro(predictions, references) -> float:
    """Unweighted mean over classes of the recall (balanced accuracy over the classes that occur)."""
    tp, _, actual = _per_class_counts(predictions, references)
    return float(np.mean(_safe_ratio(tp, actual)))


def f1_macro(predictions, references) -> float:
    """Unweighted mean over classes of F1 = 2 tp / (predicted + actual): every class weighs the same, however rare."""
    tp, predicted, actual = _per_class_counts(predictions, references)
    return float(np.mean(_safe_ratio(2 * tp, predicted + actual)))


def f1_micro(predictions, references) -> float:
    """F1 over all decisions pooled; for single-label classification it equals accuracy (kept for familiarity)."""
    tp, predicted, actual = _per_class_counts(predictions, references)
    denominator = predicted.sum() + actual.sum()
    return float(2 * tp.sum() / denominator) if denominator else 0.0


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


def mean_squared_error(predictions, references) -> float:
    """Mean of the squared differences (lower is better)."""
    pred, ref = _pair(predictions, references, np.float64)
    return float(np.mean((pred - ref) ** 2))


@dataclass(frozen=True)
class Metric:
    """A metric a recipe can name: its formula, the kind of task it applies to and which direction is better."""

    function: Callable[..., float]
    regression: bool
    greater_is_better: bool = True
    binary_only: bool = False


# Names as `evaluate` and run_glue.py report them (`spearmanr`, `matthews_correlation`), so logs read the same.
METRICS: dict[str, Metric] = {
    "accuracy": Metric(accuracy, regression=False),
    "f1": Metric(binary_f1, regression=False, binary_only=True),
    "f1_macro": Metric(f1_macro, regression=False),
    "f1_micro": Metric(f1_micro, regression=False),
    "precision_macro": Metric(precision_macro, regression=False),
    "recall_macro": Metric(recall_macro, regression=False),
    "matthews_correlation": Metric(matthews_correlation, regression=False),
    "pearson": Metric(pearson, regression=True),
    "spearmanr": Metric(spearman, regression=True),
    "mse": Metric(mean_squared_error, regression=True, greater_is_better=False),
}


def metric_values(names, predictions, references) -> dict[str, float]:
    """`{name: value}` for each named metric, in the order given."""
    return {name: METRICS[name].function(predictions, references) for name in names}
