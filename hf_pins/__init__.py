"""hf_pins: fine-tune and prune BERT-family encoders in one run, with PINS and the methods people compare it to."""

from .config import PINSConfig
from .errors import DataError, ModelError, RecipeError, UserError
from .recipe import Recipe, load_recipe
from .trainer import PINSTrainer

__version__ = "0.1.0"

__all__ = ["PINSConfig", "PINSTrainer", "Recipe", "RecipeError", "DataError", "ModelError", "UserError", "load_recipe"]
