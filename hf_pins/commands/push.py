"""`hf-pins push MODEL_DIR --repo-id ID`: upload a trained sparse model, its card, recipe, report and plots."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "push",
        help="upload a trained sparse model with its model card to the Hugging Face Hub",
        description=(
            "Upload the folder written by `hf-pins train` (safetensors weights, config, tokenizer, recipe.yaml, "
            "pruning_report.json, benchmark JSONs, plots) with a model card rendered as README.md. The token comes "
            "from HF_TOKEN or `hf auth login`."
        ),
    )
    parser.add_argument("model_dir", metavar="MODEL_DIR", help="folder written by `hf-pins train`")
    parser.add_argument("--repo-id", required=True, metavar="ID", help="Hub model repo, OWNER/NAME (created if needed)")
    parser.add_argument("--private", action="store_true", help="create the repo private")
    parser.add_argument("--revision", metavar="R", help="branch to commit to (created if needed; default main)")
    parser.add_argument("--include-onnx", action="store_true", help="also upload the ONNX export in MODEL_DIR/onnx")
    parser.add_argument(
        "--dry-run", metavar="DIR", dest="dry_run",
        help="write the exact upload folder to DIR (new or empty) and upload nothing",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .. import hub  # imported on use: `hf-pins --help` and other commands stay fast

    where = hub.push_model(
        args.model_dir,
        args.repo_id,
        private=args.private,
        revision=args.revision,
        include_onnx=args.include_onnx,
        dry_run_dir=args.dry_run,
    )
    if args.dry_run:
        print(f"wrote the upload folder for {args.repo_id} to {where} (nothing uploaded)")
    else:
        print(f"pushed to {where}")
    return 0
