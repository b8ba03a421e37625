"""Greedy forward selection (Ye, Wu & Liu, NeurIPS 2020) removes whole units before training starts.

The selection itself is `hf_pins.structured.gfs`; this method runs it in `prepare`, before the Trainer is built, and
the fine-tuning that follows imposes no unstructured mask (with `then`, the named method prunes the remaining weights
on the schedule instead). The structure is fixed, so every dev evaluation is a candidate for the final model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Optional

from ..errors import UserError
from .base import Paper, PreparedRun, PruningMethod, check_settings

STRUCTURE_FILE = "gfs_structure.json"  # written before training, so that --resume rebuilds the same smaller model
IMITATIONS = ("local", "global", "auto")
BUDGETS = ("per_layer", "global")


@dataclass
class GFSSettings:
    imitation: str = field(default="local", metadata={
        "help": "Select units by reconstructing each layer's output ('local'), by imitating the task loss to first "
                "order ('global'), or the better of the two per layer on dev ('auto')."})
    ffn_keep: Optional[float] = field(default=None, metadata={
        "help": "Fraction of FFN units kept, in (0, 1]; with heads_keep unset too (and then: none), both follow "
                "from target_sparsity."})
    heads_keep: Optional[float] = field(default=None, metadata={"help": "Fraction of attention heads kept, in (0, 1]."})
    budget: str = field(default="per_layer", metadata={
        "help": "'per_layer' (the keep fractions hold in every layer) or 'global' (units go where they reduce the "
                "error most; uneven FFN widths are zero-padded)."})
    tolerance: Optional[float] = field(default=None, metadata={
        "help": "Stop adding units to a layer once the dev accuracy (regression: the dev loss) is within this of "
                "the unpruned model's; the keep fractions stay the maximum."})
    samples: int = field(default=256, metadata={"help": "Train examples the selection sees, >= 1."})
    dev_samples: int = field(default=256, metadata={"help": "Dev examples for 'auto' and the tolerance, >= 1."})
    then: str = field(default="none", metadata={
        "help": "'none' (fine-tune the smaller model plainly) or a scheduled method (pins, magnitude, ...) that "
                "prunes its remaining weights to target_sparsity."})

    def __post_init__(self):
        from . import SCHEDULED_METHODS

        check_settings(self, {
            "imitation": (self.imitation in IMITATIONS, f"one of {', '.join(IMITATIONS)}"),
            "ffn_keep": (self.ffn_keep is None or 0.0 < self.ffn_keep <= 1.0, "null or a number in (0, 1]"),
            "heads_keep": (self.heads_keep is None or 0.0 < self.heads_keep <= 1.0, "null or a number in (0, 1]"),
            "budget": (self.budget in BUDGETS, f"one of {', '.join(BUDGETS)}"),
            "tolerance": (self.tolerance is None or self.tolerance >= 0, "null or a number >= 0"),
            "samples": (self.samples >= 1, "an integer >= 1"),
            "dev_samples": (self.dev_samples >= 1, "an integer >= 1"),
            "then": (self.then in ("none", *SCHEDULED_METHODS), f"one of none, {', '.join(SCHEDULED_METHODS)}"),
        })
        check_settings(self, {"then": (self.then == "none" or self.ffn_keep is not None or self.heads_keep is not None,
                                       "'none' unless ffn_keep or heads_keep is set (with then, target_sparsity is "
                                       "the unstructured target of the remaining weights)")})


class GreedyForwardSelection(PruningMethod):
    name = "gfs"
    display_name = "greedy forward selection"
    paper = Paper(authors="Ye, Wu & Liu",
                  title="Greedy Optimization Provably Wins the Lottery: Logarithmic Number of Winning Tickets is Enough",
                  venue="NeurIPS 2020", url="https://arxiv.org/abs/2010.15969")
    summary = ("Structured pruning that rebuilds each layer from empty, adding the neurons that best imitate the "
               "original layer (local) or lower the loss (global).")
    settings_class = GFSSettings
    schedules_masks = False
    structure_fixed = True

    @classmethod
    def training_method(cls, settings: GFSSettings) -> type[PruningMethod]:
        from . import get_method

        return cls if settings.then == "none" else get_method(settings.then)

    @classmethod
    def prepare(cls, run: PreparedRun) -> dict:
        """Select and remove units (on resume: the smaller model and structure saved by the first run)."""
        saved = run.output_dir / STRUCTURE_FILE
        if run.resume_from is not None and saved.is_file():
            from transformers import AutoModelForSequenceClassification

            run.model = AutoModelForSequenceClassification.from_pretrained(run.resume_from)
            return {"structure": json.loads(saved.read_text())}
        from ..structured.gfs import greedy_forward_selection

        try:
            structure = greedy_forward_selection(run.model, run.args, run.train_dataset, run.eval_dataset,
                                                 run.data_collator, run.is_regression)
        except ValueError as exc:
            raise UserError(f"pruning.method gfs: {exc}") from None
        if run.args.should_save:
            run.output_dir.mkdir(parents=True, exist_ok=True)
            saved.write_text(json.dumps(structure, indent=1) + "\n")
        return {"structure": structure}

    @classmethod
    def report(cls, trainer, prepared: dict | None) -> dict:
        """Sparsity relative to the original prunable weights (removed units count as pruned) and what was kept."""
        from ..structured.gfs import structured_sparsity

        if not prepared:
            return {}
        structure = dict(prepared["structure"])
        before = structure.pop("modules_before")
        sparsity = structured_sparsity({"modules_before": before}, trainer.model, trainer.args.prunable_modules)
        return {"overall": sparsity["overall"], "modules": sparsity["modules"],
                "prunable_weights": sum(before.values()), "structure": structure}

    @classmethod
    def summary_lines(cls, report: dict) -> list[str]:
        structure = report.get("structure")
        if not structure:
            return []
        p = structure["parameters"]
        return [f"  structure  {p['before']:,} -> {p['after']:,} parameters (units removed before fine-tuning)"]
