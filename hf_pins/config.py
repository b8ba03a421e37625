"""`PINSConfig`: `TrainingArguments` plus the pruning and self-regularization fields.

Users already know `TrainingArguments`; a pruning run costs them only the fields below. In a recipe these fields go
under `pruning:`, written as the field's name with a leading `pruning_` dropped (`pruning.method` is `pruning_method`,
`pruning.final_ratio` is `pruning_final_ratio`); every other `TrainingArguments` field goes under `training:`.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, fields
from typing import Any, Optional, Union

from transformers import TrainingArguments

from .arguments import ValueProblem, closest, convert, init_fields
from .experimental import ExperimentalSettings
from .methods import METHODS, SettingsError, get_method
from .methods.base import check_settings
from .pruning.pruner import MASK_MODES, THRESHOLDS
from .pruning.targets import DEFAULT_PRUNABLE_PATTERNS
from .selfreg import TEACHER_DTYPES, WEIGHTINGS
from .structured.units import GRANULARITIES, StructuredSettings

# The Pruner prunes weights sharded by FSDP2 (thresholds across shards, tests/test_sharded.py), but the Trainer's
# teacher copy, best checkpoint and per-checkpoint pruning state still assume whole weights in every process.
SHARDED_TRAINING_UNSUPPORTED = ("PINSTrainer does not run with sharded weights (FSDP, DeepSpeed); use DDP: "
                                "accelerate launch --multi_gpu")


@dataclass
class PINSConfig(TrainingArguments):
    r"""
    Configuration of a [`PINSTrainer`] run: the [`~transformers.TrainingArguments`] fields plus the ones below.

    Parameters that control the pruning:
        pruning_method (`str`, *optional*, defaults to `"pins"`):
            The pruning method: `"pins"`, `"magnitude"`, `"movement"`, `"soft_movement"`, `"platon"`, `"grda"` or
            `"gfs"` (greedy forward selection). See docs/methods.md.
        target_sparsity (`float`, *optional*, defaults to `0.8`):
            Fraction of the prunable weights that are zero at the end, in `[0, 1)`.
        prunable_modules (`list[str]`, *optional*):
            Regular expressions over module names; matching `nn.Linear` weights are pruned. The default finds every
            linear layer inside the repeated encoder blocks (`...layer.<i>...`).
        pruning_threshold (`str`, *optional*, defaults to `"global"`):
            One threshold over all prunable weights (`"global"`) or one per matrix (`"per_matrix"`).
        dense_warmup_steps / dense_warmup_epochs / dense_warmup_ratio (defaults `0` / `0` / `0.1`):
            Dense fine-tuning before pruning starts, in optimizer steps, epochs, or as a fraction of all steps; the
            first one set wins, in that order. Self-regularization's first teacher is only as good as this warm-up.
        pruning_final_steps / pruning_final_ratio (defaults `0` / `0.3`):
            Steps at the target sparsity at the end, as a count or as a fraction of all steps.
        mask_update_interval (`int`, *optional*, defaults to `10`):
            Optimizer steps per score window and between mask updates.
        score_beta1 / score_beta2 (defaults `0.85` / `0.95`):
            Moving-average factors of the smoothed score and of its uncertainty (PINS, PLATON).
        mask_mode (`str`, *optional*, defaults to `"persistent"`):
            `"persistent"`: pruned weights stay zero. `"regrow"`: they may come back at later mask updates (the
            PINS and PLATON reference code). `"behind_mask"`: movement pruning's masking, a pruned weight's value is
            kept behind the mask and returns if its score does.
        method_args (`dict`, *optional*):
            Settings of the chosen method (e.g. `{"c": 1e-4}` for gRDA, `{"ffn_keep": 0.5}` for greedy forward
            selection); each method's settings and defaults are in docs/methods.md.
        pruning_granularity (`str`, *optional*, defaults to `"unstructured"`):
            What is pruned: single weights (`"unstructured"`), or whole attention heads and FFN units
            (`"structured"`, for pins, magnitude and platon), ranked by the sum of their weights' scores on the same
            schedule; the removed units are cut out at the end, leaving a smaller dense model.
        structured_args (`dict`, *optional*):
            Settings of structured granularity (`hf_pins.structured.units.StructuredSettings`): `heads_keep`,
            `ffn_keep` (keep fractions that replace `target_sparsity`), `budget` (`"global"` or `"per_layer"`) and
            `then` (`"unstructured"`: once the units are removed, single weights follow up to `target_sparsity`).
        experimental (`dict`, *optional*):
            Settings under investigation (`hf_pins.experimental.ExperimentalSettings`); they warn when set.

    Parameters that control self-regularization:
        self_regularization (`bool`, *optional*, defaults to `True`):
            Distil from the best dev checkpoint of this run so far. Needs evaluations on the dev split.
        self_regularization_weighting (`str`, *optional*, defaults to `"entropy"`):
            Per-example weight of the teacher term: `"entropy"` (`1 - H(p)/log C` of the teacher, the reference
            code) or `"constant"` (`self_regularization_alpha`).
        self_regularization_alpha (`float`, *optional*, defaults to `0.5`):
            The constant teacher weight, in `[0, 1]`.
        self_regularization_temperature (`float`, *optional*, defaults to `2.0`):
            Distillation temperature.
        self_regularization_teacher (`str`, *optional*):
            A fine-tuned model (folder, Hub id or `pkg:`) that is the first teacher, kept until the student beats its
            dev score. Unset: the first evaluated model, as in the paper.
        self_regularization_teacher_dtype (`str`, *optional*, defaults to `"auto"`):
            The teacher's precision: `"auto"` (bfloat16 where it is native, else float32), `"float32"` or
            `"bfloat16"`.
    """

    # Pruning
    pruning_method: str = field(default="pins", metadata={"help": f"One of: {', '.join(METHODS)}."})
    target_sparsity: float = field(default=0.8, metadata={"help": "Final fraction of zero prunable weights, in [0, 1)."})
    prunable_modules: list[str] = field(
        default_factory=lambda: list(DEFAULT_PRUNABLE_PATTERNS),
        metadata={"help": "Regular expressions over module names selecting the nn.Linear weights to prune."},
    )
    pruning_threshold: str = field(default="global", metadata={"help": "'global' or 'per_matrix'."})
    dense_warmup_steps: int = field(default=0, metadata={"help": "Dense optimizer steps before pruning starts."})
    dense_warmup_epochs: float = field(default=0.0, metadata={"help": "Dense epochs before pruning (wins over the ratio)."})
    dense_warmup_ratio: float = field(default=0.1, metadata={"help": "Dense fine-tuning as a fraction of all steps."})
    pruning_final_steps: int = field(default=0, metadata={"help": "Optimizer steps at the target at the end."})
    pruning_final_ratio: float = field(default=0.3, metadata={"help": "Steps at the target as a fraction of all steps."})
    mask_update_interval: int = field(default=10, metadata={"help": "Steps per score window and between mask updates."})
    score_beta1: float = field(default=0.85, metadata={"help": "Moving-average factor of the smoothed score."})
    score_beta2: float = field(default=0.95, metadata={"help": "Moving-average factor of the score's uncertainty."})
    mask_mode: str = field(default="persistent", metadata={"help": "'persistent', 'regrow' or 'behind_mask'."})
    method_args: Optional[Union[dict, str]] = field(
        default=None, metadata={"help": "Settings of the chosen method (a mapping or a JSON string); see docs/methods.md."})
    pruning_granularity: str = field(default="unstructured", metadata={
        "help": "'unstructured' (single weights) or 'structured' (whole heads and FFN units, removed at the end)."})
    structured_args: Optional[Union[dict, str]] = field(default=None, metadata={
        "help": "Settings of structured granularity: heads_keep, ffn_keep, budget, then (a mapping or a JSON string)."})
    experimental: Optional[Union[dict, str]] = field(
        default=None, metadata={"help": "Experimental settings (a mapping or a JSON string); they warn when set."})
    # Self-regularization
    self_regularization: bool = field(default=True, metadata={"help": "Distil from the best dev checkpoint so far."})
    self_regularization_weighting: str = field(default="entropy", metadata={"help": "'entropy' or 'constant'."})
    self_regularization_alpha: float = field(default=0.5, metadata={"help": "Constant teacher weight in [0, 1]."})
    self_regularization_temperature: float = field(default=2.0, metadata={"help": "Distillation temperature > 0."})
    self_regularization_teacher: Optional[str] = field(
        default=None, metadata={"help": "A fine-tuned model to start self-regularization from (default: none)."}
    )
    self_regularization_teacher_dtype: str = field(
        default="auto", metadata={"help": "'auto' (bfloat16 where native), 'float32' or 'bfloat16'."}
    )

    def __post_init__(self):
        # Checked first: TrainingArguments exports ACCELERATE_USE_FSDP / _DEEPSPEED to the environment.
        if self.fsdp or self.deepspeed:
            raise SettingsError("fsdp" if self.fsdp else "deepspeed", SHARDED_TRAINING_UNSUPPORTED)
        check_training_values(self)
        super().__post_init__()
        self.method_args = _mapping(self.method_args, "method_args")
        self.experimental = _mapping(self.experimental, "experimental")
        self.structured_args = _mapping(self.structured_args, "structured_args")
        self._check_pruning()
        self._check_granularity()
        self._check_self_regularization()
        settings = self.method_settings  # validated now, not when training starts
        check = getattr(get_method(self.pruning_method), "check", None)
        if check is not None:
            check(settings, self.target_sparsity)
        self.experimental_settings.warn_if_used()

    def _check_pruning(self) -> None:
        check_settings(self, {
            "pruning_method": (self.pruning_method in METHODS, f"one of {', '.join(METHODS)}"),
            "target_sparsity": (0.0 <= self.target_sparsity < 1.0, "a number in [0, 1)"),
            "pruning_threshold": (self.pruning_threshold in THRESHOLDS, f"one of {', '.join(THRESHOLDS)}"),
            "dense_warmup_steps": (self.dense_warmup_steps >= 0, "an integer >= 0"),
            "dense_warmup_epochs": (_finite(self.dense_warmup_epochs) and self.dense_warmup_epochs >= 0,
                                    "a number of epochs >= 0"),
            "dense_warmup_ratio": (0.0 <= self.dense_warmup_ratio < 1.0, "a number in [0, 1)"),
            "pruning_final_steps": (self.pruning_final_steps >= 0, "an integer >= 0"),
            "pruning_final_ratio": (0.0 <= self.pruning_final_ratio < 1.0, "a number in [0, 1)"),
            "mask_update_interval": (self.mask_update_interval >= 1, "an integer >= 1"),
            "score_beta1": (0.0 <= self.score_beta1 < 1.0, "a number in [0, 1)"),
            "score_beta2": (0.0 <= self.score_beta2 < 1.0, "a number in [0, 1)"),
            "mask_mode": (self.mask_mode in MASK_MODES, f"one of {', '.join(MASK_MODES)}"),
            "prunable_modules": (bool(self.prunable_modules), "a non-empty list of regular expressions"),
        })
        check_settings(self, {"pruning_final_ratio": (self.dense_warmup_ratio + self.pruning_final_ratio < 1.0,
                                              "a number such that dense_warmup_ratio + final_ratio < 1")})
        for pattern in self.prunable_modules:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise SettingsError("prunable_modules", f"{pattern!r} is not a valid regular expression ({exc})") from None

    def _check_granularity(self) -> None:
        method = get_method(self.pruning_method)
        check_settings(self, {"pruning_granularity": (self.pruning_granularity in GRANULARITIES,
                                              f"one of {', '.join(GRANULARITIES)}")})
        if self.pruning_granularity == "structured":
            structured = [name for name, cls in METHODS.items() if "structured" in cls.granularities]
            check_settings(self, {
                "pruning_granularity": ("structured" in method.granularities, f"'unstructured' with method "
                                        f"{self.pruning_method} (structured works with {', '.join(structured)})"),
                "mask_mode": (self.mask_mode == "persistent", "'persistent' with granularity structured (removed "
                              "units stay removed)"),
                "pruning_threshold": (self.pruning_threshold == "global", "'global' with granularity structured "
                                      "(the per-layer budget is structured_args.budget)"),
            })
        elif self.structured_args:
            raise SettingsError("structured_args", "only used with granularity structured; remove it or set "
                                "granularity: structured")
        _ = self.structured_settings  # validated now, not when training starts

    def _check_self_regularization(self) -> None:
        check_settings(self, {
            "self_regularization_weighting": (self.self_regularization_weighting in WEIGHTINGS,
                                              f"one of {', '.join(WEIGHTINGS)}"),
            "self_regularization_alpha": (0.0 <= self.self_regularization_alpha <= 1.0, "a number in [0, 1]"),
            "self_regularization_temperature": (_finite(self.self_regularization_temperature)
                                                and self.self_regularization_temperature > 0, "a number > 0"),
            "self_regularization_teacher_dtype": (self.self_regularization_teacher_dtype in TEACHER_DTYPES,
                                                  f"one of {', '.join(TEACHER_DTYPES)}"),
        })
        if self.self_regularization_teacher is not None and not self.self_regularization:
            raise SettingsError("self_regularization_teacher", "expected null when self_regularization is false (a "
                                "teacher is only used by self-regularization)")
        if not self.self_regularization:
            teacher_settings = ("skip_trivial_teacher", "max_sparsity_gap", "distil_at_target", "regression_alpha",
                                "entropy_if_correct")
            unused = [k for k in self.experimental_settings.changed() if k in teacher_settings]
            if unused:
                raise SettingsError(f"experimental.{unused[0]}", "only used by self-regularization, which is off "
                                    "(self_regularization: false); remove it")
        if self.self_regularization and self.eval_strategy == "no":
            raise SettingsError("self_regularization", "needs evaluations on the dev split: set eval_strategy to "
                                "'steps' or 'epoch', or self_regularization to false")
        if self.load_best_model_at_end:
            raise SettingsError("load_best_model_at_end", "not supported; PINSTrainer itself keeps the best dev "
                                "checkpoint among those at the target sparsity")

    @property
    def method_settings(self) -> Any:
        """`method_args` as the chosen method's typed settings (`settings_class`)."""
        return parse_settings(get_method(self.pruning_method).settings_class, self.method_args, "method_args",
                              self.pruning_method)

    @property
    def structured_settings(self) -> StructuredSettings:
        """`structured_args` as typed settings."""
        return parse_settings(StructuredSettings, self.structured_args, "structured_args")

    @property
    def experimental_settings(self) -> ExperimentalSettings:
        return parse_settings(ExperimentalSettings, self.experimental, "experimental")

    def self_regularizes(self, is_regression: bool) -> bool:
        """Whether a run distils from its best dev checkpoint: regression tasks only with a teacher weight > 0."""
        return self.self_regularization and (not is_regression or self.experimental_settings.regression_alpha > 0)


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _mapping(value, name: str) -> dict:
    """A settings field as a dict: a mapping as is, a JSON object string parsed (the command line's form)."""
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except json.JSONDecodeError:
            raise SettingsError(name, f"expected a mapping or a JSON object, got {value!r}") from None
    if not isinstance(value, dict):
        raise SettingsError(name, f"expected a mapping, got {type(value).__name__}")
    return dict(value)


def parse_settings(settings_class: type, values: dict | None, where: str, method: str | None = None) -> Any:
    """A settings dataclass from a mapping: unknown keys (with the closest valid one), types and ranges are checked;
    errors are `SettingsError`s whose key is `where.key`."""
    values = values or {}
    accepted = init_fields(settings_class)
    kwargs = {}
    for key, value in values.items():
        if key not in accepted:
            if not accepted:
                owner = f"pruning method {method!r}" if method else "this section"
                raise SettingsError(f"{where}.{key}", f"the {owner} takes no settings")
            raise SettingsError(f"{where}.{key}", f"unknown key; accepted: {', '.join(accepted)}{closest(str(key), accepted)}")
        try:
            kwargs[key] = convert(settings_class, key, value)
        except ValueProblem as exc:
            raise SettingsError(f"{where}.{key}", str(exc)) from None
    try:
        return settings_class(**kwargs)
    except SettingsError as exc:
        raise SettingsError(f"{where}.{exc.key}", str(exc)[len(exc.key) + 2:]) from None


# -- values TrainingArguments accepts but training would reject later --------------------------------------------------
def check_training_values(args: TrainingArguments) -> None:
    """Catch at construction what would otherwise fail at step 0 or later (a division by zero, a torch error)."""
    epochs_ok = _finite(args.num_train_epochs) and args.num_train_epochs >= 0
    check_settings(args, {
        "learning_rate": (_finite(args.learning_rate) and args.learning_rate >= 0, "a number >= 0"),
        "num_train_epochs": (epochs_ok, "a finite number of epochs >= 0"),
        "per_device_train_batch_size": (args.per_device_train_batch_size >= 1, "an integer >= 1"),
        "per_device_eval_batch_size": (args.per_device_eval_batch_size >= 1, "an integer >= 1"),
        "gradient_accumulation_steps": (args.gradient_accumulation_steps >= 1, "an integer >= 1"),
        "seed": (0 <= args.seed < 2**32, "an integer in [0, 2**32)"),
        "dataloader_num_workers": (args.dataloader_num_workers >= 0, "an integer >= 0"),
        "weight_decay": (_finite(args.weight_decay) and args.weight_decay >= 0, "a number >= 0"),
        "warmup_ratio": (_finite(getattr(args, "warmup_ratio", 0.0)) and 0 <= getattr(args, "warmup_ratio", 0.0) <= 1,
                         "a number in [0, 1]"),  # transformers 5 has no warmup_ratio (compat.py)
        "warmup_steps": (args.warmup_steps >= 0, "a number >= 0"),
        "max_grad_norm": (_finite(args.max_grad_norm), "a finite number"),
        "adam_beta1": (_finite(args.adam_beta1) and 0 <= args.adam_beta1 < 1, "a number in [0, 1)"),
        "adam_beta2": (_finite(args.adam_beta2) and 0 <= args.adam_beta2 < 1, "a number in [0, 1)"),
        "adam_epsilon": (_finite(args.adam_epsilon) and args.adam_epsilon >= 0, "a number >= 0"),
    })
    if args.max_steps <= 0:
        check_settings(args, {"num_train_epochs": (args.num_train_epochs > 0, "a number > 0 (or set max_steps)")})


def check_optimizer(args: TrainingArguments) -> None:
    """Build the optimizer and scheduler `args` describe on one dummy parameter: a library that is not installed, a
    keyword the optimizer or the scheduler does not take, or a value it refuses is found before any work."""
    import torch
    from transformers import Trainer, get_scheduler

    dummy = torch.nn.Linear(1, 1)
    try:
        optimizer_cls, kwargs = Trainer.get_optimizer_cls_and_kwargs(args, dummy)
    except (ImportError, ValueError, TypeError) as exc:
        raise SettingsError("optim", f"{args.optim!r} cannot be used here ({_first_line(exc)})") from None
    if not {"params", "model", "optimizer_dict"} & set(kwargs):
        try:
            optimizer = optimizer_cls(dummy.parameters(), **kwargs)
        except (ValueError, TypeError, RuntimeError) as exc:
            raise SettingsError("optim", f"{args.optim!r} refuses these settings ({_first_line(exc)})") from None
    else:
        optimizer = torch.optim.SGD(dummy.parameters(), lr=args.learning_rate)
    try:
        get_scheduler(args.lr_scheduler_type, optimizer=optimizer, num_warmup_steps=1, num_training_steps=10,
                      scheduler_specific_kwargs=args.lr_scheduler_kwargs or {})
    except (ValueError, TypeError) as exc:
        scheduler = getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type)
        raise SettingsError("lr_scheduler_kwargs", f"not accepted by the {scheduler} scheduler "
                            f"({_first_line(exc)})") from None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def pruning_field_names() -> list[str]:
    """The fields `PINSConfig` adds to `TrainingArguments`, in declaration order."""
    base = {f.name for f in fields(TrainingArguments)}
    return [f.name for f in fields(PINSConfig) if f.name not in base]


@dataclass
class ModelArguments:
    """
    Parameters that control the model (the recipe's `model:` section; `model: NAME` is short for
    `model: {name_or_path: NAME}`):
        name_or_path (`str`):
            A Hub id, a local folder, or `pkg:PACKAGE/SUBDIR` (a checkpoint shipped inside an installed package).
        revision (`str`, *optional*):
            A branch, tag or commit of the Hub repository.
        tokenizer (`str`, *optional*):
            Where the tokenizer comes from, when not from `name_or_path`.
        trust_remote_code (`bool`, *optional*, defaults to `False`):
            Allow model code from the Hub repository to run.
    """

    name_or_path: str = field(metadata={"help": "A Hub id, a local folder, or pkg:PACKAGE/SUBDIR."})
    revision: Optional[str] = field(default=None, metadata={"help": "Branch, tag or commit on the Hub."})
    tokenizer: Optional[str] = field(default=None, metadata={"help": "Tokenizer location, if not name_or_path."})
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow model code from the Hub to run."})

    def __post_init__(self):
        if not self.name_or_path.strip():
            raise SettingsError("name_or_path", "expected a model id or path, got an empty string")
