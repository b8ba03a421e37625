"""`PINSConfig`: `TrainingArguments` plus the pruning and self-regularization fields.

Users already know `TrainingArguments`; a pruning run costs them only the fields below. In a recipe, these fields go
under `pruning:` with the `pruning_` prefix dropped (`pruning.method` is `pruning_method`, `pruning.warmup_ratio` is
`pruning_warmup_ratio`); every other `TrainingArguments` field goes under `training:`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Optional

from transformers import TrainingArguments

from .pruning.pruner import MASK_MODES, THRESHOLDS
from .pruning.scorers import SCHEDULED_METHODS, SCORERS
from .pruning.scorers.movement import SCORE_UPDATES
from .pruning.targets import DEFAULT_PRUNABLE_PATTERNS
from .selfreg import TEACHER_DTYPES, WEIGHTINGS


# The Pruner prunes weights sharded by FSDP2 (thresholds across shards, tests/test_sharded.py), but the Trainer's
# teacher copy, best checkpoint and per-checkpoint pruning state still assume whole weights in every process.
SHARDED_TRAINING_UNSUPPORTED = ("PINSTrainer does not run with sharded weights (FSDP, DeepSpeed) yet; use DDP: "
                                "accelerate launch --multi_gpu (README, Several processes)")

GFS_IMITATIONS = ("local", "global", "auto")
GFS_BUDGETS = ("per_layer", "global")


@dataclass
class PINSConfig(TrainingArguments):
    """
    Parameters (beyond `TrainingArguments`):
        pruning_method (`str`, defaults to `"pins"`): importance criterion, one of the registered methods.
        target_sparsity (`float`, defaults to `0.8`): fraction of prunable weights that are zero at the end.
        prunable_modules (`list[str]`): regular expressions over module names; matching `nn.Linear` weights are pruned.
            The default finds every linear layer inside the repeated encoder blocks (`...layer.<i>...`).
        pruning_threshold (`str`, defaults to `"global"`): one threshold over all prunable weights, or `"per_matrix"`.
        pruning_warmup_steps / pruning_warmup_epochs / pruning_warmup_ratio (defaults `0` / `0` / `0.1`): dense
            fine-tuning before pruning starts (`t_i`), in optimizer steps, in epochs, or as a fraction of all steps;
            the first one set wins, in that order. The teacher of self-regularization is only as good as this warm-up.
        pruning_final_steps / pruning_final_ratio (defaults `0` / `0.3`): steps at the target at the end (`t_f`).
        mask_update_interval (`int`, defaults to `10`): `deltaT`, steps per score window and between mask updates.
        score_beta1 / score_beta2 (defaults `0.85` / `0.95`): EMA factors of the score mean and its uncertainty.
        importance_update (`str`, defaults to `"optimizer"`): `theta(t+1)` from the optimizer's real update (the paper)
            or `"sgd"`, the released code's `theta - lr * g` stand-in.
        importance_form (`str`, defaults to `"absolute"`): rank by the magnitude of the loss change (released code), or
            `"signed"`, the loss change itself as the paper writes it. Signed ranking prunes large weights whose
            first-order term is negative, where the expansion is least valid: on the demo it collapsed MiniLM to chance
            at 12% sparsity, while `"absolute"` kept full accuracy at 80% (README, "The method").
        mask_mode (`str`, defaults to `"persistent"`): pruned weights stay zero; `"regrow"`: they may move between mask
            updates (the PINS/PLATON code); `"behind_mask"`: movement pruning's masking, a pruned weight's value is kept
            behind the mask and comes back if its score does (what Sanh et al. do; meant for movement and soft movement).
        self_regularization (`bool`, defaults to `True`): distil from the best dev checkpoint of this run.
        self_regularization_weighting (`str`, defaults to `"entropy"`): per-example weight `1 - H(p)/log C` (the
            reference code), `"entropy_if_correct"` (that weight where the student predicts the label, 0 where it does
            not, so a confidently wrong example keeps its label loss; an extension), or `"constant"`
            (`self_regularization_alpha`).
        self_regularization_alpha (`float`, defaults to `0.5`): constant weight of the teacher term (classification).
        self_regularization_regression_alpha (`float`, defaults to `0.0`): weight of the squared error to the teacher's
            prediction on regression tasks (one output; the paper's code broke there). `0` turns self-regularization off
            for regression: on STS-B at 80% the MSE form at 0.5 cost PINS 0.8 to 1.3 points in each of three seeds
            (BENCHMARKS.md), and of 0, 0.2 and 0.5 the dev scores chose 0.
        self_regularization_temperature (`float`, defaults to `2.0`): distillation temperature.
        self_regularization_teacher (`str`, *optional*): a fine-tuned model (folder, Hub id or `pkg:`) that is the
            first teacher, with its dev score as the bar the student must beat to replace it (an extension; typically
            the dense model fine-tuned on the task). Unset: the paper's rule, this run's first evaluated model.
        self_regularization_skip_trivial_teacher (`bool`, defaults to `False`): a checkpoint becomes the teacher only
            once its dev score beats the best constant prediction (one class for every example; for regression a
            constant, whose correlations are 0), an extension. The paper's rule adopts the first evaluated model, which
            on CoLA is a one-class model for the whole first epoch and pulls the student towards the majority class.
            Ignored while a given `self_regularization_teacher` teaches (its own dev score is the bar).
        self_regularization_max_sparsity_gap (`float`, *optional*): an extension for "close in capacity": when the
            student's sparsity exceeds the teacher's by more than this, the evaluated model becomes the teacher (and its
            dev score the bar) whatever its score (with `self_regularization_skip_trivial_teacher`, as long as it
            beats the constant prediction). Unset: the paper's rule, the best checkpoint so far however much
            denser (at 90% a run's teacher can stay at 40% sparsity for the whole second half).
        self_regularization_at_target (`bool`, defaults to `True`): keep distilling in the final phase, at the target
            sparsity (the paper: throughout). `False`, an extension: the task loss alone once the target is reached,
            where the capacity no longer falls and the best checkpoint is the student itself at the same sparsity (on
            SST-2 with its recipe's budget PINS's dev score trailed PLATON's through that phase, BENCHMARKS.md).
        self_regularization_teacher_dtype (`str`, defaults to `"auto"`): the teacher's precision: bfloat16 where it is
            native (CUDA with bf16, CPUs with AVX512-BF16 or AMX), else float32; or `"float32"` / `"bfloat16"`.
        movement_lr_weighted (`bool`, defaults to `False`): `movement`/`soft_movement` scores add `-theta * g` times
            the weight's learning rate at each step (scores trained on the weights' schedule), not the plain sum.
        movement_score_update (`str`, defaults to `"sum"`): the paper's plain sum of `-theta * g`, or `"adam"`, the
            reference code's scores trained by Adam (each score moves by about one per step; `pruning/scorers/movement.py`).
        soft_movement_l1 (`float`, defaults to `0.1`): L1 penalty on the soft-movement scores, in units of the step's
            mean `|theta * g|` (see `pruning/scorers/soft_movement.py`).
        grda_lr (`float`, defaults to `0.01`): SGD-scale learning rate of the gRDA group (the prunable matrices); the
            Trainer's scheduler drives it like `learning_rate`, which stays the other parameters' AdamW rate.
        grda_c / grda_mu (defaults `1e-4` / `0.51`): gRDA's threshold `c * lr**(mu + 0.5) * sum(n**mu - (n-1)**mu)`.
        grda_momentum / grda_weight_decay (defaults `0.0` / `0.0`): gRDAM's Polyak momentum and L2 weight decay.
        grda_calibration_trials (`int`, defaults to `4`): with `target_sparsity > 0`, short runs trying `c`,
            `c * growth`, ... (plus one at `c = 0` for the reference metric); `0` keeps `grda_c` as given.
        grda_calibration_growth (`float`, defaults to `4.0`): factor between the `c` values tried.
        grda_calibration_epochs (`float`, defaults to `1.0`): length of each calibration run.
        grda_calibration_tolerance (`float`, defaults to `0.01`): largest drop of the dev metric a `c` may cost.
        grda_final_cut (`bool`, defaults to `True`): if gRDA ends below `target_sparsity`, cut the smallest weights to
            reach it (the report says so); `False` reports the sparsity gRDA reached.
        gfs_imitation (`str`, defaults to `"local"`): greedy forward selection by reconstructing each layer's output
            (`"local"`), by imitating the task loss to first order (`"global"`), or the better per layer on dev
            (`"auto"`).
        gfs_ffn_keep / gfs_heads_keep (`float`, optional): fraction of FFN units / attention heads kept; when both are
            unset (and `gfs_then` is `"none"`) they follow from `target_sparsity`.
        gfs_budget (`str`, defaults to `"per_layer"`): the keep fractions hold in every layer, or over all layers
            together (`"global"`, units go where they reduce the error most; uneven FFN widths are zero-padded).
        gfs_tolerance (`float`, optional): stop adding units to a layer once the dev accuracy (regression: the dev
            loss) is within this of the unpruned model's; the keep fractions stay the maximum.
        gfs_samples / gfs_dev_samples (defaults `256` / `256`): train examples the selection sees, dev examples for
            `"auto"` and `gfs_tolerance`.
        gfs_then (`str`, defaults to `"none"`): fine-tune the smaller model plainly, or prune its remaining weights
            with a scheduled method (`target_sparsity` is then that method's target).
    """

    pruning_method: str = field(default="pins", metadata={"help": f"One of: {', '.join(sorted(SCORERS))}."})
    target_sparsity: float = field(default=0.8, metadata={"help": "Final fraction of zero prunable weights, in [0, 1)."})
    prunable_modules: list[str] = field(
        default_factory=lambda: list(DEFAULT_PRUNABLE_PATTERNS),
        metadata={"help": "Regular expressions over module names selecting the nn.Linear weights to prune."},
    )
    pruning_threshold: str = field(default="global", metadata={"help": "'global' or 'per_matrix'."})
    pruning_warmup_steps: int = field(default=0, metadata={"help": "Dense optimizer steps before pruning (t_i)."})
    pruning_warmup_epochs: float = field(default=0.0, metadata={"help": "t_i in epochs (wins over the ratio)."})
    pruning_warmup_ratio: float = field(default=0.1, metadata={"help": "t_i as a fraction of all steps."})
    pruning_final_steps: int = field(default=0, metadata={"help": "Optimizer steps at the target at the end (t_f)."})
    pruning_final_ratio: float = field(default=0.3, metadata={"help": "t_f as a fraction of all steps."})
    mask_update_interval: int = field(default=10, metadata={"help": "deltaT: steps per score window / mask update."})
    score_beta1: float = field(default=0.85, metadata={"help": "EMA factor of the smoothed score."})
    score_beta2: float = field(default=0.95, metadata={"help": "EMA factor of the score uncertainty."})
    importance_update: str = field(default="optimizer", metadata={"help": "'optimizer' (paper) or 'sgd' (code)."})
    importance_form: str = field(default="absolute", metadata={"help": "'absolute' (code, default) or 'signed' (paper)."})
    mask_mode: str = field(default="persistent", metadata={"help": "'persistent', 'regrow' or 'behind_mask'."})
    self_regularization: bool = field(default=True, metadata={"help": "Distil from the best dev checkpoint so far."})
    self_regularization_weighting: str = field(
        default="entropy", metadata={"help": "'entropy' (code, default), 'entropy_if_correct' or 'constant'."})
    self_regularization_alpha: float = field(default=0.5, metadata={"help": "Constant teacher weight in [0, 1]."})
    self_regularization_regression_alpha: float = field(
        default=0.0, metadata={"help": "Teacher weight in [0, 1] for regression (one output); 0: no teacher there."}
    )
    self_regularization_temperature: float = field(default=2.0, metadata={"help": "Distillation temperature > 0."})
    self_regularization_teacher: Optional[str] = field(
        default=None, metadata={"help": "A fine-tuned model to start self-regularization from (default: none)."}
    )
    self_regularization_skip_trivial_teacher: bool = field(
        default=False, metadata={"help": "A checkpoint teaches only once its dev score beats every constant prediction."}
    )
    self_regularization_max_sparsity_gap: Optional[float] = field(
        default=None,
        metadata={"help": "Largest sparsity by which the teacher may be denser than the student (default: no limit)."},
    )
    self_regularization_at_target: bool = field(
        default=True, metadata={"help": "Keep distilling at the target sparsity (false: the task loss alone there)."}
    )
    self_regularization_teacher_dtype: str = field(
        default="auto", metadata={"help": "'auto' (bfloat16 where native), 'float32' or 'bfloat16'."}
    )
    movement_lr_weighted: bool = field(default=False, metadata={"help": "Movement scores add -theta*g times the lr."})
    movement_score_update: str = field(default="sum", metadata={"help": "'sum' (paper) or 'adam' (reference code)."})
    soft_movement_l1: float = field(default=0.1, metadata={"help": "L1 on soft-movement scores, x mean |theta*g|."})
    grda_lr: float = field(default=0.01, metadata={"help": "SGD-scale learning rate of the gRDA (prunable) group."})
    grda_c: float = field(default=1e-4, metadata={"help": "gRDA threshold scale c >= 0 (0: plain SGD)."})
    grda_mu: float = field(default=0.51, metadata={"help": "gRDA threshold growth exponent, in (0.5, 1)."})
    grda_momentum: float = field(default=0.0, metadata={"help": "gRDAM Polyak momentum in [0, 1)."})
    grda_weight_decay: float = field(default=0.0, metadata={"help": "gRDAM L2 weight decay >= 0."})
    grda_calibration_trials: int = field(default=4, metadata={"help": "c values tried on short runs (0: none)."})
    grda_calibration_growth: float = field(default=4.0, metadata={"help": "Factor between calibration c values > 1."})
    grda_calibration_epochs: float = field(default=1.0, metadata={"help": "Epochs of each calibration run > 0."})
    grda_calibration_tolerance: float = field(default=0.01, metadata={"help": "Dev metric drop allowed, >= 0."})
    grda_final_cut: bool = field(default=True, metadata={"help": "Magnitude cut to target_sparsity if short of it."})
    gfs_imitation: str = field(default="local", metadata={"help": "'local', 'global' or 'auto'."})
    gfs_ffn_keep: Optional[float] = field(default=None, metadata={"help": "Fraction of FFN units kept, in (0, 1]."})
    gfs_heads_keep: Optional[float] = field(default=None, metadata={"help": "Fraction of heads kept, in (0, 1]."})
    gfs_budget: str = field(default="per_layer", metadata={"help": "'per_layer' or 'global'."})
    gfs_tolerance: Optional[float] = field(default=None, metadata={"help": "Dev accuracy drop to stop at, >= 0."})
    gfs_samples: int = field(default=256, metadata={"help": "Train examples used for the selection, >= 1."})
    gfs_dev_samples: int = field(default=256, metadata={"help": "Dev examples for 'auto' and the tolerance, >= 1."})
    gfs_then: str = field(default="none", metadata={"help": f"'none' or one of: {', '.join(SCHEDULED_METHODS)}."})

    def __post_init__(self):
        # Checked first: TrainingArguments exports ACCELERATE_USE_FSDP / _DEEPSPEED to the environment.
        if self.fsdp or self.deepspeed:
            raise ValueError(f"{'fsdp' if self.fsdp else 'deepspeed'}: {SHARDED_TRAINING_UNSUPPORTED}")
        super().__post_init__()
        checks = [
            ("pruning_method", self.pruning_method in SCORERS, f"one of {', '.join(sorted(SCORERS))}"),
            ("target_sparsity", 0.0 <= self.target_sparsity < 1.0, "a number in [0, 1)"),
            ("pruning_threshold", self.pruning_threshold in THRESHOLDS, f"one of {', '.join(THRESHOLDS)}"),
            ("pruning_warmup_steps", self.pruning_warmup_steps >= 0, "an integer >= 0"),
            ("pruning_warmup_epochs", self.pruning_warmup_epochs >= 0, "a number of epochs >= 0"),
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
            ("movement_score_update", self.movement_score_update in SCORE_UPDATES, f"one of {', '.join(SCORE_UPDATES)}"),
            ("mask_mode", self.mask_mode in MASK_MODES, f"one of {', '.join(MASK_MODES)}"),
            ("self_regularization_weighting", self.self_regularization_weighting in WEIGHTINGS,
             f"one of {', '.join(WEIGHTINGS)}"),
            ("self_regularization_alpha", 0.0 <= self.self_regularization_alpha <= 1.0, "a number in [0, 1]"),
            ("self_regularization_regression_alpha", 0.0 <= self.self_regularization_regression_alpha <= 1.0,
             "a number in [0, 1]"),
            ("self_regularization_temperature", self.self_regularization_temperature > 0, "a number > 0"),
            ("self_regularization_max_sparsity_gap", self.self_regularization_max_sparsity_gap is None
             or 0.0 <= self.self_regularization_max_sparsity_gap < 1.0, "unset or a number in [0, 1)"),
            ("self_regularization_teacher_dtype", self.self_regularization_teacher_dtype in TEACHER_DTYPES,
             f"one of {', '.join(TEACHER_DTYPES)}"),
            ("prunable_modules", bool(self.prunable_modules), "a non-empty list of regular expressions"),
            ("soft_movement_l1", self.soft_movement_l1 >= 0, "a number >= 0"),
            ("grda_lr", self.grda_lr > 0, "a number > 0"),
            ("grda_c", self.grda_c >= 0, "a number >= 0"),
            ("grda_mu", 0.5 < self.grda_mu < 1.0, "a number in (0.5, 1)"),
            ("grda_momentum", 0.0 <= self.grda_momentum < 1.0, "a number in [0, 1)"),
            ("grda_weight_decay", self.grda_weight_decay >= 0, "a number >= 0"),
            ("grda_calibration_trials", self.grda_calibration_trials >= 0, "an integer >= 0"),
            ("grda_calibration_growth", self.grda_calibration_growth > 1, "a number > 1"),
            ("grda_calibration_epochs", self.grda_calibration_epochs > 0, "a number > 0"),
            ("grda_calibration_tolerance", self.grda_calibration_tolerance >= 0, "a number >= 0"),
            ("grda_c", not (self.pruning_method == "grda" and self.grda_calibration_trials > 0 and self.grda_c == 0
                            and self.target_sparsity > 0), "a number > 0 to start the calibration from"),
            ("gfs_imitation", self.gfs_imitation in GFS_IMITATIONS, f"one of {', '.join(GFS_IMITATIONS)}"),
            ("gfs_ffn_keep", self.gfs_ffn_keep is None or 0.0 < self.gfs_ffn_keep <= 1.0, "null or a number in (0, 1]"),
            ("gfs_heads_keep", self.gfs_heads_keep is None or 0.0 < self.gfs_heads_keep <= 1.0,
             "null or a number in (0, 1]"),
            ("gfs_budget", self.gfs_budget in GFS_BUDGETS, f"one of {', '.join(GFS_BUDGETS)}"),
            ("gfs_tolerance", self.gfs_tolerance is None or self.gfs_tolerance >= 0, "null or a number >= 0"),
            ("gfs_samples", self.gfs_samples >= 1, "an integer >= 1"),
            ("gfs_dev_samples", self.gfs_dev_samples >= 1, "an integer >= 1"),
            ("gfs_then", self.gfs_then in ("none", *SCHEDULED_METHODS), f"one of none, {', '.join(SCHEDULED_METHODS)}"),
            ("gfs_then", not (self.pruning_method == "gfs" and self.gfs_then != "none" and self.gfs_ffn_keep is None
                              and self.gfs_heads_keep is None),
             "'none' unless gfs_ffn_keep or gfs_heads_keep is set (with gfs_then, target_sparsity is the unstructured "
             "target of the remaining weights)"),
        ]
        for name, ok, accepted in checks:
            if not ok:
                raise ValueError(f"{name}: expected {accepted}, got {getattr(self, name)!r}")
        for pattern in self.prunable_modules:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"prunable_modules: {pattern!r} is not a valid regular expression ({exc})") from None
        if self.self_regularization_teacher is not None and not self.self_regularization:
            raise ValueError("self_regularization_teacher: expected null when self_regularization is false (a teacher "
                             "is only used by self-regularization)")
        if self.self_regularization_skip_trivial_teacher and not self.self_regularization:
            raise ValueError("self_regularization_skip_trivial_teacher: expected false when self_regularization is false")
        if self.self_regularization_max_sparsity_gap is not None and not self.self_regularization:
            raise ValueError("self_regularization_max_sparsity_gap: expected unset when self_regularization is false")
        if not self.self_regularization_at_target and not self.self_regularization:
            raise ValueError("self_regularization_at_target: expected true (the default) when self_regularization is false")
        if self.self_regularization and self.eval_strategy == "no":
            raise ValueError("self_regularization needs evaluations on the dev split: set eval_strategy to 'steps' or 'epoch'")
        if self.load_best_model_at_end:
            raise ValueError(
                "load_best_model_at_end: not supported; PINSTrainer itself keeps the best dev checkpoint among those "
                "at the target sparsity"
            )

    def self_regularizes(self, is_regression: bool) -> bool:
        """Whether a run distils from its best dev checkpoint: regression tasks only with a teacher weight > 0."""
        return self.self_regularization and (not is_regression or self.self_regularization_regression_alpha > 0)


def unstructured_method(args) -> str:
    """The scorer the Trainer's pruner uses: `gfs_then` after greedy forward selection, else the method itself."""
    if args.pruning_method == "gfs" and getattr(args, "gfs_then", "none") != "none":
        return args.gfs_then
    return args.pruning_method


def pruning_field_names() -> list[str]:
    """The fields `PINSConfig` adds to `TrainingArguments`, in declaration order."""
    base = {f.name for f in fields(TrainingArguments)}
    return [f.name for f in fields(PINSConfig) if f.name not in base]
