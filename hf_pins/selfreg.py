"""Self-regularization: the model's own best checkpoint on the dev split is its teacher (Ren & Zhu, 2023).

As pruning removes capacity, the student is also pulled towards the best model seen so far in this run (less sparse,
close in capacity), which is replaced whenever the dev metric improves.

An extension (not in the paper): the run may start from a given teacher, typically the dense model fine-tuned on the
task, with its own dev score as the bar; the same rule then replaces it with the student once the student beats it.
With the paper's rule the first teacher is whatever the model is at the first evaluation, which on hard tasks (CoLA)
comes before the model has learnt much.

Loss per example: `w * KD + (1 - w) * task_loss`.
* classification: KD is the soft-target cross-entropy at temperature T, times T**2; `w = 1 - H(p_student) / log(C)`
  per example (`weighting="entropy"`, the reference code: a confident student leans more on the teacher), or a constant
  `alpha` (`weighting="constant"`). An experimental variant, `weighting="entropy_if_correct"` (the recipe's
  `pruning.experimental.entropy_if_correct`): the entropy weight where the student predicts the label and 0 where it
  does not, so that a confidently wrong example keeps its label loss.
* regression (STS-B, one output): KD is the squared error to the teacher's prediction (our form: the paper's code
  broke there); the entropy weight does not exist there, so a constant `alpha` is used. By default regression tasks
  train without a teacher (`pruning.experimental.regression_alpha` is 0; docs/research.md has why).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

WEIGHTINGS = ("entropy", "constant")  # what a config may choose; the loss also takes the experimental variant


def self_regularized_loss(
    student_logits: torch.Tensor,
    labels: torch.Tensor,
    teacher_logits: torch.Tensor,
    *,
    is_regression: bool,
    weighting: str = "entropy",
    alpha: float = 0.5,
    temperature: float = 2.0,
    return_weight: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Mean over the batch of the per-example mix of distillation towards the teacher and the task loss; with
    `return_weight`, also the batch's mean teacher weight `w` (how much of the loss the teacher had)."""
    student_logits = student_logits.float()
    teacher_logits = teacher_logits.float()
    if is_regression:
        prediction = student_logits.view(-1)
        task = (prediction - labels.float().view(-1)) ** 2
        kd = (prediction - teacher_logits.view(-1)) ** 2
        weight = torch.full_like(task, alpha)
    else:
        task = F.cross_entropy(student_logits, labels.view(-1), reduction="none")
        soft_teacher = F.softmax(teacher_logits / temperature, dim=-1)
        log_student = F.log_softmax(student_logits / temperature, dim=-1)
        kd = -(soft_teacher * log_student).sum(-1) * temperature**2
        if weighting in ("entropy", "entropy_if_correct"):
            with torch.no_grad():
                p = F.softmax(student_logits, dim=-1)
                entropy = -(p * torch.log(p.clamp_min(1e-12))).sum(-1)
                weight = 1.0 - entropy / math.log(student_logits.shape[-1])
                if weighting == "entropy_if_correct":
                    weight = weight * (student_logits.argmax(-1) == labels.view(-1))
        else:
            weight = torch.full_like(task, alpha)
    loss = (weight * kd + (1.0 - weight) * task).mean()
    return (loss, weight.mean().detach()) if return_weight else loss


def constant_prediction_score(compute_metrics, labels, num_labels: int, *, is_regression: bool, key: str,
                              greater_is_better: bool = True) -> float:
    """The best dev score of a model that ignores its input: the same class for every example (each class tried),
    or for regression the mean label (a constant, so its correlations are 0). A teacher no better than this has
    learnt nothing about the task."""
    from transformers import EvalPrediction

    labels = np.asarray(labels)
    n = labels.shape[0]
    if is_regression:
        candidates = [np.full((n, 1), float(labels.astype(np.float64).mean()), dtype=np.float32)]
    else:
        candidates = [np.eye(num_labels, dtype=np.float32)[np.full(n, c)] for c in range(num_labels)]
    scores = []
    for predictions in candidates:
        metrics = compute_metrics(EvalPrediction(predictions=predictions, label_ids=labels))
        if key not in metrics:
            raise KeyError(f"metric_for_best_model {key!r} is not among the metrics {sorted(metrics)}")
        scores.append(float(metrics[key]))
    return max(scores) if greater_is_better else min(scores)


TEACHER_DTYPES = ("auto", "float32", "bfloat16")


def fast_bfloat16(device: torch.device) -> bool:
    """Whether bfloat16 matrix products are native here (CUDA with bf16, or a CPU with AVX512-BF16 / AMX)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    from .cpu import cpu_flags

    return bool({"avx512_bf16", "amx_bf16"} & set(cpu_flags()))


def resolve_teacher_dtype(name: str, device: torch.device) -> torch.dtype:
    """`auto` is bfloat16 where it is native: the teacher only provides soft targets, and its forward pass is most of
    what self-regularization costs per step."""
    if name == "auto":
        return torch.bfloat16 if fast_bfloat16(device) else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16}[name]


class SelfRegularizer:
    """Keeps the teacher: a frozen copy of the best model on the dev split so far, without dropout or gradients,
    held in `dtype` (its logits are cast back to float32 for the loss)."""

    def __init__(self, greater_is_better: bool = True, dtype: torch.dtype = torch.float32,
                 max_sparsity_gap: float | None = None):
        self.greater_is_better = greater_is_better
        self.dtype = dtype
        self.max_sparsity_gap = max_sparsity_gap  # see `too_dense`
        self.teacher: nn.Module | None = None
        self.best_metric: float | None = None
        self.refreshes: list[dict] = []
        self.source: str | None = None  # where a given first teacher came from, while it is still the teacher
        self.floor: float | None = None  # a score the first teacher must beat (`set_floor`), if any

    def set_initial_teacher(self, teacher: nn.Module, source: str) -> None:
        """Start from a given teacher (any architecture with the student's inputs and outputs); its dev score is
        set with `set_initial_metric` before the first evaluation of the student."""
        teacher = teacher.to(self.dtype)
        teacher.requires_grad_(False)
        self.teacher = teacher.eval()
        self.source = source

    def set_initial_metric(self, metric: float) -> None:
        self.best_metric = metric
        self.refreshes.append({"step": 0, "dev_metric": metric, "source": self.source})

    def set_floor(self, metric: float) -> None:
        """No teacher until a checkpoint scores better than `metric` (the best constant prediction's dev score)."""
        self.best_metric = metric
        self.floor = metric

    @property
    def needs_initial_metric(self) -> bool:
        return self.source is not None and self.best_metric is None

    @property
    def has_teacher(self) -> bool:
        return self.teacher is not None

    def improves(self, metric: float) -> bool:
        return self._better(metric, self.best_metric)

    def _better(self, metric: float, than: float | None) -> bool:
        if than is None:
            return True
        return metric > than if self.greater_is_better else metric < than

    @property
    def teacher_sparsity(self) -> float:
        """The sparsity the current teacher was copied at (its refresh's record); a given teacher, or one from a
        checkpoint that predates the record, counts as dense."""
        return self.refreshes[-1].get("sparsity", 0.0) if self.refreshes else 0.0

    def too_dense(self, sparsity: float) -> bool:
        """Whether the teacher is denser than a student at `sparsity` by more than `max_sparsity_gap` (an extension
        for the paper's "close in capacity": unset, the best checkpoint teaches however much denser it is)."""
        if self.max_sparsity_gap is None or self.teacher is None:
            return False
        return sparsity - self.teacher_sparsity > self.max_sparsity_gap + 1e-9

    @torch.no_grad()
    def maybe_refresh(self, student: nn.Module, metric: float, step: int, sparsity: float = 0.0) -> bool:
        """Make the student the new teacher if `metric` beats the best so far, or if the teacher is `too_dense` for
        it (then its score becomes the bar; a floor set with `set_floor` still has to be beaten: a student no better
        than a constant prediction is never a teacher). Returns whether it did."""
        improved = self.improves(metric)
        if not improved and not (self.too_dense(sparsity) and self._better(metric, self.floor)):
            return False
        if self.teacher is None or self.source is not None:  # a given teacher may differ from the student
            self.teacher = self._copy(student)
            self.source = None
        else:
            self.teacher.load_state_dict(student.state_dict())
        self.teacher.eval()
        self.best_metric = metric
        self.refreshes.append({"step": step, "dev_metric": metric, "sparsity": sparsity,
                               "reason": "improved" if improved else "sparsity_gap"})
        return True

    def _copy(self, student: nn.Module) -> nn.Module:
        teacher = copy.deepcopy(student).to(self.dtype)
        teacher.requires_grad_(False)
        return teacher

    @torch.no_grad()
    def teacher_logits(self, inputs: dict) -> torch.Tensor:
        return self.teacher(**inputs).logits.float()

    def state_dict(self) -> dict:
        """A given teacher is not saved (it is loaded again from its source); a student copy is."""
        saved = self.teacher is not None and self.source is None
        tensors = {f"teacher.{k}": v for k, v in self.teacher.state_dict().items()} if saved else {}
        meta = {"best_metric": self.best_metric, "refreshes": self.refreshes, "source": self.source, "floor": self.floor}
        return {"tensors": tensors, "meta": meta}

    def load_state_dict(self, state: dict, student: nn.Module) -> None:
        weights = {k[len("teacher."):]: v for k, v in state["tensors"].items() if k.startswith("teacher.")}
        source = state["meta"].get("source")
        if weights:  # the student replaced whatever the first teacher was
            self.source = None
            self.teacher = self._copy(student)
            self.teacher.load_state_dict(weights)
            self.teacher.eval()
        elif source != self.source:
            raise ValueError(f"the checkpoint's run started from teacher {source!r}, this one from {self.source!r}")
        elif source is None:
            self.teacher = None
        self.best_metric = state["meta"]["best_metric"]
        self.floor = state["meta"].get("floor")
        self.refreshes = list(state["meta"]["refreshes"])
