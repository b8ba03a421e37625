"""The output folder of a training run: may it be written, what a resumed run continues, what `--overwrite` replaces.

A run writes its resolved recipe into the folder before training starts, so that `--resume` can compare: a resumed
run that would train under other settings than the ones its checkpoint was made with (another target sparsity, method,
learning rate...) is refused, naming the key and both values, unless the user passes `--allow-changes`. Keys that
only change logging, checkpoint keeping or where files are read from may change freely.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path
from typing import Any

import yaml
from transformers.trainer_utils import get_last_checkpoint

from . import io
from .errors import UserError
from .paths import RECIPE_FILE
from .recipe import Recipe
from .trainer import STAGING_DIR

# Keys a resumed run may change: they do not shape the trained model.
RESUMABLE_CHANGES = {
    "data.glue_dir",
    *(f"training.{k}" for k in (
        "output_dir", "logging_steps", "logging_strategy", "logging_first_step", "report_to", "run_name",
        "disable_tqdm", "save_steps", "save_strategy", "save_total_limit", "dataloader_num_workers",
        "dataloader_pin_memory", "per_device_eval_batch_size", "push_to_hub", "hub_model_id", "hub_strategy",
        "hub_token", "hub_private_repo")),
}
# Files a run of hf-pins writes into its folder besides `save_pretrained`'s; `--overwrite` removes them with the old
# checkpoints, so nothing of the replaced run can come back (a later --resume would otherwise find its checkpoints).
RUN_FILES = ("gfs_structure.json", "grda_calibration.json")
# What a checkpoint must hold for `--resume`; the Trainer fails deep inside torch on a missing or truncated one.
CHECKPOINT_JSON = ("trainer_state.json", "pruning_state.json")
CHECKPOINT_SAFETENSORS = ("pruning_state.safetensors",)
CHECKPOINT_TORCH = ("optimizer.pt", "scheduler.pt")


def check_output_dir(out: Path, *, resume: bool, overwrite: bool) -> str | None:
    """Refuse an unusable or non-empty folder unless asked; with `resume`, return the checkpoint to resume from
    (checked file by file). Changes nothing."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--output-dir {out} is a file; expected a folder")
    if not resume:
        io.check_output_dir(out, flag="--output-dir", overwrite=overwrite,
                            hint="pass --overwrite to replace the run in it or --resume to continue it")
        return None
    last = get_last_checkpoint(str(out)) if out.is_dir() else None
    if last is None:
        raise UserError(f"--resume: no checkpoint-* folder in {out} to resume from")
    io.check_writable(out, "--output-dir")
    check_checkpoint(Path(last))
    return last


def check_checkpoint(folder: Path) -> None:
    """Every file `--resume` reads from a checkpoint, present and readable; one line naming the broken one."""
    from .modeling import check_json_file, check_safetensors_file

    weights = [folder / n for n in ("model.safetensors", "pytorch_model.bin") if (folder / n).is_file()]
    if not weights:
        raise UserError(f"--resume: {folder} holds no model weights (model.safetensors); the checkpoint is "
                        "incomplete: remove it to resume from the one before")
    for path in weights:
        if path.suffix == ".safetensors":
            check_safetensors_file(path, "--resume")
    for name in CHECKPOINT_JSON:
        _require(folder / name)
        check_json_file(folder / name, "--resume")
    for name in CHECKPOINT_SAFETENSORS:
        _require(folder / name)
        check_safetensors_file(folder / name, "--resume")
    for name in CHECKPOINT_TORCH:
        path = _require(folder / name)
        if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; a truncated one has no directory
            raise UserError(f"--resume: {path} is truncated or not a torch checkpoint file; remove "
                            f"{folder.name} to resume from the checkpoint before it")


def _require(path: Path) -> Path:
    if not path.is_file():
        raise UserError(f"--resume: {path} is missing; remove {path.parent.name} to resume from the checkpoint "
                        "before it")
    return path


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def recipe_changes(saved: dict, recipe: Recipe) -> list[tuple[str, Any, Any]]:
    """(key, value in the checkpoint's run, value now) for every key that shapes the result and differs."""
    before, now = _flatten(saved), _flatten(recipe.to_dict())
    keys = sorted(set(before) | set(now))
    return [(k, before.get(k), now.get(k)) for k in keys
            if before.get(k) != now.get(k) and k not in RESUMABLE_CHANGES]


def check_resumed_recipe(out: Path, recipe: Recipe, allow_changes: bool) -> None:
    """A resumed run trains under its checkpoint's recipe (the one written into the folder when it started)."""
    path = out / RECIPE_FILE
    if allow_changes or not path.is_file():
        return
    try:
        saved = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UserError(f"--resume: {path} cannot be read ({type(exc).__name__}); it records the run being "
                        "resumed") from None
    if not isinstance(saved, dict):
        raise UserError(f"--resume: {path} is not a recipe mapping; it records the run being resumed")
    changes = recipe_changes(saved, recipe)
    if changes:
        key, old, new = changes[0]
        more = f" (and {len(changes) - 1} more)" if len(changes) > 1 else ""
        raise UserError(f"--resume: {key} was {old!r} in the run being resumed, is {new!r} now{more}; resume with "
                        "the same recipe, or pass --allow-changes to continue under the new values")


def clear_replaced_run(out: Path) -> None:
    """With `--overwrite`: the replaced run's checkpoints and run files go, so none of it can be resumed later."""
    if not out.is_dir():
        return
    for path in out.glob("checkpoint-*"):
        if path.is_dir():
            shutil.rmtree(path)
    shutil.rmtree(out / STAGING_DIR, ignore_errors=True)
    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)
