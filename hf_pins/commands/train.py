"""`hf-pins train RECIPE [--set key.path=value ...] [--output-dir DIR] [--resume [--allow-changes] | --overwrite]`."""

from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="fine-tune and prune a model as a recipe says",
        description="Fine-tune and prune a model as a recipe says. RECIPE is a YAML file, a bundled recipe name, a "
        "model directory holding recipe.yaml, or hf://OWNER/REPO/PATH.yaml.",
    )
    parser.add_argument("recipe", metavar="RECIPE")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help="override a recipe value, e.g. --set pruning.target_sparsity=0.9 (repeatable)")
    parser.add_argument("--output-dir", help="where the model goes (default: training.output_dir or outputs/TASK-METHOD)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in the output directory")
    group.add_argument("--overwrite", action="store_true",
                       help="replace the run in a non-empty output directory (its checkpoints are removed)")
    parser.add_argument("--allow-changes", action="store_true",
                        help="with --resume: continue even where the recipe differs from the one the run started with")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import UserError
    from ..recipe import load_recipe
    from ..training import format_summary, run_training

    if args.allow_changes and not args.resume:
        raise UserError("--allow-changes: only used with --resume")
    import datasets

    datasets.disable_progress_bars()  # reading and tokenizing take seconds; the training bar is the one that matters
    recipe = load_recipe(args.recipe, overrides=args.overrides)
    if not sys.stderr.isatty() and "disable_tqdm" not in recipe.training:
        recipe.training["disable_tqdm"] = True  # in a log file: a line per logging step, not a redrawn bar
    result = run_training(recipe, output_dir=args.output_dir, resume=args.resume, overwrite=args.overwrite,
                          allow_changes=args.allow_changes)
    print(format_summary(result))
    return 0
