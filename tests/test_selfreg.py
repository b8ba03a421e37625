"""Self-regularization: the loss for classification and regression, and the teacher refreshed only on improvement."""

import math

import pytest
import torch

from conftest import make_trainer, tiny_bert
from hf_pins.selfreg import SelfRegularizer, self_regularized_loss


def _softmax(xs):
    exps = [math.exp(x) for x in xs]
    return [e / sum(exps) for e in exps]


def test_classification_loss_with_constant_weight_by_hand():
    student, teacher, label, T = [2.0, 0.0], [0.0, 1.0], 0, 2.0
    task = -math.log(_softmax(student)[label])
    soft_teacher = _softmax([t / T for t in teacher])
    log_student = [math.log(p) for p in _softmax([s / T for s in student])]
    kd = -sum(p * lq for p, lq in zip(soft_teacher, log_student)) * T**2
    expected = 0.3 * kd + 0.7 * task
    loss = self_regularized_loss(torch.tensor([student]), torch.tensor([label]), torch.tensor([teacher]),
                                 is_regression=False, weighting="constant", alpha=0.3, temperature=T)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_classification_loss_with_entropy_weight_by_hand():
    student, teacher, label, T = [2.0, 0.0], [0.0, 1.0], 0, 2.0
    p = _softmax(student)
    weight = 1 - (-sum(q * math.log(q) for q in p)) / math.log(2)
    task = -math.log(p[label])
    soft_teacher = _softmax([t / T for t in teacher])
    log_student = [math.log(q) for q in _softmax([s / T for s in student])]
    kd = -sum(a * b for a, b in zip(soft_teacher, log_student)) * T**2
    expected = weight * kd + (1 - weight) * task
    loss = self_regularized_loss(torch.tensor([student]), torch.tensor([label]), torch.tensor([teacher]),
                                 is_regression=False, weighting="entropy", temperature=T)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    # A uniform (maximally unsure) student ignores the teacher: weight 0, pure task loss.
    uniform = self_regularized_loss(torch.tensor([[1.0, 1.0]]), torch.tensor([0]), torch.tensor([[5.0, -5.0]]),
                                    is_regression=False, weighting="entropy", temperature=T)
    assert uniform.item() == pytest.approx(math.log(2), rel=1e-6)


def test_regression_loss_pulls_towards_teacher_prediction():
    # prediction 1, label 2, teacher 1.5: alpha * (1 - 1.5)^2 + (1 - alpha) * (1 - 2)^2
    loss = self_regularized_loss(torch.tensor([[1.0]]), torch.tensor([2.0]), torch.tensor([[1.5]]),
                                 is_regression=True, weighting="entropy", alpha=0.4)
    assert loss.item() == pytest.approx(0.4 * 0.25 + 0.6 * 1.0)


def test_teacher_is_refreshed_only_when_the_dev_metric_improves():
    regularizer = SelfRegularizer(greater_is_better=True)
    student = tiny_bert()
    assert regularizer.maybe_refresh(student, 0.5, step=10)
    first = {k: v.clone() for k, v in regularizer.teacher.state_dict().items()}
    with torch.no_grad():
        for p in student.parameters():
            p.add_(1.0)
    assert not regularizer.maybe_refresh(student, 0.4, step=20)  # worse: the teacher keeps the old weights
    assert not regularizer.maybe_refresh(student, 0.5, step=30)  # equal is no improvement
    assert all(torch.equal(first[k], v) for k, v in regularizer.teacher.state_dict().items())
    assert regularizer.maybe_refresh(student, 0.6, step=40)
    assert all(torch.equal(student.state_dict()[k], v) for k, v in regularizer.teacher.state_dict().items())
    assert [r["step"] for r in regularizer.refreshes] == [10, 40]
    assert not regularizer.teacher.training
    assert not any(p.requires_grad for p in regularizer.teacher.parameters())


def test_lower_is_better_metrics():
    regularizer = SelfRegularizer(greater_is_better=False)
    assert regularizer.maybe_refresh(tiny_bert(), 1.0, 1)
    assert not regularizer.maybe_refresh(tiny_bert(), 2.0, 2)
    assert regularizer.maybe_refresh(tiny_bert(), 0.5, 3)


def test_trainer_refreshes_teacher_on_dev_improvements_and_distils(tmp_path):
    trainer = make_trainer(tmp_path)
    trainer.train()
    refreshes = trainer.selfreg.refreshes
    metrics = [e["dev_metric"] for e in trainer.evaluations]
    assert refreshes and refreshes[0]["step"] == trainer.evaluations[0]["step"]
    best = float("-inf")
    expected = []
    for e in trainer.evaluations:
        if e["dev_metric"] > best:
            best = e["dev_metric"]
            expected.append(e["step"])
    assert [r["step"] for r in refreshes] == expected and len(metrics) >= len(expected)


def test_trainer_regression_task_trains_with_self_regularization(tmp_path):
    from conftest import token_dataset

    trainer = make_trainer(
        tmp_path, model=tiny_bert(num_labels=1), train=token_dataset(64, num_labels=1),
        dev=token_dataset(32, num_labels=1, seed=1), metric_for_best_model="loss", greater_is_better=False,
    )
    trainer.compute_metrics = None
    trainer.train()
    assert trainer.is_regression and trainer.selfreg.refreshes
    assert trainer.sparsity_report()["overall"] == pytest.approx(0.8, abs=1e-3)


def test_training_loss_includes_the_teacher_term(tmp_path):
    from conftest import pad_collate, token_dataset

    trainer = make_trainer(tmp_path)
    trainer.train()
    model = trainer.model
    batch = pad_collate([token_dataset(8, seed=5)[i] for i in range(8)])
    model.train()  # the loss path is chosen by model.training; dropout off for a deterministic comparison
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    with torch.no_grad():
        with_teacher = trainer.compute_loss(model, dict(batch)).item()
        teacher = trainer.selfreg.teacher
        trainer.selfreg.teacher = None
        plain = trainer.compute_loss(model, dict(batch)).item()
        trainer.selfreg.teacher = teacher
    assert with_teacher != pytest.approx(plain)
    assert make_trainer(tmp_path / "off", self_regularization=False).selfreg is None


def test_teacher_can_be_held_in_bfloat16_and_gives_float32_logits():
    from conftest import pad_collate, token_dataset

    regularizer = SelfRegularizer(dtype=torch.bfloat16)
    student = tiny_bert()
    regularizer.maybe_refresh(student, 0.5, step=1)
    assert all(p.dtype == torch.bfloat16 for p in regularizer.teacher.parameters())
    batch = pad_collate([token_dataset(4)[i] for i in range(4)])
    logits = regularizer.teacher_logits({k: v for k, v in batch.items() if k != "labels"})
    assert logits.dtype == torch.float32
    student.eval()
    with torch.no_grad():
        reference = student(**{k: v for k, v in batch.items() if k != "labels"}).logits
    torch.testing.assert_close(logits, reference, atol=0.05, rtol=0.05)
    restored = SelfRegularizer(dtype=torch.bfloat16)
    restored.load_state_dict(regularizer.state_dict(), student)
    assert all(torch.equal(a, b) for a, b in zip(restored.teacher.state_dict().values(),
                                                 regularizer.teacher.state_dict().values()))
