"""The optional parts of hf_pins (pyproject extras), the modules each needs, and one clear error where one is missing.

`export` (optimum's ONNX exporter, onnx, ONNX Runtime) pins transformers below 4.58 through optimum-onnx, so the core
leaves it out; `deepsparse` exists only on Linux x86-64 with Python <= 3.11. Commands that need a part check for it
before any work, so a missing part is one `error:` line that says what to install, not a traceback.
"""

from __future__ import annotations

import importlib.util
import sys

from .errors import UserError

EXTRAS = {"export": ("optimum.exporters.onnx", "onnx", "onnxruntime"), "deepsparse": ("deepsparse",)}


def missing_module(extra: str) -> str | None:
    """The first module of `extra` that is not installed, or None (finds, does not import: cheap)."""
    for name in EXTRAS[extra]:
        if name in sys.modules and sys.modules[name] is None:  # blocked: importing it raises ImportError
            return name
        try:
            if importlib.util.find_spec(name) is None:
                return name
        except ModuleNotFoundError:  # a parent package is absent (optimum for optimum.exporters.onnx)
            return name
    return None


def require(extra: str, what: str) -> None:
    """Raise a `UserError` naming the pip command when `extra` is not installed."""
    name = missing_module(extra)
    if name is not None:
        raise UserError(f"{what} needs the {extra} part of hf_pins ({name} is not installed): "
                        f"pip install 'hf_pins[{extra}]'")
