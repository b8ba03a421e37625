"""Recipes: plain YAML (`yaml.safe_load`), validated completely before any work starts.

Top-level keys:
  model:    name_or_path (required), revision, tokenizer, trust_remote_code
  task:     a GLUE task name
  data:     glue_dir, dev_fraction, split_seed, max_length, max_train_samples, max_eval_samples
  pruning:  method, target_sparsity and the other `PINSConfig` pruning fields, `pruning_` prefix dropped
  training: any `TrainingArguments` field

Every problem raises `RecipeError` naming the file, the key path and what is accepted.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import compat
from .config import PINSConfig, pruning_field_names
from .errors import RecipeError, UserError

SECTIONS = ("model", "task", "data", "pruning", "training")

MODEL_KEYS: dict[str, tuple[Any, Any]] = {  # key: (type, default); `...` marks a required key
    "name_or_path": (str, ...),
    "revision": (typing.Optional[str], None),
    "tokenizer": (typing.Optional[str], None),
    "trust_remote_code": (bool, False),
}
DATA_KEYS: dict[str, tuple[Any, Any]] = {
    "glue_dir": (typing.Optional[str], None),
    "dev_fraction": (float, 0.1),
    "split_seed": (int, 42),
    "max_length": (int, 128),
    "max_train_samples": (typing.Optional[int], None),
    "max_eval_samples": (typing.Optional[int], None),
}
DATA_RANGES = {
    "dev_fraction": (lambda v: 0.0 < v < 1.0, "a number in (0, 1)"),
    "max_length": (lambda v: 8 <= v <= 4096, "an integer in [8, 4096]"),
    "max_train_samples": (lambda v: v is None or v >= 1, "null or an integer >= 1"),
    "max_eval_samples": (lambda v: v is None or v >= 1, "null or an integer >= 1"),
}
# What a recipe gets when it does not say: evaluate on dev regularly (self-regularization and checkpoint choice
# need it), keep a few checkpoints, log without third-party trackers.
TRAINING_DEFAULTS: dict[str, Any] = {
    "eval_strategy": "steps",
    "eval_steps": 50,
    "save_strategy": "steps",
    "save_steps": 50,
    "save_total_limit": 2,
    "logging_steps": 10,
    "report_to": "none",
}
# TrainingArguments fields that only make sense set by the tool, not the recipe.
TRAINING_FORBIDDEN = {"load_best_model_at_end": "PINSTrainer keeps the best checkpoint at the target sparsity itself"}


def _recipe_key(field_name: str) -> str:
    return field_name[len("pruning_"):] if field_name.startswith("pruning_") else field_name


PRUNING_KEYS: dict[str, str] = {_recipe_key(n): n for n in pruning_field_names()}  # recipe key -> PINSConfig field
_TYPE_HINTS = typing.get_type_hints(PINSConfig)
_INIT_FIELDS = {f.name: f for f in dataclasses.fields(PINSConfig) if f.init}
TRAINING_KEYS = sorted(n for n in _INIT_FIELDS if n not in PRUNING_KEYS.values())


def _describe(hint) -> str:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        enums = [a for a in args if isinstance(a, type) and issubclass(a, enum.Enum)]
        return " or ".join(_describe(a) for a in (enums or args))
    if origin in (list, typing.List):
        return "a list"
    if origin in (dict, typing.Dict):
        return "a mapping"
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return "one of " + ", ".join(str(m.value) for m in hint)
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string", type(None): "null"}.get(
        hint, getattr(hint, "__name__", str(hint))
    )


def _matches(value, hint) -> bool:
    """Whether a YAML value fits a field's type hint (ints count as floats, bools never as numbers)."""
    if hint is Any:
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        enums = [a for a in args if isinstance(a, type) and issubclass(a, enum.Enum)]
        if enums and isinstance(value, str):  # `Union[IntervalStrategy, str]` means "one of the enum's values"
            return any(_matches(value, e) for e in enums)
        return any(_matches(value, a) for a in args)
    if origin in (list, typing.List):
        args = typing.get_args(hint)
        return isinstance(value, list) and (not args or all(_matches(v, args[0]) for v in value))
    if origin in (dict, typing.Dict):
        return isinstance(value, dict)
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return isinstance(value, str) and value in {str(m.value) for m in hint}
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True  # an exotic hint we cannot check here; TrainingArguments validates it


def _coerce(value, hint):
    """Undo two YAML 1.1 surprises: `3e-5` is read as a string, and `no` (as in `save_strategy: no`) as false."""
    args = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    enums = [a for a in args if isinstance(a, type) and issubclass(a, enum.Enum)]
    if isinstance(value, bool) and enums and bool not in args:
        word = "yes" if value else "no"
        if any(word in {str(m.value) for m in e} for e in enums):
            return word
    wants_float = float in args
    if wants_float and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


@dataclass
class Recipe:
    """A validated recipe. `to_dict()` is the resolved form written next to every trained model."""

    model: dict[str, Any]
    task: str
    data: dict[str, Any]
    pruning: dict[str, Any]
    training: dict[str, Any]
    source: str = "<recipe>"

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": dict(self.model),
            "task": self.task,
            "data": dict(self.data),
            "pruning": dict(self.pruning),
            "training": dict(self.training),
        }

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def training_args(self, output_dir: str | None = None) -> PINSConfig:
        """The `PINSConfig` this recipe describes (raises `RecipeError` for values TrainingArguments refuses)."""
        kwargs = {PRUNING_KEYS[k]: copy.deepcopy(v) for k, v in self.pruning.items()}
        kwargs.update(compat.training_arguments_kwargs(copy.deepcopy(self.training)))
        if output_dir is not None:
            kwargs["output_dir"] = output_dir
        try:
            return PINSConfig(**kwargs)
        except (ValueError, TypeError) as exc:
            message = str(exc).strip().splitlines()[0]
            for key, name in PRUNING_KEYS.items():
                if message.startswith(f"{name}:"):
                    raise RecipeError(f"{self.source}: pruning.{key}:{message[len(name) + 1:]}") from None
            field_name = message.split(":", 1)[0]
            if field_name in TRAINING_KEYS:
                raise RecipeError(f"{self.source}: training.{message}") from None
            raise RecipeError(f"{self.source}: training: {message}") from None


def _section(raw: dict, name: str, source: str) -> dict:
    value = raw.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RecipeError(f"{source}: {name}: expected a mapping of keys, got {type(value).__name__}")
    return value


def _check_keys(section: str, given: dict, spec: dict[str, tuple[Any, Any]], source: str) -> dict:
    out = {}
    for key in given:
        if key not in spec:
            raise RecipeError(f"{source}: {section}.{key}: unknown key; accepted: {', '.join(spec)}")
    for key, (hint, default) in spec.items():
        if key not in given:
            if default is ...:
                raise RecipeError(f"{source}: {section}.{key}: required ({_describe(hint)})")
            out[key] = default
            continue
        value = _coerce(given[key], hint)
        if not _matches(value, hint):
            raise RecipeError(f"{source}: {section}.{key}: expected {_describe(hint)}, got {value!r}")
        out[key] = float(value) if hint is float else value
    return out


def validate_recipe(raw: Any, source: str = "<recipe>") -> Recipe:
    """Check a parsed recipe completely; return the resolved `Recipe` or raise `RecipeError`."""
    from .data.tasks import GLUE_TASKS

    if not isinstance(raw, dict):
        raise RecipeError(f"{source}: expected a mapping with keys {', '.join(SECTIONS)}, got {type(raw).__name__}")
    for key in raw:
        if key not in SECTIONS:
            raise RecipeError(f"{source}: {key}: unknown top-level key; accepted: {', '.join(SECTIONS)}")
    if "model" not in raw:
        raise RecipeError(f"{source}: model: required (a mapping with name_or_path)")
    model = _check_keys("model", _section(raw, "model", source), MODEL_KEYS, source)
    if not model["name_or_path"].strip():
        raise RecipeError(f"{source}: model.name_or_path: expected a model id or path, got an empty string")

    task = raw.get("task")
    if not isinstance(task, str) or task not in GLUE_TASKS:
        raise RecipeError(f"{source}: task: expected one of {', '.join(GLUE_TASKS)}, got {task!r}")

    data = _check_keys("data", _section(raw, "data", source), DATA_KEYS, source)
    for key, (ok, accepted) in DATA_RANGES.items():
        if not ok(data[key]):
            raise RecipeError(f"{source}: data.{key}: expected {accepted}, got {data[key]!r}")

    pruning_spec = {k: (_TYPE_HINTS[n], _INIT_FIELDS[n].default if _INIT_FIELDS[n].default is not dataclasses.MISSING
                        else _INIT_FIELDS[n].default_factory()) for k, n in PRUNING_KEYS.items()}
    pruning = _check_keys("pruning", _section(raw, "pruning", source), pruning_spec, source)

    given_training = _section(raw, "training", source)
    given_training = {k: _coerce(v, _TYPE_HINTS.get(k)) for k, v in given_training.items()}
    for key, value in compat.training_arguments_kwargs(given_training).items():
        if key in TRAINING_FORBIDDEN:
            raise RecipeError(f"{source}: training.{key}: not supported; {TRAINING_FORBIDDEN[key]}")
        if key not in _INIT_FIELDS or key in PRUNING_KEYS.values():
            hint = f" (pruning fields go under pruning: as pruning.{_recipe_key(key)})" if key in PRUNING_KEYS.values() else ""
            raise RecipeError(f"{source}: training.{key}: unknown key; accepted: any TrainingArguments field{hint}")
        if not _matches(value, _TYPE_HINTS[key]):
            raise RecipeError(f"{source}: training.{key}: expected {_describe(_TYPE_HINTS[key])}, got {value!r}")
    training = dict(TRAINING_DEFAULTS)
    if "metric_for_best_model" not in given_training:
        from .metrics.glue import main_metric

        training["metric_for_best_model"] = main_metric(task)
        training["greater_is_better"] = True
    training.update(given_training)

    recipe = Recipe(model=model, task=task, data=data, pruning=pruning, training=training, source=source)
    recipe.training_args()  # TrainingArguments' own checks, before any work starts
    return recipe


def apply_overrides(raw: dict, overrides: list[str], source: str = "--set") -> dict:
    """Apply `key.path=value` overrides (values parsed as YAML) to a parsed recipe, returning a new dict."""
    raw = copy.deepcopy(raw) if isinstance(raw, dict) else {}
    for item in overrides:
        if "=" not in item:
            raise RecipeError(f"{source} {item!r}: expected key.path=value, e.g. pruning.target_sparsity=0.9")
        path, text = item.split("=", 1)
        keys = path.strip().split(".")
        if not all(keys) or keys[0] not in SECTIONS:
            raise RecipeError(f"{source} {path!r}: the key path must start with one of {', '.join(SECTIONS)}")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            value = text
        node = raw
        for key in keys[:-1]:
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        node[keys[-1]] = value
    return raw


def read_recipe_file(path: str | Path) -> Any:
    """Parse a YAML file with `safe_load` only: tags that would construct Python objects are refused."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError(f"{path}: no such recipe file") from None
    except IsADirectoryError:
        raise RecipeError(f"{path}: is a directory, not a recipe file (a model directory needs a recipe.yaml)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError(f"{path}: cannot be read ({exc.__class__.__name__})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RecipeError(f"{path}{where}: not valid YAML ({problem})") from None


def _resolve_source(source: str | Path) -> Path:
    """A local file as is; anything else (model dir, bundled name, hf://...) through `hf_pins.hub`."""
    path = Path(source)
    if path.is_file():
        return path
    from .hub import resolve_recipe_source  # Hub client only when the source is not a plain file

    return Path(resolve_recipe_source(str(source)))


def load_recipe(source: str | Path, overrides: list[str] | None = None) -> Recipe:
    """Load, override and validate a recipe from a file, a model directory, a bundled name or `hf://` reference."""
    path = _resolve_source(source)
    raw = read_recipe_file(path)
    if overrides:
        raw = apply_overrides(raw, overrides)
    try:
        return validate_recipe(raw, source=str(source))
    except RecipeError:
        raise
    except UserError as exc:
        raise RecipeError(f"{source}: {exc}") from None
