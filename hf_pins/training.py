"""The `train` stage: recipe -> data -> model -> PINSTrainer -> saved sparse model, recipe and report.

Everything that can be wrong with the user's input (recipe, model, data, output directory) is checked before the
output directory is created, so a mistake costs nothing and overwrites nothing.
"""

from __future__ import annotations

import math
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from transformers import DataCollatorWithPadding, set_seed

from . import io, run_dir
from .card import write_model_card
from .data.prepare import prepare_data, tokenize
from .data.tasks import get_task, is_glue_task
from .errors import RecipeError, RunStopped, UserError
from .methods import PreparedRun, get_method
from .metrics import compute_metrics_fn, main_metric
from .modeling import (
    check_model_source,
    check_teacher_source,
    load_model_and_tokenizer,
    load_teacher,
    model_label_order,
)
from .paths import RECIPE_FILE
from .plots import REPORT_FILE, write_training_plots
from .pruning.schedule import CubicSchedule, optimizer_steps_per_epoch
from .pruning.targets import find_prunable
from .recipe import Recipe
from .trainer import PINSTrainer

LOG_FILE = "training_log.json"


@dataclass
class TrainResult:
    output_dir: Path
    report: dict
    seconds: float
    metrics: dict = field(default_factory=dict)


def default_output_dir(recipe: Recipe) -> str:
    return recipe.training.get("output_dir") or os.path.join("outputs", f"{recipe.task}-{recipe.pruning['method']}")


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
    if args.pruning_granularity == "structured":
        from .structured.units import UnitLayout

        try:
            layout = UnitLayout.from_model(model, find_prunable(model, args.prunable_modules))
            layout.check_compound(args.structured_settings, args.target_sparsity)
        except ValueError as exc:
            raise UserError(f"pruning.granularity structured: {exc}") from None
    total = estimate_total_steps(args, num_examples)
    try:
        CubicSchedule.from_args(args, total, estimate_steps_per_epoch(args, num_examples))
    except ValueError as exc:
        raise UserError(f"pruning schedule: {exc}; shorten pruning.dense_warmup_* or pruning.final_*, or train longer "
                        "(training.num_train_epochs or training.max_steps)") from None


def versions() -> dict[str, str]:
    import torch
    import transformers

    from . import __version__

    return {"hf_pins": __version__, "transformers": transformers.__version__, "torch": torch.__version__}


def build_report(trainer: PINSTrainer, recipe: Recipe, dev: dict, test: dict, prepared: dict | None = None) -> dict:
    """The `pruning_report.json` every method writes: sparsity, metrics and how the run got there; the method adds
    its own part (`PruningMethod.report`: what greedy forward selection kept, what gRDA reached)."""
    sparsity = trainer.sparsity_report()
    strip = lambda m, p: {k[len(p) + 1:]: v for k, v in m.items() if k.startswith(p + "_") and not k.endswith(("runtime", "per_second"))}  # noqa: E731
    schedule = trainer.pruner.schedule
    report = {
        "method": recipe.pruning["method"],
        "task": recipe.task,
        "base_model": recipe.model["name_or_path"],
        "target_sparsity": recipe.pruning["target_sparsity"],
        "overall": sparsity["overall"],
        "modules": sparsity["modules"],
        "prunable_weights": trainer.pruner.num_weights,
        "main_metric": main_metric(recipe.task) if is_glue_task(recipe.task) else trainer._metric_name(),
        "metrics": {"dev": strip(dev, "eval"), **{name: strip(m, name) for name, m in test.items()}},
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
        "structure": sparsity.get("structure"),  # structured granularity: the units kept
        "versions": versions(),
        "final_cut": False,
    }
    report.update(get_method(trainer.args.pruning_method).report(trainer, prepared))
    return report


def run_training(recipe: Recipe, output_dir: str | None = None, resume: bool = False, overwrite: bool = False,
                 callbacks: list | None = None, allow_changes: bool = False) -> TrainResult:
    """Run one recipe end to end and write the model folder. Raises `UserError` before writing anything.

    `resume` continues the newest checkpoint in the folder, under the recipe it was started with unless
    `allow_changes`; `overwrite` replaces the run in a non-empty folder. `callbacks` are `TrainerCallback`s for the
    pruning run's Trainer (as `Trainer(callbacks=...)`): they see every event before the pruner does (e.g.
    `benchmarks/score_agreement.py` scores the same steps with other criteria)."""
    started = time.time()
    out = Path(output_dir or default_output_dir(recipe))
    checkpoint = run_dir.check_output_dir(out, resume=resume, overwrite=overwrite)
    if checkpoint is not None:
        run_dir.check_resumed_recipe(out, recipe, allow_changes)
    args = recipe.training_args(output_dir=str(out))
    if args.dataloader_pin_memory and args.device.type == "cpu":
        args.dataloader_pin_memory = False  # pinned memory only helps copies to an accelerator; torch warns otherwise
    if is_glue_task(recipe.task):  # the task is known before any file is read
        _check_teacher_is_used(args, get_task(recipe.task))
    check_model_source(recipe.model, None)  # files complete and readable before the data loads
    data_args = recipe.data_args
    # The labels take the order of a model already fine-tuned on them (names that differ are an error).
    task_data = prepare_data(recipe.task, data_args, label_order=model_label_order(recipe.model))
    task = task_data.task
    _check_teacher_is_used(args, task)
    if args.self_regularization_teacher is not None:
        check_teacher_source(args.self_regularization_teacher, task)
    set_seed(args.seed)  # the new classification head is initialised here, before the Trainer seeds anything
    model, tokenizer = load_model_and_tokenizer(recipe.model, task)
    teacher = None
    if args.self_regularization_teacher is not None:
        teacher = load_teacher(args.self_regularization_teacher, recipe.model, task, model)
    check_pruning_fits(recipe, args, model, len(task_data.train))
    tokenized = tokenize(task_data, tokenizer, max_length=data_args.max_length)
    collator = DataCollatorWithPadding(tokenizer)
    trainer_kwargs = dict(
        train_dataset=tokenized.train,
        eval_dataset=tokenized.dev,
        data_collator=collator,
        processing_class=tokenizer,
        compute_metrics=compute_metrics_fn(task),
        is_regression=task.is_regression,
    )
    if overwrite:
        run_dir.clear_replaced_run(out)
    if args.should_save:  # the recipe this run trains under: what a later --resume is compared with
        io.write_text(out / RECIPE_FILE, recipe.to_yaml(), "--output-dir")
    run = PreparedRun(model=model, args=args, train_dataset=tokenized.train, eval_dataset=tokenized.dev,
                      data_collator=collator, is_regression=task.is_regression, output_dir=out, resume_from=checkpoint,
                      trainer_kwargs=trainer_kwargs)
    prepared = get_method(args.pruning_method).prepare(run)  # e.g. remove units, or choose gRDA's c

    trainer = PINSTrainer(model=run.model, args=args, teacher_model=teacher, callbacks=callbacks, **trainer_kwargs)
    try:
        trainer.train(resume_from_checkpoint=checkpoint)
    except OSError as exc:  # a full disk or a vanished folder while writing a checkpoint
        if exc.errno is None:
            raise
        raise io.output_error(exc, out, "--output-dir") from None
    if trainer.stop_signal is not None:
        raise RunStopped(
            f"{signal.Signals(trainer.stop_signal).name} at step {trainer.state.global_step}; checkpoint saved in "
            f"{out / f'checkpoint-{trainer.state.global_step}'}; continue with --resume --output-dir {out}",
            trainer.stop_signal,
        )
    dev = trainer.evaluate()
    test = {name: trainer.evaluate(ds, metric_key_prefix=name) for name, ds in tokenized.test.items()}
    report = build_report(trainer, recipe, dev, test, prepared=prepared)
    report["data"] = {**task_data.card_data(), "splits": task_data.splits}

    if trainer.args.should_save:
        _write_model_folder(trainer, report, out)
    return TrainResult(output_dir=out, report=report, seconds=time.time() - started, metrics={"dev": dev, **test})


def _check_teacher_is_used(args, task) -> None:
    if args.self_regularization_teacher is not None and not args.self_regularizes(task.is_regression):
        raise RecipeError(f"pruning.self_regularization_teacher: unused on the regression task {task.name}, which "
                          "trains without a teacher unless pruning.experimental.regression_alpha is set in (0, 1]")


def _write_model_folder(trainer: PINSTrainer, report: dict, out: Path) -> None:
    """The model, then the files that describe it (each written whole or not at all; recipe.yaml is already there,
    written before training); the plots and the card are drawn from the report."""
    try:
        trainer.save_model(str(out))
        io.write_json(out / LOG_FILE, trainer.state.log_history, "--output-dir", indent=1, default=str)
        io.write_json(out / REPORT_FILE, report, "--output-dir", indent=2, allow_nan=False)
        write_training_plots(out)
        write_model_card(out)
    except OSError as exc:
        if exc.errno is None:
            raise
        raise io.output_error(exc, out, "--output-dir") from None


def format_summary(result: TrainResult) -> str:
    r = result.report
    minutes, seconds = divmod(int(result.seconds), 60)
    lines = [
        f"hf-pins: {r['method']} on {r['task']} finished in {minutes}m{seconds:02d}s",
        f"  sparsity   {r['overall']:.4f} (target {r['target_sparsity']:.4f}) over {r['prunable_weights']:,} prunable weights",
    ]
    structure = r.get("structure") or {}
    if "heads_per_layer" in structure:  # structured granularity: the units kept, cut out of the model
        lines.append(f"  structure  {sum(structure['heads_per_layer'])} of {structure['heads_before']} heads, "
                     f"{sum(structure['ffn_units_per_layer']):,} of {structure['ffn_units_before']:,} FFN units; "
                     f"{structure['parameters']['before']:,} -> {structure['parameters']['after']:,} parameters")
    lines += get_method(r["method"]).summary_lines(r)
    for split, metrics in r["metrics"].items():
        shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k != "loss" and isinstance(v, float) and math.isfinite(v))
        lines.append(f"  {split:<10} {shown}")
    lines.append(f"  model      {result.output_dir}")
    return "\n".join(lines)
