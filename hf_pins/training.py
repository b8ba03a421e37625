"""The `train` stage: recipe -> data -> model -> PINSTrainer -> saved sparse model, recipe and report.

Everything that can be wrong with the user's input (recipe, model, data, output directory) is checked before the
output directory is created, so a mistake costs nothing and overwrites nothing.
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from transformers import DataCollatorWithPadding, set_seed
from transformers.trainer_utils import get_last_checkpoint

from .data.glue import load_glue_splits, tokenize_splits
from .data.tasks import get_task
from .errors import RecipeError, RunStopped, UserError
from .metrics.glue import compute_metrics_fn, main_metric
from .modeling import load_model_and_tokenizer, load_teacher
from .paths import resolve_package_path
from .card import write_model_card
from .plots import write_training_plots
from .pruning.schedule import CubicSchedule, optimizer_steps_per_epoch
from .pruning.targets import find_prunable
from .recipe import Recipe
from .trainer import PINSTrainer

REPORT_FILE = "pruning_report.json"
RECIPE_FILE = "recipe.yaml"
LOG_FILE = "training_log.json"
GFS_FILE = "gfs_structure.json"  # written before training, so that --resume rebuilds the same smaller model
GRDA_FILE = "grda_calibration.json"


@dataclass
class TrainResult:
    output_dir: Path
    report: dict
    seconds: float
    metrics: dict = field(default_factory=dict)


def default_output_dir(recipe: Recipe) -> str:
    return recipe.training.get("output_dir") or os.path.join("outputs", f"{recipe.task}-{recipe.pruning['method']}")


def check_output_dir(path: Path, resume: bool, overwrite: bool) -> str | None:
    """Refuse to write into a non-empty folder unless asked; with `resume`, return the checkpoint to resume from."""
    if path.exists() and not path.is_dir():
        raise UserError(f"--output-dir {path}: exists and is not a directory")
    if resume:
        last = get_last_checkpoint(str(path)) if path.is_dir() else None
        if last is None:
            raise UserError(f"--resume: no checkpoint-* folder in {path} to resume from")
        return last
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise UserError(f"--output-dir {path}: exists and is not empty; pass --overwrite to write into it anyway or --resume to continue its run")
    return None


def estimate_steps_per_epoch(args, num_examples: int) -> int:
    """Optimizer steps per epoch (the Trainer's own formula: batches per epoch, accumulation)."""
    batches = math.ceil(num_examples / (args.per_device_train_batch_size * max(1, args.world_size)))
    return optimizer_steps_per_epoch(batches, args.gradient_accumulation_steps)


def estimate_total_steps(args, num_examples: int) -> int:
    """The number of optimizer steps the Trainer will take."""
    if args.max_steps > 0:
        return args.max_steps
    return math.ceil(args.num_train_epochs * estimate_steps_per_epoch(args, num_examples))


def check_pruning_fits(recipe: Recipe, args, model, num_examples: int) -> None:
    """Catch before anything is written what would otherwise fail once training starts."""
    if not find_prunable(model, args.prunable_modules):
        raise UserError(
            f"pruning.prunable_modules {args.prunable_modules}: matches no nn.Linear module of "
            f"{recipe.model['name_or_path']}"
        )
    total = estimate_total_steps(args, num_examples)
    try:
        CubicSchedule.from_args(args, total, estimate_steps_per_epoch(args, num_examples))
    except ValueError as exc:
        raise UserError(f"pruning.warmup_steps / warmup_epochs / final_steps: {exc}") from None


def versions() -> dict[str, str]:
    import torch
    import transformers

    from . import __version__

    return {"hf_pins": __version__, "transformers": transformers.__version__, "torch": torch.__version__}


def build_report(trainer: PINSTrainer, recipe: Recipe, dev: dict, test: dict, structure: dict | None = None,
                 calibration: dict | None = None) -> dict:
    """The `pruning_report.json` every method writes: sparsity, metrics and how the run got there.

    After greedy forward selection, sparsity is relative to the original prunable weights (removed units count as
    pruned) and `structure` says what was kept; for gRDA, `grda` holds the sparsity it reached by itself, the
    calibration of `c`, and `final_cut` whether a magnitude cut then brought it to the target."""
    sparsity = trainer.sparsity_report()
    prunable = trainer.pruner.num_weights
    if structure is not None:
        from .structured.gfs import structured_sparsity

        structure = dict(structure)
        before = structure.pop("modules_before")
        sparsity = structured_sparsity({"modules_before": before}, trainer.model, trainer.args.prunable_modules)
        prunable = sum(before.values())
    grda = None
    if trainer.grda_outcome is not None:
        args = trainer.args
        grda = {**trainer.grda_outcome, "c": args.grda_c, "mu": args.grda_mu, "lr": args.grda_lr,
                "momentum": args.grda_momentum, "weight_decay": args.grda_weight_decay, "calibration": calibration}
    strip = lambda m, p: {k[len(p) + 1:]: v for k, v in m.items() if k.startswith(p + "_") and not k.endswith(("runtime", "per_second"))}  # noqa: E731
    schedule = trainer.pruner.schedule
    return {
        "method": recipe.pruning["method"],
        "task": recipe.task,
        "base_model": recipe.model["name_or_path"],
        "target_sparsity": recipe.pruning["target_sparsity"],
        "overall": sparsity["overall"],
        "modules": sparsity["modules"],
        "prunable_weights": prunable,
        "main_metric": main_metric(recipe.task),
        "metrics": {"dev": strip(dev, "eval"), **{name: strip(m, name) for name, m in test.items()}},
        "dense_metrics": None,
        "self_regularization": trainer.self_regularizing,  # what ran: regression tasks only with a teacher weight
        "total_steps": trainer.state.max_steps,
        "schedule": None if schedule is None else {
            "warmup_steps": schedule.warmup_steps, "final_steps": schedule.final_steps,
            "update_interval": schedule.update_interval,
        },
        "best_step": None if trainer.best_at_target is None else trainer.best_at_target["step"],
        "history": trainer.pruner.history,
        "evaluations": trainer.evaluations,
        "teacher_refreshes": [] if trainer.selfreg is None else trainer.selfreg.refreshes,
        "teacher_floor": None if trainer.selfreg is None else trainer.selfreg.floor,
        "structure": structure,
        "versions": versions(),
        "final_cut": bool(grda and grda["final_cut"]),
        "grda": grda,
    }


def run_training(recipe: Recipe, output_dir: str | None = None, resume: bool = False, overwrite: bool = False,
                 callbacks: list | None = None) -> TrainResult:
    """Run one recipe end to end and write the model folder. Raises `UserError` before writing anything.

    `callbacks` are `TrainerCallback`s for the pruning run's Trainer (as `Trainer(callbacks=...)`): they see every
    event before the pruner does (e.g. `benchmarks/score_agreement.py` scores the same steps with other criteria)."""
    started = time.time()
    out = Path(output_dir or default_output_dir(recipe))
    checkpoint = check_output_dir(out, resume, overwrite)
    args = recipe.training_args(output_dir=str(out))
    task = get_task(recipe.task)
    if args.self_regularization_teacher is not None and not args.self_regularizes(task.is_regression):
        raise RecipeError(f"pruning.self_regularization_teacher: unused on the regression task {task.name} while "
                          "pruning.self_regularization_regression_alpha is 0 (the default); set it in (0, 1]")
    data = recipe.data
    splits = load_glue_splits(
        recipe.task,
        glue_dir=data["glue_dir"] and resolve_package_path(data["glue_dir"], "data.glue_dir"),
        dev_fraction=data["dev_fraction"], split_seed=data["split_seed"],
        max_train_samples=data["max_train_samples"], max_eval_samples=data["max_eval_samples"],
    )
    set_seed(args.seed)  # the new classification head is initialised here, before the Trainer seeds anything
    model, tokenizer = load_model_and_tokenizer(recipe.model, task)
    teacher = None
    if args.self_regularization_teacher is not None:
        teacher = load_teacher(args.self_regularization_teacher, recipe.model, task, model)
    check_pruning_fits(recipe, args, model, len(splits.train))
    tokenized = tokenize_splits(splits, tokenizer, max_length=data["max_length"])
    collator = DataCollatorWithPadding(tokenizer)
    trainer_kwargs = dict(
        train_dataset=tokenized.train,
        eval_dataset=tokenized.dev,
        data_collator=collator,
        processing_class=tokenizer,
        compute_metrics=compute_metrics_fn(recipe.task),
        is_regression=task.is_regression,
    )
    structure = calibration = None
    if args.pruning_method == "gfs":
        model, structure = _greedy_forward_selection(model, args, out, checkpoint, tokenized, collator, task)
    if args.pruning_method == "grda" and args.target_sparsity > 0 and args.grda_calibration_trials > 0:
        calibration = _calibrate_grda(model, args, out, checkpoint, trainer_kwargs)
        args.grda_c = calibration["chosen_c"]

    trainer = PINSTrainer(model=model, args=args, teacher_model=teacher, callbacks=callbacks, **trainer_kwargs)
    trainer.train(resume_from_checkpoint=checkpoint)
    if trainer.stop_signal is not None:
        raise RunStopped(
            f"{signal.Signals(trainer.stop_signal).name} at step {trainer.state.global_step}; checkpoint saved in "
            f"{out / f'checkpoint-{trainer.state.global_step}'}; continue with --resume --output-dir {out}",
            trainer.stop_signal,
        )
    dev = trainer.evaluate()
    test = {name: trainer.evaluate(ds, metric_key_prefix=name) for name, ds in tokenized.test.items()}
    report = build_report(trainer, recipe, dev, test, structure=structure, calibration=calibration)

    if trainer.args.should_save:
        trainer.save_model(str(out))
        (out / RECIPE_FILE).write_text(recipe.to_yaml())
        (out / REPORT_FILE).write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
        (out / LOG_FILE).write_text(json.dumps(trainer.state.log_history, indent=1, default=str) + "\n")
        write_training_plots(out)
        write_model_card(out)
    return TrainResult(output_dir=out, report=report, seconds=time.time() - started, metrics={"dev": dev, **test})


def _greedy_forward_selection(model, args, out: Path, checkpoint, tokenized, collator, task):
    """Select and remove units before training (on resume: the smaller model and structure saved by the first run)."""
    if checkpoint is not None and (out / GFS_FILE).is_file():
        from transformers import AutoModelForSequenceClassification

        return AutoModelForSequenceClassification.from_pretrained(checkpoint), json.loads((out / GFS_FILE).read_text())
    from .structured.gfs import greedy_forward_selection

    try:
        structure = greedy_forward_selection(model, args, tokenized.train, tokenized.dev, collator, task.is_regression)
    except ValueError as exc:
        raise UserError(f"pruning.method gfs: {exc}") from None
    if args.should_save:
        out.mkdir(parents=True, exist_ok=True)
        (out / GFS_FILE).write_text(json.dumps(structure, indent=1) + "\n")
    return model, structure


def _calibrate_grda(model, args, out: Path, checkpoint, trainer_kwargs) -> dict:
    """Short runs choosing gRDA's c (on resume: the choice the first run made)."""
    if checkpoint is not None and (out / GRDA_FILE).is_file():
        return json.loads((out / GRDA_FILE).read_text())
    from .optim.grda_calibration import calibrate_grda

    calibration = calibrate_grda(model, args, **trainer_kwargs)
    if args.should_save:
        out.mkdir(parents=True, exist_ok=True)
        (out / GRDA_FILE).write_text(json.dumps(calibration, indent=1) + "\n")
    return calibration


def format_summary(result: TrainResult) -> str:
    r = result.report
    minutes, seconds = divmod(int(result.seconds), 60)
    lines = [
        f"hf-pins: {r['method']} on {r['task']} finished in {minutes}m{seconds:02d}s",
        f"  sparsity   {r['overall']:.4f} (target {r['target_sparsity']:.4f}) over {r['prunable_weights']:,} prunable weights",
    ]
    if r.get("grda"):
        cut = "; then a final magnitude cut to the target" if r["final_cut"] else ""
        lines.append(f"  gRDA       reached {r['grda']['sparsity_reached']:.4f} with c={r['grda']['c']:.3g}{cut}")
    if r.get("structure"):
        p = r["structure"]["parameters"]
        lines.append(f"  structure  {p['before']:,} -> {p['after']:,} parameters (units removed before fine-tuning)")
    for split, metrics in r["metrics"].items():
        shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k != "loss" and isinstance(v, float) and math.isfinite(v))
        lines.append(f"  {split:<10} {shown}")
    lines.append(f"  model      {result.output_dir}")
    return "\n".join(lines)
