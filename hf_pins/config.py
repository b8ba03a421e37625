"""`PINSConfig`: `TrainingArguments` plus the pruning and self-regularization fields.

Users already know `TrainingArguments`; a pruning run costs them only the fields below. In a recipe, these fields go
under `pruning:` with the `pruning_` prefix dropped (`pruning.method` is `pruning_method`, `pruning.warmup_ratio` is
`pruning_warmup_ratio`); every other `TrainingArguments` field goes under `training:`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from transformers import TrainingArguments

from .pruning.pruner import MASK_MODES, THRESHOLDS
from .pruning.scorers import SCORERS
from .pruning.targets import DEFAULT_PRUNABLE_PATTERNS
from .selfreg import WEIGHTINGS


@dataclass
class PINSConfig(TrainingArguments):
    """
    Parameters (beyond `TrainingArguments`):
        pruning_method (`str`, defaults to `"pins"`): importance criterion, one of the registered methods.
        target_sparsity (`float`, defaults to `0.8`): fraction of prunable weights that are zero at the end.
        prunable_modules (`list[str]`): regular expressions over module names; matching `nn.Linear` weights are pruned.
            The default finds every linear layer inside the repeated encoder blocks (`...layer.<i>...`).
        pruning_threshold (`str`, defaults to `"global"`): one threshold over all prunable weights, or `"per_matrix"`.
        pruning_warmup_steps / pruning_warmup_ratio (defaults `0` / `0.1`): dense steps before pruning starts (`t_i`).
        pruning_final_steps / pruning_final_ratio (defaults `0` / `0.3`): steps at the target at the end (`t_f`).
        mask_update_interval (`int`, defaults to `10`): `deltaT`, steps per score window and between mask updates.
        score_beta1 / score_beta2 (defaults `0.85` / `0.95`): EMA factors of the score mean and its uncertainty.
        importance_update (`str`, defaults to `"optimizer"`): `theta(t+1)` from the optimizer's real update (the paper)
            or `"sgd"`, the released code's `theta - lr * g` stand-in.
        importance_form (`str`, defaults to `"signed"`): the signed loss change (paper) or `"absolute"` (released code).
        mask_mode (`str`, defaults to `"persistent"`): pruned weights stay zero, or `"regrow"` between mask updates.
        self_regularization (`bool`, defaults to `True`): distil from the best dev checkpoint of this run.
        self_regularization_weighting (`str`, defaults to `"entropy"`): per-example weight `1 - H(p)/log C`, or
            `"constant"` (`self_regularization_alpha`).
        self_regularization_alpha (`float`, defaults to `0.5`): constant weight of the teacher term (and for regression).
        self_regularization_temperature (`float`, defaults to `2.0`): distillation temperature.
    """

    pruning_method: str = field(default="pins", metadata={"help": f"One of: {', '.join(sorted(SCORERS))}."})
    target_sparsity: float = field(default=0.8, metadata={"help": "Final fraction of zero prunable weights, in [0, 1)."})
    prunable_modules: list[str] = field(
        default_factory=lambda: list(DEFAULT_PRUNABLE_PATTERNS),
        metadata={"help": "Regular expressions over module names selecting the nn.Linear weights to prune."},
    )
    pruning_threshold: str = field(default="global", metadata={"help": "'global' or 'per_matrix'."})
    pruning_warmup_steps: int = field(default=0, metadata={"help": "Dense optimizer steps before pruning (t_i)."})
    pruning_warmup_ratio: float = field(default=0.1, metadata={"help": "t_i as a fraction of all steps."})
    pruning_final_steps: int = field(default=0, metadata={"help": "Optimizer steps at the target at the end (t_f)."})
    pruning_final_ratio: float = field(default=0.3, metadata={"help": "t_f as a fraction of all steps."})
    mask_update_interval: int = field(default=10, metadata={"help": "deltaT: steps per score window / mask update."})
    score_beta1: float = field(default=0.85, metadata={"help": "EMA factor of the smoothed score."})
    score_beta2: float = field(default=0.95, metadata={"help": "EMA factor of the score uncertainty."})
    importance_update: str = field(default="optimizer", metadata={"help": "'optimizer' (paper) or 'sgd' (code)."})
    importance_form: str = field(default="signed", metadata={"help": "'signed' (paper) or 'absolute' (code)."})
    mask_mode: str = field(default="persistent", metadata={"help": "'persistent' or 'regrow'."})
    self_regularization: bool = field(default=True, metadata={"help": "Distil from the best dev checkpoint so far."})
    self_regularization_weighting: str = field(default="entropy", metadata={"help": "'entropy' or 'constant'."})
    self_regularization_alpha: float = field(default=0.5, metadata={"help": "Constant teacher weight in [0, 1]."})
    self_regularization_temperature: float = field(default=2.0, metadata={"help": "Distillation temperature > 0."})

    def __post_init__(self):
        super().__post_init__()
        checks = [
            ("pruning_method", self.pruning_method in SCORERS, f"one of {', '.join(sorted(SCORERS))}"),
            ("target_sparsity", 0.0 <= self.target_sparsity < 1.0, "a number in [0, 1)"),
            ("pruning_threshold", self.pruning_threshold in THRESHOLDS, f"one of {', '.join(THRESHOLDS)}"),
            ("pruning_warmup_steps", self.pruning_warmup_steps >= 0, "an integer >= 0"),
            ("pruning_warmup_ratio", 0.0 <= self.pruning_warmup_ratio < 1.0, "a number in [0, 1)"),
            ("pruning_final_steps", self.pruning_final_steps >= 0, "an integer >= 0"),
            ("pruning_final_ratio", 0.0 <= self.pruning_final_ratio < 1.0, "a number in [0, 1)"),
            ("pruning_final_ratio", self.pruning_warmup_ratio + self.pruning_final_ratio < 1.0,
             "a number such that warmup_ratio + final_ratio < 1"),
            ("mask_update_interval", self.mask_update_interval >= 1, "an integer >= 1"),
            ("score_beta1", 0.0 <= self.score_beta1 < 1.0, "a number in [0, 1)"),
            ("score_beta2", 0.0 <= self.score_beta2 < 1.0, "a number in [0, 1)"),
            ("importance_update", self.importance_update in ("optimizer", "sgd"), "'optimizer' or 'sgd'"),
            ("importance_form", self.importance_form in ("signed", "absolute"), "'signed' or 'absolute'"),
            ("mask_mode", self.mask_mode in MASK_MODES, f"one of {', '.join(MASK_MODES)}"),
            ("self_regularization_weighting", self.self_regularization_weighting in WEIGHTINGS,
             f"one of {', '.join(WEIGHTINGS)}"),
            ("self_regularization_alpha", 0.0 <= self.self_regularization_alpha <= 1.0, "a number in [0, 1]"),
            ("self_regularization_temperature", self.self_regularization_temperature > 0, "a number > 0"),
            ("prunable_modules", bool(self.prunable_modules), "a non-empty list of regular expressions"),
        ]
        for name, ok, accepted in checks:
            if not ok:
                raise ValueError(f"{name}: expected {accepted}, got {getattr(self, name)!r}")
        if self.self_regularization and self.eval_strategy == "no":
            raise ValueError("self_regularization needs evaluations on the dev split: set eval_strategy to 'steps' or 'epoch'")
        if self.load_best_model_at_end:
            raise ValueError(
                "load_best_model_at_end: not supported; PINSTrainer itself keeps the best dev checkpoint among those "
                "at the target sparsity"
            )


def pruning_field_names() -> list[str]:
    """The fields `PINSConfig` adds to `TrainingArguments`, in declaration order."""
    base = {f.name for f in fields(TrainingArguments)}
    return [f.name for f in fields(PINSConfig) if f.name not in base]
