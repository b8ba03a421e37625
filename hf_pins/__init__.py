"""hf_pins: fine-tune and prune BERT-family encoders in one run, with PINS and the methods people compare it to.

Names are imported lazily, so `import hf_pins.data` or the command line's help do not pay for torch and transformers.
"""

from __future__ import annotations

import importlib

from .errors import DataError, ModelError, RecipeError, UserError

__version__ = "0.1.0"

_LAZY = {
    "PINSConfig": "hf_pins.config",
    "PINSTrainer": "hf_pins.trainer",
    "Recipe": "hf_pins.recipe",
    "load_recipe": "hf_pins.recipe",
}

__all__ = ["DataError", "ModelError", "RecipeError", "UserError", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hf_pins' has no attribute {name!r}")
