"""Settings that an investigation of the method added and that showed no gain beyond noise (docs/research.md).

They stay so that the investigation's runs can be repeated, under the recipe's `pruning.experimental` and the config's
`experimental` field, and setting any of them warns. They may change or go in any release.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from typing import Optional

from .methods.base import check_settings

IMPORTANCE_UPDATES = ("optimizer", "sgd")
IMPORTANCE_FORMS = ("absolute", "signed")


@dataclass
class ExperimentalSettings:
    """The recipe's `pruning.experimental` mapping."""

    importance_update: str = field(default="optimizer", metadata={
        "help": "PINS's theta(t+1): 'optimizer' (the optimizer's real update, the paper) or 'sgd' (theta - lr * g, "
                "the released code's stand-in)."})
    importance_form: str = field(default="absolute", metadata={
        "help": "PINS ranks by 'absolute' (|loss change|, the released code) or 'signed' (the loss change, as the "
                "paper writes it)."})
    skip_trivial_teacher: bool = field(default=False, metadata={
        "help": "A checkpoint becomes the teacher only once its dev score beats every constant prediction."})
    max_sparsity_gap: Optional[float] = field(default=None, metadata={
        "help": "Largest sparsity by which the teacher may be denser than the student; beyond it the evaluated "
                "model becomes the teacher whatever its score (null: no limit, the paper's rule)."})
    distil_at_target: bool = field(default=True, metadata={
        "help": "Keep distilling from the teacher once the target sparsity is reached (false: the task loss alone "
                "there)."})
    regression_alpha: float = field(default=0.0, metadata={
        "help": "Weight in [0, 1] of the squared error to the teacher on regression tasks; 0 (the default) trains "
                "regression tasks without self-regularization."})
    entropy_if_correct: bool = field(default=False, metadata={
        "help": "With the entropy weighting: the teacher weight only where the student predicts the label, 0 where "
                "it does not."})

    def __post_init__(self):
        check_settings(self, {
            "importance_update": (self.importance_update in IMPORTANCE_UPDATES,
                                  f"one of {', '.join(IMPORTANCE_UPDATES)}"),
            "importance_form": (self.importance_form in IMPORTANCE_FORMS, f"one of {', '.join(IMPORTANCE_FORMS)}"),
            "max_sparsity_gap": (self.max_sparsity_gap is None or 0.0 <= self.max_sparsity_gap < 1.0,
                                 "null or a number in [0, 1)"),
            "regression_alpha": (0.0 <= self.regression_alpha <= 1.0, "a number in [0, 1]"),
        })

    def changed(self) -> list[str]:
        """The settings given a value other than their default."""
        return [f.name for f in dataclasses.fields(self) if getattr(self, f.name) != f.default]

    def warn_if_used(self) -> None:
        changed = self.changed()
        if changed:
            warnings.warn(f"pruning.experimental: {', '.join(changed)} set; experimental settings may change or go in "
                          "any release (docs/research.md)", UserWarning, stacklevel=3)
