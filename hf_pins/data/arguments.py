"""`DataArguments`: the recipe's `data:` section, what data a run reads and how it is split and tokenized."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from ..methods.base import SettingsError


@dataclass
class DataArguments:
    """
    Parameters that control the data:
        glue_dir (`str`, *optional*):
            A local copy of GLUE in the classic `glue_data/` layout (`<dir>/RTE/train.tsv`, ...); unset, GLUE comes
            from the Hugging Face Hub (`nyu-mll/glue`).
        dev_fraction (`float`, *optional*, defaults to `0.1`):
            The seeded, label-stratified fraction of train held out as the dev split (checkpoints, teacher).
        split_seed (`int`, *optional*, defaults to `42`):
            Seed of that split.
        max_length (`int`, *optional*, defaults to `128`):
            Tokens per example after truncation.
        max_train_samples / max_eval_samples (`int`, *optional*):
            Keep only the first N train / dev and test examples (quick runs).
    """

    glue_dir: Optional[str] = field(default=None, metadata={"help": "A local GLUE folder; unset: the Hub's nyu-mll/glue."})
    dev_fraction: float = field(default=0.1, metadata={"help": "Fraction of train held out as dev, in (0, 1)."})
    split_seed: int = field(default=42, metadata={"help": "Seed of the train/dev split."})
    max_length: int = field(default=128, metadata={"help": "Tokens per example after truncation, in [8, 4096]."})
    max_train_samples: Optional[int] = field(default=None, metadata={"help": "Keep only the first N train examples."})
    max_eval_samples: Optional[int] = field(default=None, metadata={"help": "Keep only the first N dev/test examples."})

    def __post_init__(self):
        rules = {
            "dev_fraction": (0.0 < self.dev_fraction < 1.0, "a number in (0, 1)"),
            "max_length": (8 <= self.max_length <= 4096, "an integer in [8, 4096]"),
            "max_train_samples": (self.max_train_samples is None or self.max_train_samples >= 1, "null or an integer >= 1"),
            "max_eval_samples": (self.max_eval_samples is None or self.max_eval_samples >= 1, "null or an integer >= 1"),
        }
        for key, (ok, accepted) in rules.items():
            if not ok:
                raise SettingsError(key, f"expected {accepted}, got {getattr(self, key)!r}")
