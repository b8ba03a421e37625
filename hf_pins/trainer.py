"""`PINSTrainer`: a `transformers.Trainer` that fine-tunes and prunes in the same run.

It overrides only what it must (`compute_loss`, `evaluate`, `create_optimizer`, `_save_checkpoint`,
`_load_from_checkpoint`, `log`, `train`) and reaches the optimizer step through a callback (`on_pre_optimizer_step` sees the accumulated, clipped,
synchronized gradients; `on_optimizer_step` sees the updated parameters before the gradients are cleared).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForSequenceClassification, Trainer, TrainerCallback
from transformers.trainer_utils import has_length

from . import compat
from .config import SHARDED_TRAINING_UNSUPPORTED, PINSConfig
from .methods import get_method
from .modeling import resolve_model_path
from .pruning.pruner import Pruner
from .pruning.schedule import CubicSchedule, optimizer_steps_per_epoch
from .pruning.structured import StructuredPruner
from .selfreg import SelfRegularizer, constant_prediction_score, resolve_teacher_dtype, self_regularized_loss

PRUNING_STATE_TENSORS = "pruning_state.safetensors"
PRUNING_STATE_META = "pruning_state.json"
STAGING_DIR = ".checkpoint-staging"


class TrainingDiverged(FloatingPointError):
    """The loss or the importance scores stopped being finite numbers."""


class _PruningCallback(TrainerCallback):
    """Connects the Trainer's optimizer-step events to the pruner."""

    def __init__(self, trainer: PINSTrainer):
        self.trainer = trainer

    def on_train_begin(self, args, state, control, train_dataloader=None, **kwargs):
        # The Trainer's own count of optimizer steps per epoch (for `pruning.warmup_epochs`).
        per_epoch = 0
        if train_dataloader is not None and has_length(train_dataloader):
            per_epoch = optimizer_steps_per_epoch(len(train_dataloader), args.gradient_accumulation_steps)
        self.trainer._start_pruning(state.max_steps, per_epoch)
        self._previous = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._request_stop)
            except ValueError:  # not the main thread: leave signals alone
                pass

    def _request_stop(self, signum, frame):
        self.trainer.stop_signal = signum

    def on_train_end(self, args, state, control, **kwargs):
        for sig, handler in getattr(self, "_previous", {}).items():
            signal.signal(sig, handler)

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        self.trainer.pruner.before_optimizer_step(state.global_step, kwargs.get("optimizer"))

    def on_optimizer_step(self, args, state, control, **kwargs):
        self.trainer._after_optimizer_step(state.global_step, kwargs.get("optimizer"))

    def on_step_end(self, args, state, control, **kwargs):
        if self.trainer.stop_signal is not None:  # SIGINT/SIGTERM: save a checkpoint, then stop
            control.should_save = True
            control.should_training_stop = True
            return control
        # The final model is chosen among evaluations at the target sparsity: make sure the last step is one.
        if state.global_step >= state.max_steps and args.eval_strategy != "no":
            control.should_evaluate = True
        return control


class PINSTrainer(Trainer):
    """Trainer that prunes with an importance scorer on a cubic schedule, with optional self-regularization.

    `teacher_model` (a model or a name to load, as in TRL's distillation trainers; default
    `args.self_regularization_teacher`) is self-regularization's first teacher, kept until the student beats its dev
    score. A model object is moved to the device, cast to the teacher's dtype and frozen in place, as TRL's trainers
    prepare theirs: pass a copy to keep using it elsewhere.
    Extra attributes: `pruner` (masks, scores, schedule), `selfreg` (the teacher, or None), `is_regression`.
    """

    args: PINSConfig

    def __init__(self, model=None, args: PINSConfig | None = None, *trainer_args, is_regression: bool | None = None,
                 teacher_model=None, **kwargs):
        if args is None or not isinstance(args, PINSConfig):
            raise TypeError("PINSTrainer needs a PINSConfig as `args`")
        if teacher_model is not None and not args.self_regularization:
            raise ValueError("teacher_model: only used by self-regularization, which is off (args.self_regularization)")
        super().__init__(model, args, *trainer_args, **kwargs)
        if self.is_fsdp_enabled or self.is_deepspeed_enabled:  # e.g. enabled by `accelerate launch --use_fsdp`
            raise ValueError(f"{'fsdp' if self.is_fsdp_enabled else 'deepspeed'}: {SHARDED_TRAINING_UNSUPPORTED}")
        if is_regression is None:
            is_regression = getattr(self.model.config, "num_labels", 2) == 1
        self.is_regression = is_regression
        if (teacher_model is not None or args.self_regularization_teacher is not None) and not self.self_regularizing:
            given = "teacher_model" if teacher_model is not None else "self_regularization_teacher"
            raise ValueError(f"{given}: unused on a regression task, which trains without a teacher unless "
                             "pruning.experimental.regression_alpha is set in (0, 1]")
        self.experimental = args.experimental_settings
        recipe_method = get_method(args.pruning_method)
        settings = args.method_settings
        training_method = recipe_method.training_method(settings)
        structured = {"structured": args.structured_settings} if args.pruning_granularity == "structured" else {}
        self.pruner = (StructuredPruner if structured else Pruner)(
            self.model,
            method=training_method,
            target_sparsity=args.target_sparsity,
            patterns=args.prunable_modules,
            mask_mode=args.mask_mode,
            threshold=args.pruning_threshold,
            args=args,
            settings=settings if training_method is recipe_method else None,
            **structured,
        )
        greater = True if args.greater_is_better is None else args.greater_is_better
        self.selfreg = None
        if self.self_regularizing:
            dtype = resolve_teacher_dtype(args.self_regularization_teacher_dtype, args.device)
            self.selfreg = SelfRegularizer(greater_is_better=greater, dtype=dtype,
                                           max_sparsity_gap=self.experimental.max_sparsity_gap)
            self._set_initial_teacher(teacher_model if teacher_model is not None else args.self_regularization_teacher)
            if self.experimental.skip_trivial_teacher:
                self._dev_label_column()  # refused now rather than when training starts
        self.evaluations: list[dict] = []
        self._teacher_weight_sum, self._teacher_weight_batches = 0.0, 0  # see _mean_teacher_weight
        self.best_at_target: dict[str, Any] | None = None  # {"metric", "step", "weights", "masks"}
        self._pruning_active = False
        self._staging_dir: str | None = None
        self.stop_signal: int | None = None  # set when SIGINT/SIGTERM asked the run to stop after a checkpoint
        # Our loss is a mean over the batch: let the Trainer divide it by the accumulation steps.
        self.model_accepts_loss_kwargs = False
        self.add_callback(_PruningCallback(self))

    @property
    def self_regularizing(self) -> bool:
        """Whether this run distils from its best dev checkpoint (`PINSConfig.self_regularizes`)."""
        return self.args.self_regularizes(self.is_regression)

    # -- a given first teacher -----------------------------------------------------------------------------------
    def _set_initial_teacher(self, teacher) -> None:
        if teacher is None:
            return
        if isinstance(teacher, str):
            source = teacher
            teacher = AutoModelForSequenceClassification.from_pretrained(resolve_model_path(teacher, "teacher_model"))
        else:
            source = self.args.self_regularization_teacher or getattr(teacher.config, "_name_or_path", "") or "teacher_model"
        self.selfreg.set_initial_teacher(teacher.to(self.args.device), source)

    def _score_initial_teacher(self) -> None:
        """The given teacher's dev score, measured once before training: the bar the student must beat."""
        student = self.model
        self.model = self.selfreg.teacher
        try:
            metrics = self.evaluate(metric_key_prefix="teacher")
        finally:
            self.model = student
        key = "teacher_" + self._metric_name()
        if key not in metrics:
            raise KeyError(f"metric_for_best_model {key!r} is not among the teacher's dev metrics {sorted(metrics)}")
        self.selfreg.set_initial_metric(float(metrics[key]))

    def _dev_label_column(self) -> str:
        dev = self.eval_dataset
        column = next((c for c in ("labels", "label") if c in getattr(dev, "column_names", ())), None)
        if self.compute_metrics is None or column is None:
            raise ValueError("experimental.skip_trivial_teacher: needs compute_metrics and an eval_dataset "
                             "with a 'labels' or 'label' column")
        return column

    def _constant_prediction_score(self) -> float:
        """The dev score of the best input-blind prediction: the floor a first teacher must beat."""
        labels = self.eval_dataset[self._dev_label_column()]
        return constant_prediction_score(
            self.compute_metrics, labels, getattr(self.model.config, "num_labels", 2),
            is_regression=self.is_regression, key=self._metric_name(),
            greater_is_better=self.selfreg.greater_is_better,
        )

    # -- schedule and steps ---------------------------------------------------------------------------------------
    def _start_pruning(self, max_steps: int, steps_per_epoch: int = 0) -> None:
        args = self.args
        if self.selfreg is not None and self.selfreg.needs_initial_metric:
            self._score_initial_teacher()
        if (self.selfreg is not None and self.experimental.skip_trivial_teacher
                and not self.selfreg.has_teacher and self.selfreg.best_metric is None):
            self.selfreg.set_floor(self._constant_prediction_score())
        if not self.pruner.method.schedules_masks:  # gRDA, or after greedy forward selection: nothing to schedule
            self._pruning_active = True
            return
        try:
            schedule = CubicSchedule.from_args(args, max_steps, steps_per_epoch)
        except ValueError as exc:
            raise ValueError(f"pruning schedule: {exc}") from None
        self.pruner.set_schedule(schedule)
        self._pruning_active = True

    def _after_optimizer_step(self, step: int, optimizer) -> None:
        self.pruner.after_optimizer_step(step, optimizer)

    def _metric_name(self) -> str:
        """`metric_for_best_model` without the `eval_` prefix, as `compute_metrics` names it."""
        name = self.args.metric_for_best_model or "loss"
        return name[len("eval_"):] if name.startswith("eval_") else name

    def _metric_key(self) -> str:
        return f"eval_{self._metric_name()}"

    # -- loss -----------------------------------------------------------------------------------------------------
    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        if not torch.isfinite(loss):
            raise TrainingDiverged(
                f"training loss is {loss.item()} at step {self.state.global_step + 1}; "
                f"the last good checkpoint (if any) is in {self.args.output_dir}"
            )
        return loss

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not model.training or self.selfreg is None or not self.selfreg.has_teacher or self._distillation_done():
            return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
        labels = inputs["labels"]
        model_inputs = {k: v for k, v in inputs.items() if k != "labels"}
        outputs = model(**model_inputs)
        teacher_logits = self.selfreg.teacher_logits(model_inputs)
        args = self.args
        weighting = args.self_regularization_weighting
        if weighting == "entropy" and self.experimental.entropy_if_correct:
            weighting = "entropy_if_correct"
        loss, weight = self_regularized_loss(
            outputs.logits,
            labels,
            teacher_logits,
            is_regression=self.is_regression,
            weighting=weighting,
            alpha=self.experimental.regression_alpha if self.is_regression else args.self_regularization_alpha,
            temperature=args.self_regularization_temperature,
            return_weight=True,
        )
        self._teacher_weight_sum = self._teacher_weight_sum + weight  # a tensor: no device sync per step
        self._teacher_weight_batches += 1
        return (loss, outputs) if return_outputs else loss

    def _mean_teacher_weight(self) -> float | None:
        """The mean teacher weight `w` over the training batches since the last call (None: none distilled), so
        each dev evaluation records how much of the loss the teacher had since the one before."""
        if not self._teacher_weight_batches:
            return None
        mean = float(self._teacher_weight_sum) / self._teacher_weight_batches
        self._teacher_weight_sum, self._teacher_weight_batches = 0.0, 0
        return round(mean, 4)

    def _distillation_done(self) -> bool:
        """With `experimental.distil_at_target: false`, the final phase (at the target) trains on the task loss alone."""
        schedule = self.pruner.schedule
        return (not self.experimental.distil_at_target and schedule is not None
                and schedule.at_target(self.state.global_step))

    # -- evaluation: teacher refresh and the best checkpoint at the target --------------------------------------
    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval"):
        metrics = super().evaluate(eval_dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix)
        if self._pruning_active and eval_dataset is None and metric_key_prefix == "eval":
            self._after_dev_evaluation(metrics)
        return metrics

    def _after_dev_evaluation(self, metrics: dict) -> None:
        key = self._metric_key()
        if key not in metrics:
            raise KeyError(f"metric_for_best_model {key!r} is not among the dev metrics {sorted(metrics)}")
        value, step = float(metrics[key]), self.state.global_step
        if not math.isfinite(value):
            raise TrainingDiverged(f"dev metric {key} is {value} at step {step}")
        sparsity = self.pruner.sparsity()
        at_target = self.pruner.schedule is not None and step > 0 and self.pruner.schedule.at_target(step - 1)
        at_target = at_target or (self.pruner.schedule is None and self.pruner.method.structure_fixed)
        self.evaluations.append({"step": step, "sparsity": sparsity, "dev_metric": value, "at_target": at_target,
                                 "teacher_weight": self._mean_teacher_weight()})
        logs = {}
        if self.selfreg is not None and self.selfreg.maybe_refresh(self.model, value, step, sparsity):
            logs["teacher_refresh"] = 1.0
            logs["teacher_dev_metric"] = value
        if at_target:
            greater = self.selfreg.greater_is_better if self.selfreg else (self.args.greater_is_better is not False)
            best = None if self.best_at_target is None else self.best_at_target["metric"]
            if best is None or (value > best if greater else value < best):
                weights = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}
                masks = {n: m.to("cpu", copy=True) for n, m in self.pruner.masks.items()}  # they may change later
                self.best_at_target = {"metric": value, "step": step, "weights": weights, "masks": masks}
        if logs:
            self.log(logs)

    def train(self, *args, **kwargs):
        output = super().train(*args, **kwargs)
        self._pruning_active = False
        if self.best_at_target is not None:
            self.model.load_state_dict(self.best_at_target["weights"])
            device = self.args.device
            self.pruner.set_masks({n: m.to(device) for n, m in self.best_at_target["masks"].items()})
        self.pruner.apply_masks()
        self.pruner.finish()  # structured granularity: the removed units are cut out here
        self.pruner.method.finish(self)
        return output

    def create_optimizer(self):
        """A method may bring its own optimizer (gRDA prunes through one); otherwise `args.optim`'s."""
        if self.optimizer is None:
            self.optimizer = self.pruner.method.create_optimizer(self)
        return super().create_optimizer()

    # -- logs -----------------------------------------------------------------------------------------------------
    def log(self, logs: dict[str, float], *args, **kwargs) -> None:
        if self._pruning_active and "loss" in logs:
            logs["sparsity"] = round(self.pruner.sparsity(), 6)
            if self.pruner.schedule is not None and self.state.global_step > 0:
                logs["target_sparsity"] = round(self.pruner.schedule.sparsity(self.state.global_step - 1), 6)
            if math.isfinite(self.pruner.last_threshold):
                logs["threshold"] = self.pruner.last_threshold
        super().log(logs, *args, **kwargs)

    def create_model_card(self, *args, **kwargs) -> None:
        """The Trainer's `push_to_hub` calls this: write hf_pins's card (method, sparsity, metrics, recipe) instead of
        the generic one, when the output directory holds a trained model's report."""
        from .card import write_model_card

        if self.is_world_process_zero() and os.path.exists(os.path.join(self.args.output_dir, "pruning_report.json")):
            write_model_card(self.args.output_dir)
        else:
            super().create_model_card(*args, **kwargs)

    def sparsity_report(self) -> dict:
        """`{"overall": float, "modules": {name: float}}`: exact zeros among the prunable weights."""
        return self.pruner.report()

    # -- checkpoints ----------------------------------------------------------------------------------------------
    def pruning_state_dict(self) -> dict:
        state = self.pruner.state_dict()
        tensors = {f"pruner.{k}": v for k, v in state["tensors"].items()}
        meta: dict[str, Any] = {"pruner": state["meta"], "evaluations": self.evaluations,
                                "teacher_weight_since_evaluation": [float(self._teacher_weight_sum),
                                                                    self._teacher_weight_batches]}
        if self.selfreg is not None:
            sr = self.selfreg.state_dict()
            tensors.update({f"selfreg.{k}": v for k, v in sr["tensors"].items()})
            meta["selfreg"] = sr["meta"]
        if self.best_at_target is not None:
            tensors.update({f"best.{k}": v for k, v in self.best_at_target["weights"].items()})
            tensors.update({f"best_mask.{n}": m.to(torch.uint8) for n, m in self.best_at_target["masks"].items()})
            meta["best_at_target"] = {"metric": self.best_at_target["metric"], "step": self.best_at_target["step"]}
        return {"tensors": tensors, "meta": meta}

    def load_pruning_state_dict(self, state: dict) -> None:
        tensors, meta = state["tensors"], state["meta"]

        def part(prefix):
            return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}

        self.pruner.load_state_dict({"tensors": part("pruner."), "meta": meta["pruner"]})
        if self.selfreg is not None and "selfreg" in meta:
            self.selfreg.load_state_dict({"tensors": part("selfreg."), "meta": meta["selfreg"]}, self.model)
        self.evaluations = list(meta["evaluations"])
        self._teacher_weight_sum, self._teacher_weight_batches = meta.get("teacher_weight_since_evaluation", (0.0, 0))
        if "best_at_target" in meta:
            masks = {n: m.to(torch.bool) for n, m in part("best_mask.").items()}
            if not masks:  # a checkpoint written before masks were kept with the best weights: read them off the zeros
                masks = {n: part("best.")[n] != 0 for n in self.pruner.masks}
            self.best_at_target = dict(meta["best_at_target"], weights=part("best."), masks=masks)

    def _get_output_dir(self, trial):
        if self._staging_dir is not None:
            return self._staging_dir
        return super()._get_output_dir(trial)

    def _save_checkpoint(self, model, trial):
        """Write the checkpoint (model, optimizer, RNG, Trainer and pruning state) into a staging folder, then rename
        it into place: a `checkpoint-N` folder is complete or absent, whenever the process is killed."""
        run_dir = self._get_output_dir(trial=trial)
        name = f"checkpoint-{self.state.global_step}"
        staging_root = os.path.join(run_dir, STAGING_DIR)
        self._staging_dir = staging_root
        try:
            super()._save_checkpoint(model, trial)
            staged = os.path.join(staging_root, name)
            if self.args.should_save:
                state = self.pruning_state_dict()
                tensors = {k: v.detach().contiguous().cpu().clone() for k, v in state["tensors"].items()}
                save_file(tensors, os.path.join(staged, PRUNING_STATE_TENSORS))
                with open(os.path.join(staged, PRUNING_STATE_META), "w") as f:
                    json.dump(state["meta"], f)
        except OSError:  # a full disk: no half-written checkpoint stays behind
            if self.args.should_save:
                shutil.rmtree(staging_root, ignore_errors=True)
            raise
        finally:
            self._staging_dir = None
        self.accelerator.wait_for_everyone()
        if self.args.should_save:
            final = os.path.join(run_dir, name)
            if os.path.exists(final):  # a checkpoint of the same step from an earlier, interrupted attempt
                shutil.rmtree(final)
            os.replace(staged, final)
            shutil.rmtree(staging_root, ignore_errors=True)
            compat.rotate_checkpoints(self, run_dir)
        self.accelerator.wait_for_everyone()

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        meta_path = os.path.join(resume_from_checkpoint, PRUNING_STATE_META)
        if not os.path.exists(meta_path):
            raise FileNotFoundError(f"{resume_from_checkpoint} holds no pruning state ({PRUNING_STATE_META})")
        with open(meta_path) as f:
            meta = json.load(f)
        device = self.args.device
        tensors = {k: v.to(device) for k, v in load_file(os.path.join(resume_from_checkpoint, PRUNING_STATE_TENSORS)).items()}
        self.load_pruning_state_dict({"tensors": tensors, "meta": meta})
