"""GLUE metrics agree with scikit-learn and SciPy, stay finite on degenerate input, and load offline via evaluate."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from hf_pins.data import GLUE_TASKS
from hf_pins.metrics import (
    compute_metrics_fn,
    glue_metrics,
    glue_score_percent,
    load_glue_metric,
    main_metric,
    matthews_correlation,
    spearman,
)


def reference_metrics(task: str, predictions, references) -> dict[str, float]:
    """What GLUE's official metrics (scikit-learn / SciPy) give."""
    if task == "stsb":
        return {"pearson": pearsonr(predictions, references)[0], "spearmanr": spearmanr(predictions, references)[0]}
    if task == "cola":
        return {"matthews_correlation": matthews_corrcoef(references, predictions)}
    if task in ("mrpc", "qqp"):
        acc, f1 = accuracy_score(references, predictions), f1_score(references, predictions)
        return {"accuracy": acc, "f1": f1, "combined": (acc + f1) / 2}
    return {"accuracy": accuracy_score(references, predictions)}


def random_inputs(task: str, rng: np.random.Generator, n: int):
    if task == "stsb":
        # Half-point grids make many ties, which is where rank averaging matters.
        return np.round(rng.uniform(0, 5, n) * 2) / 2, np.round(rng.uniform(0, 5, n) * 2) / 2
    k = GLUE_TASKS[task].num_labels
    references = rng.integers(0, k, n)
    noisy = rng.integers(0, k, n)
    return np.where(rng.random(n) < 0.6, references, noisy), references


@pytest.mark.parametrize("task", sorted(GLUE_TASKS))
def test_glue_metrics_match_sklearn_and_scipy(task):
    rng = np.random.default_rng(sorted(GLUE_TASKS).index(task))
    for n in (5, 37, 400):
        predictions, references = random_inputs(task, rng, n)
        ours = glue_metrics(task, predictions, references)
        expected = reference_metrics(task, predictions, references)
        assert ours == pytest.approx(expected, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)), min_size=2, max_size=40))
def test_mcc_matches_sklearn_multiclass(pairs):
    predictions, references = zip(*pairs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = matthews_corrcoef(references, predictions)
    assert matthews_correlation(predictions, references) == pytest.approx(expected, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), min_size=3, max_size=40))
def test_spearman_with_ties_matches_scipy(pairs):
    x, y = (np.asarray(v, dtype=float) for v in zip(*pairs))
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return  # undefined; covered by the degenerate-case test
    assert spearman(x, y) == pytest.approx(spearmanr(x, y)[0], abs=1e-12)


def test_degenerate_inputs_give_zero_not_nan():
    constant, varied = np.ones(6, dtype=int), np.array([0, 1, 0, 1, 1, 0])
    assert glue_metrics("cola", constant, varied) == {"matthews_correlation": 0.0}
    assert glue_metrics("stsb", np.full(6, 2.5), varied * 5.0) == {"pearson": 0.0, "spearmanr": 0.0}
    scores = glue_metrics("mrpc", np.zeros(6, dtype=int), np.zeros(6, dtype=int))  # no positives anywhere
    assert scores == {"accuracy": 1.0, "f1": 0.0, "combined": 0.5}
    assert all(math.isfinite(v) for v in scores.values())


def test_main_metric_and_glue_score():
    assert {task: main_metric(task) for task in GLUE_TASKS} == {
        "cola": "matthews_correlation", "sst2": "accuracy", "mrpc": "combined", "qqp": "combined",
        "stsb": "pearson", "mnli": "accuracy", "qnli": "accuracy", "rte": "accuracy", "wnli": "accuracy"}
    for task in GLUE_TASKS:
        predictions, references = random_inputs(task, np.random.default_rng(1), 50)
        assert main_metric(task) in glue_metrics(task, predictions, references)
    assert glue_score_percent("mrpc", {"eval_accuracy": 0.8, "eval_f1": 0.9}) == pytest.approx(85.0)
    assert glue_score_percent("stsb", {"pearson": 0.88, "spearmanr": 0.5}) == pytest.approx(88.0)
    assert glue_score_percent("cola", {"matthews_correlation": 0.5}) == pytest.approx(50.0)
    assert glue_score_percent("rte", {"accuracy": 0.625}) == pytest.approx(62.5)


def test_compute_metrics_fn_takes_trainer_predictions():
    from transformers import EvalPrediction

    logits = np.array([[2.0, -1.0], [0.1, 0.3], [-1.0, 1.0], [0.5, 0.4]])
    labels = np.array([0, 1, 0, 0])
    result = compute_metrics_fn("mrpc")(EvalPrediction(predictions=logits, label_ids=labels))
    assert result == pytest.approx(glue_metrics("mrpc", [0, 1, 1, 0], labels))
    mnli = compute_metrics_fn("mnli")(EvalPrediction(predictions=(np.eye(3)[[2, 0, 1]], None), label_ids=[2, 0, 0]))
    assert mnli == pytest.approx({"accuracy": 2 / 3})
    scores = np.array([[0.5], [2.0], [4.5], [3.0]], dtype=np.float32)
    stsb = compute_metrics_fn("stsb")(EvalPrediction(predictions=scores, label_ids=np.array([1.0, 2.0, 4.0, 4.0])))
    assert stsb == pytest.approx(glue_metrics("stsb", scores.ravel(), [1.0, 2.0, 4.0, 4.0]))


def test_evaluate_module_loads_offline_and_agrees(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    rng = np.random.default_rng(3)
    for task in sorted(GLUE_TASKS):
        predictions, references = random_inputs(task, rng, 64)
        if task == "stsb":  # the module's features are float32, as on the Hub
            predictions, references = predictions.astype(np.float32), references.astype(np.float32)
        result = load_glue_metric(task).compute(predictions=predictions, references=references)
        assert result == pytest.approx(glue_metrics(task, predictions, references), abs=1e-6)


# --------------------------------------------------------------------------------------------------------------------
# Every metric a recipe can name (data.metrics), against examples worked by hand and against scikit-learn / SciPy


def test_every_metric_on_a_hand_worked_example():
    from hf_pins.metrics import METRICS

    # Three classes: per class (tp, predicted, actual) = (2, 2, 3), (1, 2, 2), (1, 2, 1); 4 of 6 correct.
    predictions, references = [0, 1, 2, 2, 1, 0], [0, 1, 1, 2, 0, 0]
    by_hand = {
        "accuracy": 4 / 6,
        "precision_macro": (2 / 2 + 1 / 2 + 1 / 2) / 3,
        "recall_macro": (2 / 3 + 1 / 2 + 1 / 1) / 3,
        "f1_macro": (4 / 5 + 2 / 4 + 2 / 3) / 3,
        "f1_micro": 2 * 4 / (6 + 6),
        # n=6, correct=4, actual (3,2,1), predicted (2,2,2): (4*6 - 12) / sqrt((36 - 14) * (36 - 12))
        "matthews_correlation": 12 / math.sqrt(22 * 24),
    }
    for name, value in by_hand.items():
        assert METRICS[name].function(predictions, references) == pytest.approx(value, abs=1e-12), name
    assert METRICS["f1"].function([1, 0, 1, 1], [1, 1, 0, 1]) == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    assert METRICS["pearson"].function([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)
    # ranks (1.5, 1.5, 3) vs (1, 2, 3): centred (-.5, -.5, 1) . (-1, 0, 1) = 1.5 over sqrt(1.5 * 2)
    assert METRICS["spearmanr"].function([1, 1, 2], [1, 2, 3]) == pytest.approx(1.5 / math.sqrt(3))
    assert METRICS["mse"].function([1, 2, 3], [1, 3, 5]) == pytest.approx(5 / 3)
    assert set(METRICS) == {"accuracy", "f1", "f1_macro", "f1_micro", "precision_macro", "recall_macro",
                            "matthews_correlation", "pearson", "spearmanr", "mse"}


@pytest.mark.parametrize("k", [2, 4, 20])
def test_multiclass_metrics_match_sklearn(k):
    from sklearn.metrics import mean_squared_error as sk_mse
    from sklearn.metrics import precision_score, recall_score

    from hf_pins.metrics import f1_macro, f1_micro, mean_squared_error, precision_macro, recall_macro

    rng = np.random.default_rng(k)
    for n in (7, 50, 500):
        references = rng.integers(0, k, n)
        predictions = np.where(rng.random(n) < 0.5, references, rng.integers(0, k, n))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # classes never predicted: scikit-learn warns, both give 0
            expected = {
                "f1_macro": f1_score(references, predictions, average="macro", zero_division=0),
                "f1_micro": f1_score(references, predictions, average="micro", zero_division=0),
                "precision_macro": precision_score(references, predictions, average="macro", zero_division=0),
                "recall_macro": recall_score(references, predictions, average="macro", zero_division=0),
                "matthews_correlation": matthews_corrcoef(references, predictions),
            }
        ours = {"f1_macro": f1_macro(predictions, references), "f1_micro": f1_micro(predictions, references),
                "precision_macro": precision_macro(predictions, references),
                "recall_macro": recall_macro(predictions, references),
                "matthews_correlation": matthews_correlation(predictions, references)}
        assert ours == pytest.approx(expected, abs=1e-12)
        scores, targets = rng.normal(size=n), rng.normal(size=n)
        assert mean_squared_error(scores, targets) == pytest.approx(sk_mse(targets, scores), abs=1e-12)


def test_general_task_callback_and_directions():
    from transformers import EvalPrediction

    from hf_pins.data import TaskSpec
    from hf_pins.metrics import greater_is_better, task_metrics

    intents = TaskSpec(name="text-classification", text_keys=("text",), label_names=("a", "b", "c", "d"),
                       is_regression=False, metrics=("f1_macro", "accuracy"))
    logits = np.eye(4)[[0, 1, 2, 3, 3, 0]]
    labels = np.array([0, 1, 2, 3, 2, 1])
    result = compute_metrics_fn(intents)(EvalPrediction(predictions=logits, label_ids=labels))
    assert list(result) == ["f1_macro", "accuracy"] and main_metric(intents) == "f1_macro"
    assert result == pytest.approx(task_metrics(intents, [0, 1, 2, 3, 3, 0], labels))
    assert result["accuracy"] == pytest.approx(4 / 6)
    scores = TaskSpec(name="regression", text_keys=("text",), label_names=None, is_regression=True,
                      metrics=("mse", "pearson"))
    out = compute_metrics_fn(scores)((np.array([[1.0], [2.0], [3.0]]), np.array([1.0, 3.0, 5.0])))
    assert out["mse"] == pytest.approx(5 / 3) and main_metric(scores) == "mse"
    assert not greater_is_better("mse") and greater_is_better("f1_macro") and greater_is_better("combined")
    assert compute_metrics_fn(GLUE_TASKS["mrpc"]) is not None and main_metric(GLUE_TASKS["mrpc"]) == "combined"
