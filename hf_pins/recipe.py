"""Recipes: plain YAML (`yaml.safe_load`), validated completely before any work starts.

A recipe has five sections, each read into the dataclass that owns it, so the keys are the dataclasses' fields:
  model:    `ModelArguments` (`model: NAME` is short for `model: {name_or_path: NAME}`)
  task:     a GLUE task name
  data:     `DataArguments`
  pruning:  the fields `PINSConfig` adds to `TrainingArguments`, a leading `pruning_` dropped
  training: any other `TrainingArguments` field

Values are typed as `HfArgumentParser` types the command line (`hf_pins.arguments`); every problem raises
`RecipeError` naming the file, the key path and what is accepted, before any model or data is loaded.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from . import compat
from .arguments import ValueProblem, closest, convert, describe, from_mapping, init_fields, short
from .config import ModelArguments, PINSConfig, check_optimizer, pruning_field_names
from .data.arguments import DataArguments
from .errors import RecipeError, UserError
from .methods import SettingsError

SECTIONS = ("model", "task", "data", "pruning", "training")


def recipe_key(field_name: str) -> str:
    """The `pruning:` key of a `PINSConfig` field."""
    return field_name[len("pruning_"):] if field_name.startswith("pruning_") else field_name


PRUNING_FIELDS: dict[str, str] = {recipe_key(n): n for n in pruning_field_names()}  # recipe key -> PINSConfig field
TRAINING_FIELDS = [n for n in init_fields(PINSConfig) if n not in PRUNING_FIELDS.values()]

# Keys of earlier recipes, with where their meaning went.
RENAMED_PRUNING: dict[str, str] = {
    **{f"warmup_{unit}": f"renamed to pruning.dense_warmup_{unit} (training.warmup_{unit} is the learning-rate warm-up)"
       for unit in ("steps", "epochs", "ratio")},
    **{old: f"moved to pruning.experimental.{new} (experimental)" for old, new in {
        "importance_update": "importance_update", "importance_form": "importance_form",
        "self_regularization_skip_trivial_teacher": "skip_trivial_teacher",
        "self_regularization_max_sparsity_gap": "max_sparsity_gap",
        "self_regularization_at_target": "distil_at_target",
        "self_regularization_regression_alpha": "regression_alpha"}.items()},
    **{f"{prefix}_{name}": f"moved to pruning.method_args.{name} (with method: {method})"
       for method, prefix, names in (
           ("grda", "grda", ("lr", "c", "mu", "momentum", "weight_decay", "calibration_trials", "calibration_growth",
                             "calibration_epochs", "calibration_tolerance", "final_cut")),
           ("gfs", "gfs", ("imitation", "ffn_keep", "heads_keep", "budget", "tolerance", "samples", "dev_samples",
                           "then")),
           ("movement", "movement", ("lr_weighted", "score_update")),
           ("soft_movement", "soft_movement", ("l1",)))
       for name in names},
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
TRAINING_FORBIDDEN = {"load_best_model_at_end": "PINSTrainer keeps the best checkpoint at the target sparsity itself"}

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
            "pruning": copy.deepcopy(self.pruning),
            "training": dict(self.training),
        }

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @property
    def model_args(self) -> ModelArguments:
        return ModelArguments(**self.model)

    @property
    def data_args(self) -> DataArguments:
        return DataArguments(**self.data)

    def training_args(self, output_dir: str | None = None) -> PINSConfig:
        """The `PINSConfig` this recipe describes (raises `RecipeError` naming the key for a value it refuses)."""
        kwargs = {PRUNING_FIELDS[k]: copy.deepcopy(v) for k, v in self.pruning.items()}
        kwargs.update(compat.training_arguments_kwargs(copy.deepcopy(self.training)))
        if output_dir is not None:
            kwargs["output_dir"] = output_dir
        try:
            return PINSConfig(**kwargs)
        except SettingsError as exc:
            raise RecipeError(f"{self.source}: {config_key_path(exc.key)}: {_message(exc)}") from None
        except (ValueError, TypeError) as exc:  # TrainingArguments' own checks name no field we could map
            raise RecipeError(f"{self.source}: training: {_first_line(exc)}") from None


def config_key_path(field_path: str) -> str:
    """`method_args.c` -> `pruning.method_args.c`; `learning_rate` -> `training.learning_rate`."""
    head, _, rest = field_path.partition(".")
    if head in PRUNING_FIELDS.values():
        return f"pruning.{recipe_key(head)}" + (f".{rest}" if rest else "")
    return f"training.{field_path}"


def _message(exc: SettingsError) -> str:
    return str(exc)[len(exc.key) + 2:]


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _section_dataclass(cls: type, values: Any, where: str, source: str) -> dict:
    """A `model:` or `data:` section through its dataclass; returns the resolved section (defaults filled in)."""
    try:
        kwargs = from_mapping(cls, values, where)
    except RecipeError as exc:
        raise RecipeError(f"{source}: {exc}") from None
    missing = [f.name for f in dataclasses.fields(cls)
               if f.init and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
               and f.name not in kwargs]
    if missing:
        raise RecipeError(f"{source}: {where}.{missing[0]}: required")
    try:
        return dataclasses.asdict(cls(**kwargs))
    except SettingsError as exc:
        raise RecipeError(f"{source}: {where}.{exc.key}: {_message(exc)}") from None
    except RecipeError as exc:  # DataArguments names its keys itself
        raise RecipeError(f"{source}: {exc}") from None


def _pruning_section(values: Any, source: str) -> dict:
    values = _mapping_or_empty(values, "pruning", source)
    out = {}
    for key, value in values.items():
        if key in RENAMED_PRUNING:
            raise RecipeError(f"{source}: pruning.{key}: {RENAMED_PRUNING[key]}")
        if key not in PRUNING_FIELDS:
            hint = (f"; {key} is a training key: training.{key}" if key in TRAINING_FIELDS
                    else closest(str(key), PRUNING_FIELDS))
            raise RecipeError(f"{source}: pruning.{key}: unknown key{hint}")
        out[key] = _convert(PRUNING_FIELDS[key], value, f"pruning.{key}", source)
    return out


def _training_section(values: Any, source: str) -> dict:
    values = _mapping_or_empty(values, "training", source)
    out = {}
    for key, value in values.items():
        if key in TRAINING_FORBIDDEN:
            raise RecipeError(f"{source}: training.{key}: not supported; {TRAINING_FORBIDDEN[key]}")
        if key not in TRAINING_FIELDS and set(compat.training_arguments_kwargs({key: value})) != {key}:
            out[key] = value  # a key this transformers release renamed; compat translates it (warmup_ratio in 5.x)
            continue
        if key not in TRAINING_FIELDS:
            if key in PRUNING_FIELDS.values() or key in PRUNING_FIELDS:
                hint = f"; pruning fields go under pruning: as pruning.{recipe_key(key)}"
            else:
                hint = closest(str(key), TRAINING_FIELDS)
            raise RecipeError(f"{source}: training.{key}: unknown key (any TrainingArguments field){hint}")
        out[key] = _convert(key, value, f"training.{key}", source)
    return out


def _convert(field_name: str, value: Any, where: str, source: str) -> Any:
    try:
        return convert(PINSConfig, field_name, value)
    except ValueProblem:
        raise RecipeError(f"{source}: {where}: expected {describe(PINSConfig, field_name)}, got {short(value)}") from None


def _mapping_or_empty(values: Any, name: str, source: str) -> dict:
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise RecipeError(f"{source}: {name}: expected a mapping of keys, got {type(values).__name__}")
    return values


def _pruning_defaults() -> dict[str, Any]:
    out = {}
    for key, name in PRUNING_FIELDS.items():
        f = next(f for f in dataclasses.fields(PINSConfig) if f.name == name)
        out[key] = f.default_factory() if f.default is dataclasses.MISSING else f.default
    return out


def validate_recipe(raw: Any, source: str = "<recipe>") -> Recipe:
    """Check a parsed recipe completely; return the resolved `Recipe` or raise `RecipeError`."""
    if not isinstance(raw, dict):
        raise RecipeError(f"{source}: expected a mapping with keys {', '.join(SECTIONS)}, got {type(raw).__name__}")
    for key in raw:
        if key not in SECTIONS:
            raise RecipeError(f"{source}: {key}: unknown top-level key; accepted: {', '.join(SECTIONS)}"
                              f"{closest(str(key), SECTIONS)}")
    if "model" not in raw:
        raise RecipeError(f"{source}: model: required (a model id or path, or a mapping with name_or_path)")
    model_values = {"name_or_path": raw["model"]} if isinstance(raw["model"], str) else raw["model"]
    model = _section_dataclass(ModelArguments, model_values, "model", source)

    task = raw.get("task")
    if not isinstance(task, str):
        raise RecipeError(f"{source}: task: expected a GLUE task name, text-classification or regression, got "
                          f"{short(task)}")
    data = _section_dataclass(DataArguments, raw.get("data"), "data", source)
    try:
        DataArguments(**data).check_task(task)
    except RecipeError as exc:
        raise RecipeError(f"{source}: {exc}") from None

    pruning = {**_pruning_defaults(), **_pruning_section(raw.get("pruning"), source)}
    given_training = _training_section(raw.get("training"), source)
    training = dict(TRAINING_DEFAULTS)
    if "metric_for_best_model" not in given_training:
        from .metrics import greater_is_better

        metric = default_metric(task, data)
        training["metric_for_best_model"] = metric
        training["greater_is_better"] = greater_is_better(metric)
    training.update(given_training)

    recipe = Recipe(model=model, task=task, data=data, pruning=pruning, training=training, source=source)
    args = recipe.training_args()  # TrainingArguments' and PINSConfig's own checks, before any work starts
    try:
        check_optimizer(args)
    except SettingsError as exc:
        raise RecipeError(f"{source}: {config_key_path(exc.key)}: {_message(exc)}") from None
    recipe.pruning["method_args"] = dict(args.method_args)
    recipe.pruning["experimental"] = dict(args.experimental)
    recipe.pruning["structured_args"] = dict(args.structured_args)
    return recipe


def default_metric(task: str, data: dict) -> str:
    """The metric that chooses checkpoints when the recipe does not say: a GLUE task's own, else the first of
    `data.metrics`, else what the task's default metrics start with."""
    from .data.tasks import REGRESSION, is_glue_task
    from .metrics import main_metric

    if is_glue_task(task):
        return main_metric(task)
    if data.get("metrics"):
        return data["metrics"][0]
    return "pearson" if task == REGRESSION else "accuracy"


def apply_overrides(raw: Any, overrides: list[str], source: str = "--set") -> dict:
    """Apply `key.path=value` overrides (values parsed as YAML) to a parsed recipe, returning a new dict."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise RecipeError(f"expected a recipe mapping with keys {', '.join(SECTIONS)}, got {type(raw).__name__}; "
                          f"{source} can only change keys of a mapping")
    raw = copy.deepcopy(raw)
    for item in overrides:
        if "=" not in item:
            raise RecipeError(f"{source} {short(item)}: expected key.path=value, e.g. pruning.target_sparsity=0.9")
        path, text = item.split("=", 1)
        keys = path.strip().split(".")
        if not all(keys) or keys[0] not in SECTIONS:
            raise RecipeError(f"{source} {short(path)}: the key path must start with one of {', '.join(SECTIONS)}"
                              f"{closest(keys[0], SECTIONS)}")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            value = text
        node = raw
        for key in keys[:-1]:
            if key == "model" and isinstance(node.get(key), str):  # `model: NAME` shorthand, then model.x=...
                node[key] = {"name_or_path": node[key]}
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        node[keys[-1]] = value
    return raw


def read_recipe_file(path: str | Path) -> Any:
    """Parse a YAML file with `safe_load` only: tags that would construct Python objects are refused."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise RecipeError(f"{path}: no such recipe file") from None
    except IsADirectoryError:
        raise RecipeError(f"{path}: is a directory, not a recipe file (a model directory needs a recipe.yaml)") from None
    except OSError as exc:
        raise RecipeError(f"{path}: cannot be read ({exc.strerror or exc.__class__.__name__})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise RecipeError(f"{path} line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x})") from None
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
        try:
            raw = apply_overrides(raw, overrides)
        except RecipeError as exc:
            raise RecipeError(f"{source}: {exc}") from None
    try:
        return validate_recipe(raw, source=str(source))
    except RecipeError:
        raise
    except UserError as exc:
        raise RecipeError(f"{source}: {exc}") from None
