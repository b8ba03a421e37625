"""Paths hf-pins understands: `pkg:PACKAGE/SUBDIR` (folders shipped inside installed Python packages, such as the
offline MiniLM checkpoint and the demo data, so recipes can name them without knowing where pip put them) and the file
names a model folder holds."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from .errors import UserError

PACKAGE_SCHEME = "pkg:"
# The recipe a model folder was trained with: written by `train`, read by `push`, the model card and `--resume`.
RECIPE_FILE = "recipe.yaml"


def resolve_package_path(value: str, key: str) -> str:
    """A plain path or id as is; `pkg:PACKAGE/SUBDIR` to that folder inside the installed package."""
    if not value.startswith(PACKAGE_SCHEME):
        return value
    package, _, subdir = value[len(PACKAGE_SCHEME):].partition("/")
    spec = importlib.util.find_spec(package) if package and "." not in package else None
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"{key} {value!r}: Python package {package!r} is not installed")
    path = Path(list(spec.submodule_search_locations)[0]) / subdir
    if not path.exists():
        raise UserError(f"{key} {value!r}: {path} does not exist")
    return str(path)

