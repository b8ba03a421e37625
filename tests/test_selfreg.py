"""Self-regularization: the loss for classification and regression, and the teacher refreshed only on improvement."""

import math

import numpy as np
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


def test_entropy_if_correct_keeps_the_label_where_the_student_is_wrong():
    # Example 0: the student predicts its label 0 with p = (0.75, 0.25), so it keeps the entropy weight 0.1887.
    # Example 1: the student is confidently wrong (p = (0.982, 0.018), label 1): the code's weight would be 0.87,
    # the guard makes it 0 and the example's loss is its cross-entropy alone.
    T = 2.0
    student = torch.tensor([[math.log(3.0), 0.0], [4.0, 0.0]])
    labels, teacher = torch.tensor([0, 1]), torch.tensor([[1.0, 0.0], [3.0, 0.0]])
    per_example = []
    for row, (s, label, t) in enumerate(zip(student.tolist(), labels.tolist(), teacher.tolist())):
        p = _softmax(s)
        weight = (1 - (-sum(q * math.log(q) for q in p)) / math.log(2)) if row == 0 else 0.0
        soft_teacher = _softmax([x / T for x in t])
        log_student = [math.log(q) for q in _softmax([x / T for x in s])]
        kd = -sum(a * b for a, b in zip(soft_teacher, log_student)) * T**2
        per_example.append((weight * kd + (1 - weight) * -math.log(p[label]), weight))
    loss, weight = self_regularized_loss(student, labels, teacher, is_regression=False,
                                         weighting="entropy_if_correct", temperature=T, return_weight=True)
    assert loss.item() == pytest.approx(sum(l for l, _ in per_example) / 2, rel=1e-6)
    assert weight.item() == pytest.approx(0.188721 / 2, abs=1e-5)
    code_weight = self_regularized_loss(student, labels, teacher, is_regression=False, return_weight=True)[1]
    assert code_weight.item() > 0.5  # the reference code's weighting hands example 1 to the teacher


def test_mean_teacher_weight_by_hand():
    # p = (0.75, 0.25): H = -(0.75 ln 0.75 + 0.25 ln 0.25) = 0.5623, w = 1 - H / ln 2 = 0.1887; uniform: w = 0
    batch = (torch.tensor([[math.log(3.0), 0.0], [0.0, 0.0]]), torch.tensor([0, 1]),
             torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    loss, weight = self_regularized_loss(*batch, is_regression=False, weighting="entropy", return_weight=True)
    assert weight.item() == pytest.approx((1 - 0.562335 / math.log(2)) / 2, abs=1e-5)
    assert loss.item() == pytest.approx(self_regularized_loss(*batch, is_regression=False).item())


def test_evaluations_record_the_teacher_weight_since_the_previous_one(tmp_path):
    trainer = make_trainer(tmp_path, self_regularization_weighting="constant", self_regularization_alpha=0.3)
    trainer.train()
    weights = [e["teacher_weight"] for e in trainer.evaluations]
    assert weights[0] is None  # the first teacher is adopted at the first evaluation: nothing distilled before it
    assert len(weights) > 2 and all(w == pytest.approx(0.3) for w in weights[1:])
    entropy = make_trainer(tmp_path / "entropy")
    entropy.train()
    later = [e["teacher_weight"] for e in entropy.evaluations[1:]]
    assert all(0.0 <= w <= 1.0 for w in later) and len(set(later)) > 1
    plain = make_trainer(tmp_path / "plain", self_regularization=False)
    plain.train()
    assert [e["teacher_weight"] for e in plain.evaluations] == [None] * len(plain.evaluations)


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


def test_max_sparsity_gap_replaces_a_teacher_too_dense_for_the_student():
    # Gap 0.3: teacher adopted at sparsity 0.1 (score 0.6). At 0.35 (gap 0.25) a worse score keeps it; at 0.45
    # (gap 0.35 > 0.3) the student becomes the teacher whatever its score, and its 0.4 is the new bar, so 0.5 at
    # 0.5 (gap 0.05) improves on it. Unset (the paper's rule), the 0.6 teacher would have stayed throughout.
    regularizer = SelfRegularizer(greater_is_better=True, max_sparsity_gap=0.3)
    student = tiny_bert()
    assert regularizer.maybe_refresh(student, 0.6, step=10, sparsity=0.1)
    assert not regularizer.maybe_refresh(student, 0.5, step=20, sparsity=0.35)
    with torch.no_grad():
        for p in student.parameters():
            p.add_(1.0)
    assert regularizer.maybe_refresh(student, 0.4, step=30, sparsity=0.45)
    assert all(torch.equal(student.state_dict()[k], v) for k, v in regularizer.teacher.state_dict().items())
    assert regularizer.best_metric == 0.4 and regularizer.teacher_sparsity == 0.45
    assert regularizer.maybe_refresh(student, 0.5, step=40, sparsity=0.5)
    assert [(r["step"], r["reason"]) for r in regularizer.refreshes] == [
        (10, "improved"), (30, "sparsity_gap"), (40, "improved")]
    # Resumed from a checkpoint, the teacher's sparsity comes back with it.
    resumed = SelfRegularizer(greater_is_better=True, max_sparsity_gap=0.3)
    resumed.load_state_dict(regularizer.state_dict(), tiny_bert())
    assert resumed.teacher_sparsity == 0.5 and not resumed.too_dense(0.8) and resumed.too_dense(0.81)
    paper = SelfRegularizer(greater_is_better=True)
    assert paper.maybe_refresh(tiny_bert(), 0.6, step=10, sparsity=0.1)
    assert not paper.maybe_refresh(tiny_bert(), 0.4, step=30, sparsity=0.9)


def test_sparsity_gap_never_adopts_a_student_below_the_floor():
    # Floor 0.0 (a constant prediction's Matthews): the first teacher needs more; later, a gap refresh replaces a
    # teacher too dense for the student only with a student that also beats the floor.
    regularizer = SelfRegularizer(greater_is_better=True, max_sparsity_gap=0.1)
    regularizer.set_floor(0.0)
    student = tiny_bert()
    assert not regularizer.maybe_refresh(student, 0.0, step=10, sparsity=0.0)  # no teacher at the floor
    assert regularizer.maybe_refresh(student, 0.3, step=20, sparsity=0.1)
    assert not regularizer.maybe_refresh(student, 0.0, step=30, sparsity=0.5)  # too dense, but the student is trivial
    assert regularizer.teacher_sparsity == 0.1 and regularizer.best_metric == 0.3
    assert regularizer.maybe_refresh(student, 0.1, step=40, sparsity=0.5)  # too dense, student above the floor
    assert [(r["step"], r["reason"]) for r in regularizer.refreshes] == [(20, "improved"), (40, "sparsity_gap")]


def test_trainer_applies_the_max_sparsity_gap(tmp_path):
    trainer = make_trainer(tmp_path, experimental={"max_sparsity_gap": 0.0})
    trainer.train()
    # With gap 0 the teacher is never denser than the student at an evaluation: every evaluation during the ramp
    # (a new sparsity each time) makes the evaluated model the teacher.
    by_step = {e["step"]: e["sparsity"] for e in trainer.evaluations}
    sparsities = [r["sparsity"] for r in trainer.selfreg.refreshes]
    assert any(r["reason"] == "sparsity_gap" for r in trainer.selfreg.refreshes)
    assert all(by_step[r["step"]] == r["sparsity"] for r in trainer.selfreg.refreshes)
    for e in trainer.evaluations:
        teacher = max(r["sparsity"] for r in trainer.selfreg.refreshes if r["step"] <= e["step"])
        assert e["sparsity"] - teacher <= 1e-9
    assert sparsities == sorted(sparsities)
    refused = r"experimental.max_sparsity_gap: expected null or a number in \[0, 1\), got 1.0"
    with pytest.raises(ValueError, match=refused):
        make_trainer(tmp_path, experimental={"max_sparsity_gap": 1.0})
    with pytest.raises(ValueError, match="experimental.max_sparsity_gap: only used by self-regularization"):
        make_trainer(tmp_path, self_regularization=False, experimental={"max_sparsity_gap": 0.2})


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


def _regression_trainer(output_dir, **overrides):
    from conftest import token_dataset

    trainer = make_trainer(
        output_dir, model=tiny_bert(num_labels=1), train=token_dataset(64, num_labels=1),
        dev=token_dataset(32, num_labels=1, seed=1), metric_for_best_model="loss", greater_is_better=False, **overrides,
    )
    trainer.compute_metrics = None
    return trainer


def test_trainer_regression_task_trains_with_self_regularization_when_weighted(tmp_path):
    trainer = _regression_trainer(tmp_path, experimental={"regression_alpha": 0.4})
    assert trainer.self_regularizing
    trainer.train()
    assert trainer.is_regression and trainer.selfreg.refreshes
    assert trainer.sparsity_report()["overall"] == pytest.approx(0.8, abs=1e-3)


def test_regression_default_trains_exactly_as_without_self_regularization(tmp_path):
    """Regression's default teacher weight is 0: no teacher is kept, and the weights come out bit for bit as with
    self-regularization off (so the grid's `pins_no_selfreg` STS-B runs are PINS's STS-B runs)."""
    default = _regression_trainer(tmp_path / "default")
    assert default.args.self_regularization and not default.self_regularizing and default.selfreg is None
    default.train()
    off = _regression_trainer(tmp_path / "off", self_regularization=False)  # built after: the same random state
    off.train()
    trained, reference = default.model.state_dict(), off.model.state_dict()
    assert trained.keys() == reference.keys()
    assert all(torch.equal(trained[k], reference[k]) for k in trained)
    assert default.sparsity_report()["overall"] == pytest.approx(0.8, abs=1e-3)


def test_regression_teacher_weight_reaches_the_loss(tmp_path):
    """With a regression weight the loss mixes the squared errors with it (not with the classification alpha)."""
    from conftest import pad_collate

    trainer = _regression_trainer(tmp_path, experimental={"regression_alpha": 0.25}, self_regularization_alpha=0.9,
                                  self_regularization_teacher_dtype="float32")
    trainer.selfreg.maybe_refresh(trainer.model, 1.0, step=0)
    with torch.no_grad():
        trainer.selfreg.teacher.classifier.bias += 1.0  # a teacher that disagrees with the student
    batch = pad_collate([trainer.train_dataset[i] for i in range(4)])
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    trainer.model.train()
    torch.manual_seed(0)
    loss = trainer.compute_loss(trainer.model, dict(batch)).item()
    torch.manual_seed(0)  # the same dropout masks
    prediction = trainer.model(**inputs).logits.view(-1)
    teacher = trainer.selfreg.teacher_logits(inputs).view(-1)
    assert not torch.allclose(teacher, prediction)
    expected = (0.25 * (prediction - teacher) ** 2 + 0.75 * (prediction - batch["labels"].float()) ** 2).mean()
    assert loss == pytest.approx(expected.item(), rel=1e-5)


def test_regression_given_teacher_with_zero_weight_is_refused(tmp_path):
    with pytest.raises(ValueError, match="teacher_model: unused on a regression task"):
        _regression_trainer(tmp_path, teacher_model=tiny_bert(num_labels=1))


def _training_mode_without_dropout(model):
    """The loss path is chosen by `model.training`; dropout off for a deterministic comparison of two losses."""
    model.train()
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0


def test_training_loss_includes_the_teacher_term(tmp_path):
    from conftest import pad_collate, token_dataset

    trainer = make_trainer(tmp_path)
    trainer.train()
    model = trainer.model
    batch = pad_collate([token_dataset(8, seed=5)[i] for i in range(8)])
    _training_mode_without_dropout(model)
    with torch.no_grad():
        with_teacher = trainer.compute_loss(model, dict(batch)).item()
        teacher = trainer.selfreg.teacher
        trainer.selfreg.teacher = None
        plain = trainer.compute_loss(model, dict(batch)).item()
        trainer.selfreg.teacher = teacher
    assert with_teacher != pytest.approx(plain)
    assert make_trainer(tmp_path / "off", self_regularization=False).selfreg is None


def test_distillation_stops_at_the_target_when_asked(tmp_path):
    from conftest import pad_collate, token_dataset

    trainer = make_trainer(tmp_path, experimental={"distil_at_target": False})
    trainer.train()
    model = trainer.model
    batch = pad_collate([token_dataset(8, seed=5)[i] for i in range(8)])
    _training_mode_without_dropout(model)
    schedule = trainer.pruner.schedule
    assert trainer.selfreg.has_teacher and schedule.at_target(trainer.state.global_step)
    with torch.no_grad():
        at_target = trainer.compute_loss(model, dict(batch)).item()
        plain = super(type(trainer), trainer).compute_loss(model, dict(batch)).item()
        trainer.state.global_step = schedule.final_start - 1  # the last step of the ramp: still distilling
        before_target = trainer.compute_loss(model, dict(batch)).item()
    # Two forward passes of the same batch may differ in the sixth digit here; the teacher term moves the loss more.
    assert at_target == pytest.approx(plain, rel=1e-5)
    assert before_target != pytest.approx(plain, rel=1e-3)
    with pytest.raises(ValueError, match="experimental.distil_at_target: only used by self-regularization"):
        make_trainer(tmp_path / "off", self_regularization=False, experimental={"distil_at_target": False})


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


# -- a given first teacher (the extension: e.g. the dense fine-tuned model) ----------------------------------------
def test_given_teacher_stays_until_the_student_beats_its_dev_score():
    regularizer = SelfRegularizer(greater_is_better=True)
    given = tiny_bert(seed=7)
    regularizer.set_initial_teacher(given, "dense-model")
    assert regularizer.needs_initial_metric
    regularizer.set_initial_metric(0.7)
    assert regularizer.refreshes == [{"step": 0, "dev_metric": 0.7, "source": "dense-model"}]
    student = tiny_bert(seed=8)
    assert not regularizer.maybe_refresh(student, 0.6, step=10)
    assert regularizer.teacher is given and not given.training
    state = regularizer.state_dict()
    assert state["tensors"] == {} and state["meta"]["source"] == "dense-model"  # loaded again from its source
    assert regularizer.maybe_refresh(student, 0.8, step=20)
    assert regularizer.teacher is not given and regularizer.source is None
    assert all(torch.equal(student.state_dict()[k], v) for k, v in regularizer.teacher.state_dict().items())
    assert regularizer.state_dict()["tensors"]  # the student's copy is saved with checkpoints


def test_given_teacher_of_another_architecture_is_replaced_by_a_copy_of_the_student():
    regularizer = SelfRegularizer()
    regularizer.set_initial_teacher(tiny_bert(hidden_size=32, intermediate_size=64), "bigger")
    regularizer.set_initial_metric(0.5)
    student = tiny_bert()
    assert regularizer.maybe_refresh(student, 0.9, step=4)
    assert regularizer.teacher.config.hidden_size == student.config.hidden_size


def test_checkpoint_of_a_run_with_a_given_teacher_resumes_only_with_that_teacher():
    first = SelfRegularizer()
    first.set_initial_teacher(tiny_bert(seed=7), "dense-model")
    first.set_initial_metric(0.7)
    state = first.state_dict()
    same = SelfRegularizer()
    same.set_initial_teacher(tiny_bert(seed=7), "dense-model")
    same.load_state_dict(state, tiny_bert())
    assert same.best_metric == 0.7 and not same.needs_initial_metric and same.source == "dense-model"
    other = SelfRegularizer()
    other.set_initial_teacher(tiny_bert(seed=7), "another-model")
    with pytest.raises(ValueError, match="dense-model"):
        other.load_state_dict(state, tiny_bert())
    with pytest.raises(ValueError, match="dense-model"):
        SelfRegularizer().load_state_dict(state, tiny_bert())


def test_trainer_scores_the_given_teacher_on_dev_and_distils_from_it(tmp_path):
    from conftest import accuracy_metric, pad_collate, token_dataset
    from transformers import Trainer, TrainingArguments

    teacher = tiny_bert(seed=7)
    dev = token_dataset(32, seed=1)
    reference = Trainer(model=teacher, args=TrainingArguments(str(tmp_path / "ref"), use_cpu=True, report_to=[]),
                        eval_dataset=dev, data_collator=pad_collate, compute_metrics=accuracy_metric).evaluate()
    student = tiny_bert(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    trainer = make_trainer(tmp_path, model=student, dev=dev, teacher_model=teacher,
                           self_regularization_teacher_dtype="float32", num_train_epochs=1)
    assert trainer.selfreg.teacher is teacher
    batch = pad_collate([token_dataset(8, seed=5)[i] for i in range(8)])
    model = trainer.model.train()
    with torch.no_grad():
        loss = trainer.compute_loss(model, dict(batch)).item()
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        expected = self_regularized_loss(model(**inputs).logits, batch["labels"], teacher.eval()(**inputs).logits,
                                         is_regression=False).item()
    assert loss == pytest.approx(expected)  # the given teacher is used from the first step
    trainer.train()
    first = trainer.selfreg.refreshes[0]
    assert first["step"] == 0 and first["dev_metric"] == pytest.approx(reference["eval_accuracy"])
    assert first["source"] == "teacher_model"  # a model object without a folder name
    later = [e for e in trainer.evaluations if e["dev_metric"] > first["dev_metric"]]
    assert [r["step"] for r in trainer.selfreg.refreshes[1:]][:1] == [e["step"] for e in later][:1]


def test_teacher_model_without_self_regularization_is_refused(tmp_path):
    with pytest.raises(ValueError, match="self_regularization"):
        make_trainer(tmp_path, teacher_model=tiny_bert(), self_regularization=False)


def test_constant_prediction_score_by_hand():
    from hf_pins.metrics.glue import compute_metrics_fn
    from hf_pins.selfreg import constant_prediction_score

    # MRPC [1, 1, 0, 0]: "always 1" has accuracy 0.5 and F1 2*2/(2*2+2) = 2/3, combined 7/12; "always 0": 0.25.
    mrpc = compute_metrics_fn("mrpc")
    assert constant_prediction_score(mrpc, [1, 1, 0, 0], 2, is_regression=False, key="combined") == pytest.approx(7 / 12)
    # Accuracy on [1, 1, 1, 0]: the majority class, 0.75. Matthews of any constant: 0 (undefined, read as none).
    assert constant_prediction_score(compute_metrics_fn("sst2"), [1, 1, 1, 0], 2, is_regression=False,
                                     key="accuracy") == pytest.approx(0.75)
    assert constant_prediction_score(compute_metrics_fn("cola"), [1, 1, 1, 0], 2, is_regression=False,
                                     key="matthews_correlation") == 0.0
    # Three classes, lower is better: the best constant is the one with the least error.
    error = lambda p: {"error": float((p.predictions.argmax(-1) != p.label_ids).mean())}  # noqa: E731
    assert constant_prediction_score(error, [2, 2, 0, 1], 3, is_regression=False, key="error",
                                     greater_is_better=False) == pytest.approx(0.5)
    assert constant_prediction_score(compute_metrics_fn("stsb"), [0.5, 4.0, 2.5], 1, is_regression=True,
                                     key="pearson") == 0.0
    with pytest.raises(KeyError, match="'f1'"):
        constant_prediction_score(compute_metrics_fn("sst2"), [1, 0], 2, is_regression=False, key="f1")


def test_skip_trivial_teacher_waits_for_a_checkpoint_better_than_a_constant(tmp_path):
    from conftest import token_dataset

    dev = token_dataset(32, seed=1)
    majority = max(np.mean(np.asarray(dev["label"]) == c) for c in (0, 1))
    trainer = make_trainer(tmp_path, dev=dev, experimental={"skip_trivial_teacher": True}, learning_rate=3e-4)
    trainer.train()
    assert trainer.selfreg.floor == pytest.approx(majority)
    expected, best = [], majority
    for e in trainer.evaluations:
        if e["dev_metric"] > best:
            best = e["dev_metric"]
            expected.append(e["step"])
    assert [r["step"] for r in trainer.selfreg.refreshes] == expected
    assert trainer.evaluations[0]["dev_metric"] <= majority  # the paper's rule would have adopted this checkpoint
    report = trainer.selfreg.state_dict()["meta"]
    assert report["floor"] == pytest.approx(majority)


def test_skip_trivial_teacher_is_refused_where_it_cannot_work(tmp_path):
    from conftest import token_dataset

    with pytest.raises(ValueError, match="experimental.skip_trivial_teacher: only used by self-regularization"):
        make_trainer(tmp_path, self_regularization=False, experimental={"skip_trivial_teacher": True})
    with pytest.raises(ValueError, match="needs compute_metrics and an eval_dataset with a 'labels' or 'label'"):
        make_trainer(tmp_path, dev=token_dataset(8).rename_column("label", "target"),
                     experimental={"skip_trivial_teacher": True})
