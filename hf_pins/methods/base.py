"""The one interface every pruning method implements, and the settings each method declares.

A method is a class: what it is (`name`, `display_name`, `paper`, `summary`, read by the model card), what it can be
told (`settings_class`, a dataclass whose fields are the recipe's `pruning.method_args`), and what it does at each
stage of a run. Everything else (schedule, thresholds, persistent masks, checkpoints, reports) is the `Pruner`'s and
the `PINSTrainer`'s job and written once.

Stages, in the order a run meets them:
  `prepare(run)` (class method): before the Trainer exists; may change the model (greedy forward selection removes
  units) or the settings (gRDA calibrates `c`). Returns what the report should keep, or None.
  `training_method(settings)` (class method): the method whose scores drive the masks during training (itself, or the
  unstructured method a structured one hands over to).
  `create_optimizer(trainer)`: an optimizer of the method's own (gRDA prunes through one), or None for `args.optim`.
  Per optimizer step, from the `Pruner`: `before_step(optimizer)` (gradients final, parameters `theta(t)`),
  `after_step(optimizer)` (parameters `theta(t+1)`, gradients still those of step t), `end_window()` at the end of each
  score window, and `scores()` when a mask is due.
  `finish(trainer)`: after training and the choice of the final model.
  `report(trainer, prepared)` (class method): the recipe's method's part of `pruning_report.json`; `summary_lines(report)`: its lines in the
  summary `hf-pins train` prints.

A method that prunes by other means (gRDA through its optimizer, greedy forward selection before training) sets
`schedules_masks = False`: the pruner then forces no sparsity and reports the zeros it measures. `structure_fixed` says
whether the sparsity is settled before training starts (then every dev evaluation is a candidate for the final model).
`granularities` says whether the method's per-weight scores may also rank whole units (`pruning.granularity:
structured`, `hf_pins.pruning.structured`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from ..arguments import short
from ..pruning.sharding import local, shard_group
from ..pruning.smoothing import SmoothedScore


@dataclass(frozen=True)
class Paper:
    """Where a method comes from, as the model card cites it."""

    authors: str
    title: str
    venue: str
    url: str
    bibtex: str | None = None

    def citation(self) -> str:
        return f"{self.authors}, *{self.title}*, {self.venue}"


@dataclass
class NoSettings:
    """A method without settings of its own: `pruning.method_args` must stay empty."""


class SettingsError(ValueError):
    """A value of a method's settings (or of `pruning.experimental`) that cannot be used: `key` names it."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}")
        self.key = key


def check_settings(settings: Any, rules: dict[str, tuple[bool, str]]) -> None:
    """Raise `SettingsError` for the first `key: (ok, accepted)` rule that fails."""
    for key, (ok, accepted) in rules.items():
        if not ok:
            raise SettingsError(key, f"expected {accepted}, got {short(getattr(settings, key))}")


@dataclass
class PreparedRun:
    """What `prepare` sees: the model before the Trainer, the run's config, data and where the run writes."""

    model: nn.Module
    args: Any
    train_dataset: Any
    eval_dataset: Any
    data_collator: Any
    is_regression: bool
    output_dir: Any  # pathlib.Path
    resume_from: str | None  # the checkpoint a resumed run continues from
    trainer_kwargs: dict


class PruningMethod:
    name: ClassVar[str] = ""
    display_name: ClassVar[str] = ""
    paper: ClassVar[Paper | None] = None
    summary: ClassVar[str] = ""
    settings_class: ClassVar[type] = NoSettings
    schedules_masks: ClassVar[bool] = True
    structure_fixed: ClassVar[bool] = False
    # What its scores can rank: single weights, and whole heads and FFN units by the sum of their weights' scores.
    granularities: ClassVar[tuple[str, ...]] = ("unstructured",)

    def __init__(self, params: dict[str, nn.Parameter], args: Any = None, settings: Any = None):
        self.params = params
        self.args = args
        self.settings = settings if settings is not None else self.settings_class()
        self.group = shard_group(params)  # None unless the weights are sharded (then scores cover this shard)
        self.hidden: dict[str, torch.Tensor] | None = None  # set by the Pruner with mask_mode="behind_mask"

    # -- stages around training -----------------------------------------------------------------------------------
    @classmethod
    def prepare(cls, run: PreparedRun) -> dict | None:
        return None

    @classmethod
    def training_method(cls, settings: Any) -> type[PruningMethod]:
        return cls

    def create_optimizer(self, trainer) -> torch.optim.Optimizer | None:
        return None

    def finish(self, trainer) -> None:
        pass

    @classmethod
    def report(cls, trainer, prepared: dict | None) -> dict:
        """Keys this method adds to (or overrides in) `pruning_report.json` (`prepared`: what `prepare` returned)."""
        return {}

    @classmethod
    def summary_lines(cls, report: dict) -> list[str]:
        return []

    # -- per step -------------------------------------------------------------------------------------------------
    def theta(self, name: str) -> torch.Tensor:
        """The weight as the method sees it: the model's (this shard's) values, plus the values kept behind the mask
        when pruned weights are held there (they are zero in the model)."""
        weight = local(self.params[name])
        return weight if self.hidden is None else weight + self.hidden[name]

    def before_step(self, optimizer: torch.optim.Optimizer | None) -> None:
        pass

    def after_step(self, optimizer: torch.optim.Optimizer | None) -> None:
        pass

    def end_window(self) -> None:
        pass

    def scores(self) -> dict[str, torch.Tensor]:
        raise NotImplementedError(f"{self.name} does not rank weights by scores")

    def state_dict(self) -> dict:
        """`{"tensors": {name: Tensor}, "meta": {json-able}}`, saved with every checkpoint."""
        return {"tensors": {}, "meta": {}}

    def load_state_dict(self, state: dict) -> None:
        pass


def settings_fields(settings_class: type) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(settings_class) if f.init]


def learning_rates(optimizer: torch.optim.Optimizer | None) -> dict[int, float]:
    """The learning rate each parameter (by id) is updated with at this step."""
    if optimizer is None:
        return {}
    return {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}


class SmoothedMethod(PruningMethod):
    """A method whose raw per-step score is smoothed over windows with its uncertainty (PINS, PLATON):
    subclasses add raw scores to `self.smoothed`; ranking, windows and state are shared here."""

    def __init__(self, params, args=None, settings=None):
        super().__init__(params, args, settings)
        shapes = {n: local(p).shape for n, p in params.items()}
        device = next(iter(params.values())).device if params else None
        self.smoothed = SmoothedScore(shapes, getattr(args, "score_beta1", 0.85), getattr(args, "score_beta2", 0.95), device)
        self._scratch: dict[torch.Size, torch.Tensor] = {}  # one reusable buffer per matrix shape

    def scratch(self, name: str) -> torch.Tensor:
        """A reusable float32 buffer of the matrix's shape (shared by matrices of one shape; its contents are
        overwritten by the next use)."""
        window = self.smoothed.window_sum[name]
        buffer = self._scratch.get(window.shape)
        if buffer is None:
            buffer = self._scratch[window.shape] = torch.empty_like(window)
        return buffer

    def add_product(self, name: str, a: torch.Tensor, b: torch.Tensor, *, absolute: bool, sign: float = 1.0) -> None:
        """Add `sign * a * b` (its magnitude when `absolute`) to this window's raw score without a temporary per
        matrix: it runs on every prunable weight at every step. `b` may be `scratch(name)` itself."""
        window = self.smoothed.window_sum[name]
        if not absolute:
            window.addcmul_(a, b, value=sign)
            return
        window.add_(torch.mul(a, b, out=self.scratch(name)).abs_())

    def end_window(self) -> None:
        self.smoothed.close_window()

    def scores(self) -> dict[str, torch.Tensor]:
        return {n: self.smoothed.score(n) for n in self.params}

    def state_dict(self) -> dict:
        return self.smoothed.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.smoothed.load_state_dict(state)
