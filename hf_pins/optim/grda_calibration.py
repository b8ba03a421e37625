"""Choosing gRDA's `c` for a target sparsity on short runs, before the real run (the authors' tuning rule).

Chao et al. fix `mu` and take the largest `c` that keeps the accuracy after a short run. With a target sparsity:
short runs (`calibration_epochs`, no checkpoints, no self-regularization) at `c = 0` (the reference: plain SGD on
the prunable matrices) and at `c0, c0 * growth, c0 * growth**2, ...` (`calibration_trials` values, `c0 = c`).
Walking up that grid:
* a `c` whose dev metric falls more than `calibration_tolerance` behind the reference ends the search, and the
  previous `c` is chosen (the first one if even it fails: it is the user's own starting point);
* a `c` projected to reach the target in the full run ends the search and is chosen (a larger one would only prune
  more than asked for);
* otherwise the largest `c` tried is chosen.
The threshold grows with the number of steps: with the same learning-rate schedule shape stretched over `N` steps,
`L = c * sum lr_n**(mu + 0.5) * (n**mu - (n-1)**mu)` scales as `N**mu`. The projection applies the full run's
threshold, `L_short * (N_full / N_short)**mu`, to the short run's dual accumulators (the fraction of `|a|` below it);
the measured short-run sparsity is kept in the report too. If the full run still ends short of the target, the
trainer's final magnitude cut (`final_cut`) closes the gap and the report says so.
"""

from __future__ import annotations

import copy
import dataclasses
import tempfile
from collections.abc import Callable


def calibrate_c(short_run: Callable[[float], tuple[float, float, float]], *, c_start: float, growth: float,
                trials: int, target: float, tolerance: float, greater_is_better: bool = True) -> dict:
    """`short_run(c) -> (dev_metric, sparsity, projected full-run sparsity)`. Returns the chosen `c`, the reference
    metric and every trial."""
    reference = short_run(0.0)[0]
    tried = []
    chosen, reason = c_start, "largest c tried"
    for k in range(trials):
        c = c_start * growth**k
        metric, sparsity, projected = short_run(c)
        tried.append({"c": c, "dev_metric": metric, "sparsity": sparsity, "projected_sparsity": projected})
        drop = reference - metric if greater_is_better else metric - reference
        if drop > tolerance:
            chosen = tried[-2]["c"] if len(tried) > 1 else c_start
            reason = "the next c lost more than the tolerance" if len(tried) > 1 else "no c kept the metric: the first"
            break
        chosen = c
        if projected >= target:
            reason = "projected to reach the target sparsity"
            break
    return {"chosen_c": chosen, "reason": reason, "reference_metric": reference, "trials": tried,
            "epochs": None, "tolerance": tolerance}


def calibrate_grda(model, args, **trainer_kwargs) -> dict:
    """Run `calibrate_c` with short `PINSTrainer` runs on copies of `model` (which is left untouched)."""
    from ..trainer import PINSTrainer

    settings = args.method_settings

    def short_run(c: float) -> tuple[float, float, float]:
        with tempfile.TemporaryDirectory() as tmp:
            short = dataclasses.replace(
                args, output_dir=tmp, num_train_epochs=settings.calibration_epochs, max_steps=-1,
                eval_strategy="no", save_strategy="no", logging_strategy="no", self_regularization=False,
                method_args={**args.method_args, "c": c, "final_cut": False, "calibration_trials": 0},
                report_to="none", disable_tqdm=True,
            )
            trainer = PINSTrainer(model=copy.deepcopy(model), args=short, **trainer_kwargs)
            trainer.train()
            metrics = trainer.evaluate()
            return float(metrics[trainer._metric_key()]), trainer.pruner.sparsity(), _projected(trainer, args)

    result = calibrate_c(
        short_run, c_start=settings.c, growth=settings.calibration_growth, trials=settings.calibration_trials,
        target=args.target_sparsity, tolerance=settings.calibration_tolerance,
        greater_is_better=(args.greater_is_better if args.greater_is_better is not None
                           else not (args.metric_for_best_model or "loss").endswith("loss")),
    )
    result["epochs"] = settings.calibration_epochs
    return result


def _projected(trainer, args) -> float:
    """Fraction of the short run's dual accumulators below the threshold the full run would reach."""
    steps = trainer.state.max_steps
    settings = args.method_settings
    full = args.max_steps if args.max_steps > 0 else steps * args.num_train_epochs / settings.calibration_epochs
    ratio = (max(full, steps) / max(steps, 1)) ** settings.mu
    below = total = 0
    for p in trainer.pruner.params.values():
        state = trainer.optimizer.state.get(p, {})
        if "accumulator" not in state:
            continue
        below += int((state["accumulator"].abs() <= state["threshold"] * ratio).sum())
        total += p.numel()
    return below / total if total else 0.0
