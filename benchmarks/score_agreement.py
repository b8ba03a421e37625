"""Do PINS and PLATON prune the same weights? Other criteria scored beside one pruning run, mask update by update.

PINS ranks a weight by `|g * theta(t+1)|` (after the optimizer's update), PLATON by `|g * theta(t)|`, with the same
smoothing; whether one AdamW step is enough to make them choose differently is a question of measurement. This script
runs one cell of the mini-GLUE grid (`benchmarks/glue_cpu.py`'s recipe for it, the `--method` driving the masks) and
keeps "shadow" scorers of other criteria beside it, fed the same gradients and weights at the same steps and windows
(a `TrainerCallback`, called before the pruner). At each mask update every shadow chooses as many weights to prune
as the driver just pruned, among the same live weights, and the JSON records how many of its choices the driver made
too. A shadow of the driver's own criterion (`pins` beside a PINS run) must agree on every weight: the check that the
shadows see what the driver sees.

    python benchmarks/score_agreement.py --task cola --sparsity 0.9 --glue-dir ../shared/glue \\
        --output benchmarks/results/score_agreement/score_agreement.json      # adds (or replaces) this run in the file

Shadows: `pins` (the optimizer's update), `pins_sgd` (the released code's SGD stand-in `theta - lr * g`), `platon`,
`magnitude` (`|theta|`, a criterion that is known to choose differently: the scale of "different").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO))

SHADOWS = ("pins", "pins_sgd", "platon", "magnitude")


def shadow_scorers(params, args, names):
    """Scorers of the named criteria over the driver's prunable weights, with the driver's smoothing settings."""
    import dataclasses

    from hf_pins.methods import PINS, PLATON, Magnitude

    smoothing = {"score_beta1": args.score_beta1, "score_beta2": args.score_beta2}
    experimental = args.experimental_settings
    sgd = dataclasses.replace(experimental, importance_update="sgd")
    made = {
        "pins": lambda: PINS(params, SimpleNamespace(**smoothing, experimental_settings=experimental)),
        "pins_sgd": lambda: PINS(params, SimpleNamespace(**smoothing, experimental_settings=sgd)),
        "platon": lambda: PLATON(params, SimpleNamespace(**smoothing)),
        "magnitude": lambda: Magnitude(params, None),
    }
    return {name: made[name]() for name in names}


def agreement_callback(names):
    """A `TrainerCallback` that scores the run with the named shadow criteria and compares at each mask update."""
    import torch
    from transformers import TrainerCallback
    from transformers.trainer_utils import has_length

    from hf_pins.pruning.masks import global_masks, live_only
    from hf_pins.pruning.schedule import CubicSchedule, optimizer_steps_per_epoch
    from hf_pins.pruning.targets import find_prunable

    class ScoreAgreement(TrainerCallback):
        def __init__(self):
            self.updates: list[dict] = []

        def on_train_begin(self, args, state, control, model=None, train_dataloader=None, **kwargs):
            if args.mask_mode != "persistent" or args.pruning_threshold != "global":
                raise SystemExit("score_agreement: only persistent masks with one global threshold are compared")
            per_epoch = 0
            if train_dataloader is not None and has_length(train_dataloader):
                per_epoch = optimizer_steps_per_epoch(len(train_dataloader), args.gradient_accumulation_steps)
            self.schedule = CubicSchedule.from_args(args, state.max_steps, per_epoch)
            self.params = find_prunable(model, args.prunable_modules)
            self.total = sum(p.numel() for p in self.params.values())
            self.shadows = shadow_scorers(self.params, args, names)
            # Every weight is live at the start, as in the pruner (a weight may be exactly zero and still live: the
            # float16-rounded MiniLM has three).
            self.kept = {n: torch.ones_like(p, dtype=torch.bool) for n, p in self.params.items()}
            self.pruned = 0  # positions off in `kept`
            self.snapshot = None

        def on_pre_optimizer_step(self, args, state, control, optimizer=None, **kwargs):
            for scorer in self.shadows.values():
                scorer.before_step(optimizer)

        @torch.no_grad()
        def on_optimizer_step(self, args, state, control, optimizer=None, **kwargs):
            step = state.global_step
            for scorer in self.shadows.values():
                scorer.after_step(optimizer)
                if self.schedule.closes_window(step):
                    scorer.end_window()
            # Score where the pruner is about to (it runs after this callback): the weights are not masked yet.
            self.snapshot = None
            if self.schedule.updates_mask(step):
                self.due = int(round(self.schedule.sparsity(step) * self.total))  # the pruner's count after it
                if self.due != self.pruned:
                    self.snapshot = {name: scorer.scores() for name, scorer in self.shadows.items()}

        @torch.no_grad()
        def on_step_end(self, args, state, control, **kwargs):
            if self.snapshot is None:
                return
            step = state.global_step - 1  # the step the pruner has just finished
            kept = {n: p.detach() != 0 for n, p in self.params.items()}
            pruned_now = {n: self.kept[n] & ~kept[n] for n in kept}
            count = sum(int(m.sum()) for m in pruned_now.values())
            if count == 0:
                return
            pruned_total = sum(int((~m).sum()) for m in kept.values())
            entry = {"step": step + 1, "sparsity": round(pruned_total / self.total, 6), "pruned_now": count,
                     "same_choice": {}}
            if pruned_total != self.due:  # a live weight exactly zero after the step: this view counts it as pruned
                entry["zero_but_live"] = pruned_total - self.due
            for name, shadow_scores in self.snapshot.items():
                shadow_kept, _ = global_masks(live_only(shadow_scores, self.kept), pruned_total / self.total)
                same = sum(int((pruned_now[n] & ~shadow_kept[n]).sum()) for n in kept)
                entry["same_choice"][name] = round(same / count, 6)
            self.updates.append(entry)
            self.kept, self.pruned, self.snapshot = kept, pruned_total, None

        def summary(self) -> dict:
            """Per shadow: the share of all pruned weights it would have chosen too, and its lowest share in one update."""
            pruned = sum(u["pruned_now"] for u in self.updates)
            return {name: {"same_choice": round(sum(u["same_choice"][name] * u["pruned_now"] for u in self.updates)
                                                / max(pruned, 1), 6),
                           "lowest_in_one_update": min((u["same_choice"][name] for u in self.updates), default=None)}
                    for name in names}

    return ScoreAgreement()


def main(argv=None) -> int:
    from glue_cpu import cell_recipe, glue_score

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="cola", choices=("rte", "mrpc", "stsb", "cola", "sst2"))
    parser.add_argument("--method", default="pins", choices=("pins", "pins_no_selfreg", "platon", "magnitude"),
                        help="the method that drives the masks (a grid method)")
    parser.add_argument("--sparsity", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--budget", default="gpu", choices=("cpu", "gpu"))
    parser.add_argument("--shadows", nargs="+", default=list(SHADOWS), choices=SHADOWS)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a recipe override")
    parser.add_argument("--glue-dir", default="../shared/glue")
    parser.add_argument("--scratch", default="/tmp/hf_pins_agreement")
    parser.add_argument("--output", default=str(REPO / "benchmarks" / "results" / "score_agreement" / "score_agreement.json"))
    parser.add_argument("--quick", action="store_true", help="the grid's quick budget (a few steps: does it run?)")
    options = parser.parse_args(argv)

    from hf_pins.training import run_training

    recipe, overrides = cell_recipe(options.task, options.method, options.sparsity, options.seed, options.glue_dir,
                                    options.budget, options.quick, options.set)
    callback = agreement_callback(options.shadows)
    out = Path(options.scratch) / f"{options.task}-{options.method}-{options.sparsity}-{options.seed}"
    started = time.time()
    result = run_training(recipe, output_dir=str(out), overwrite=True, callbacks=[callback])
    report = result.report
    test_key = next(k for k in report["metrics"] if k.startswith("test"))
    run = {
        "task": options.task, "method": options.method, "target_sparsity": options.sparsity, "seed": options.seed,
        "budget": "quick" if options.quick else options.budget, "overrides": overrides,
        "measured_sparsity": round(report["overall"], 6),
        "dev_score": glue_score(options.task, report["metrics"]["dev"]),
        "test_score": glue_score(options.task, report["metrics"][test_key]),
        "seconds": round(time.time() - started, 1),
        "summary": callback.summary(),
        "updates": callback.updates,
    }
    path = Path(options.output)
    data = json.loads(path.read_text()) if path.exists() else {"runs": []}
    data["machine"] = {"platform": platform.platform(), "python": platform.python_version(),
                       "threads": os.environ.get("OMP_NUM_THREADS")}
    same = lambda r: all(r[k] == run[k] for k in ("task", "method", "target_sparsity", "seed", "budget"))  # noqa: E731
    data["runs"] = [r for r in data["runs"] if not same(r)] + [run]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n")
    print(json.dumps({"task": run["task"], "sparsity": run["target_sparsity"], "test": run["test_score"],
                      "summary": run["summary"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
