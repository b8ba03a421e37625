"""gRDA (Chao et al., NeurIPS 2020) prunes through its optimizer, not through scores and a schedule.

The soft threshold of `hf_pins.optim.grda.GRDA` zeroes weights as training goes: this method gives that optimizer the
prunable matrices and `args.optim` the rest. No mask is scheduled or forced; the sparsity reported is the zeros
measured in the weights. An exact target needs a calibration of `c` on short runs before training (`prepare`) or the
final magnitude cut named in the report (`finish`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from .base import Paper, PreparedRun, PruningMethod, check_settings

CALIBRATION_FILE = "grda_calibration.json"  # written before training, so that --resume keeps the same c


@dataclass
class GRDASettings:
    lr: float = field(default=0.01, metadata={
        "help": "SGD-scale learning rate of the gRDA group (the prunable matrices); the Trainer's scheduler drives it "
                "like learning_rate, which stays the other parameters' rate."})
    c: float = field(default=1e-4, metadata={
        "help": "Threshold scale c >= 0 of c * lr**(mu + 0.5) * sum(n**mu - (n-1)**mu); 0 is plain SGD."})
    mu: float = field(default=0.51, metadata={"help": "Threshold growth exponent, in (0.5, 1)."})
    momentum: float = field(default=0.0, metadata={"help": "gRDAM's Polyak momentum, in [0, 1)."})
    weight_decay: float = field(default=0.0, metadata={"help": "gRDAM's L2 weight decay, >= 0."})
    calibration_trials: int = field(default=4, metadata={
        "help": "With target_sparsity > 0: short runs trying c, c * growth, ... (plus c = 0 for the reference "
                "metric) to choose c; 0 keeps c as given."})
    calibration_growth: float = field(default=4.0, metadata={"help": "Factor between the c values tried, > 1."})
    calibration_epochs: float = field(default=1.0, metadata={"help": "Length of each calibration run in epochs, > 0."})
    calibration_tolerance: float = field(default=0.01, metadata={
        "help": "Largest drop of the dev metric a c may cost during calibration, >= 0."})
    final_cut: bool = field(default=True, metadata={
        "help": "If gRDA ends below target_sparsity, cut the smallest weights to reach it (the report says so); "
                "false reports the sparsity gRDA reached."})

    def __post_init__(self):
        check_settings(self, {
            "lr": (self.lr > 0, "a number > 0"),
            "c": (self.c >= 0, "a number >= 0"),
            "mu": (0.5 < self.mu < 1.0, "a number in (0.5, 1)"),
            "momentum": (0.0 <= self.momentum < 1.0, "a number in [0, 1)"),
            "weight_decay": (self.weight_decay >= 0, "a number >= 0"),
            "calibration_trials": (self.calibration_trials >= 0, "an integer >= 0"),
            "calibration_growth": (self.calibration_growth > 1, "a number > 1"),
            "calibration_epochs": (self.calibration_epochs > 0, "a number > 0"),
            "calibration_tolerance": (self.calibration_tolerance >= 0, "a number >= 0"),
        })


class GRDA(PruningMethod):
    name = "grda"
    display_name = "gRDA (directional pruning)"
    paper = Paper(authors="Chao, Wang, Xing & Cheng", title="Directional Pruning of Deep Neural Networks",
                  venue="NeurIPS 2020", url="https://arxiv.org/abs/2006.09358")
    summary = ("A sparse-training optimizer (generalized regularized dual averaging) whose growing soft threshold "
               "zeroes weights along flat directions of the loss.")
    settings_class = GRDASettings
    schedules_masks = False

    def __init__(self, params, args=None, settings=None):
        super().__init__(params, args, settings)
        self.outcome: dict | None = None  # the sparsity gRDA reached, and whether a final cut followed

    @classmethod
    def check(cls, settings: GRDASettings, target_sparsity: float) -> None:
        check_settings(settings, {"c": (not (settings.calibration_trials > 0 and settings.c == 0 and target_sparsity > 0),
                                        "a number > 0 to start the calibration from")})

    @classmethod
    def prepare(cls, run: PreparedRun) -> dict | None:
        """Choose c on short runs (on resume: the choice the first run made); the run's settings take it."""
        settings = run.args.method_settings
        if run.args.target_sparsity <= 0 or settings.calibration_trials <= 0:
            return None
        saved = run.output_dir / CALIBRATION_FILE
        if run.resume_from is not None and saved.is_file():
            calibration = json.loads(saved.read_text())
        else:
            from ..optim.grda_calibration import calibrate_grda

            calibration = calibrate_grda(run.model, run.args, **run.trainer_kwargs)
            if run.args.should_save:
                run.output_dir.mkdir(parents=True, exist_ok=True)
                saved.write_text(json.dumps(calibration, indent=1) + "\n")
        run.args.method_args = {**run.args.method_args, "c": calibration["chosen_c"]}
        return {"calibration": calibration}

    def create_optimizer(self, trainer):
        from ..optim.grda import grda_for_trainer

        return grda_for_trainer(trainer, self.settings)

    def finish(self, trainer) -> None:
        """gRDA's sparsity is an outcome: record it; if short of a target, cut the smallest weights (reported)."""
        reached, target = trainer.pruner.sparsity(), self.args.target_sparsity
        cut = bool(self.settings.final_cut and target > 0 and reached < target)
        if cut:
            trainer.pruner.cut_to(target)
        self.outcome = {"sparsity_reached": reached, "final_cut": cut}

    @classmethod
    def report(cls, trainer, prepared: dict | None) -> dict:
        method = trainer.pruner.method
        if getattr(method, "outcome", None) is None:
            return {}
        s = method.settings
        grda = {**method.outcome, "c": s.c, "mu": s.mu, "lr": s.lr, "momentum": s.momentum,
                "weight_decay": s.weight_decay, "calibration": (prepared or {}).get("calibration")}
        return {"grda": grda, "final_cut": method.outcome["final_cut"]}

    @classmethod
    def summary_lines(cls, report: dict) -> list[str]:
        grda = report.get("grda")
        if not grda:
            return []
        cut = "; then a final magnitude cut to the target" if grda["final_cut"] else ""
        return [f"  gRDA       reached {grda['sparsity_reached']:.4f} with c={grda['c']:.3g}{cut}"]
