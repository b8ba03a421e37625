"""`hf-pins export MODEL_DIR --output DIR [--sequence-length N] [--batch-size N] [--int8 [--calibration-task T --glue-dir D]]`."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a trained model to ONNX for ONNX Runtime and DeepSparse",
        description="Export a model directory written by `hf-pins train` to ONNX (optimum, text-classification): "
        "model.onnx with dynamic axes, model-static.onnx with inputs fixed to [batch, sequence] (DeepSparse only "
        "exploits sparsity with static shapes), tokenizer, config and export_report.json. Checks that the logits "
        "match PyTorch and that every pruned weight kept its zeros.",
    )
    parser.add_argument("model_dir", metavar="MODEL_DIR")
    parser.add_argument("--output", "-o", required=True, metavar="DIR", help="directory to write (must be empty)")
    parser.add_argument("--sequence-length", type=int, default=128, metavar="N",
                        help="sequence length of the static-shape graph (default 128)")
    parser.add_argument("--batch-size", type=int, default=1, metavar="N",
                        help="batch size of the static-shape graph (default 1)")
    parser.add_argument("--int8", action="store_true",
                        help="also write an INT8 model (symmetric weights, so pruned zeros stay zero) for both runtimes")
    parser.add_argument("--calibration-task", metavar="TASK",
                        help="GLUE task whose train texts calibrate INT8 and whose test split measures its accuracy cost")
    parser.add_argument("--glue-dir", metavar="DIR",
                        help="folder with <Task>/{train,dev}.tsv for --calibration-task (default: the Hugging Face Hub)")
    parser.add_argument("--calibration-samples", type=int, default=256, metavar="N",
                        help="training texts used to calibrate INT8 activations (default 256)")
    parser.add_argument("--eval-samples", type=int, default=None, metavar="N",
                        help="cap on test examples for the INT8 accuracy check (default: all)")
    parser.add_argument("--opset", type=int, default=None,
                        help="ONNX opset, 14 to the installed onnx's newest (default: optimum's choice)")
    parser.add_argument("--overwrite", action="store_true", help="replace the contents of a non-empty --output")
    parser.set_defaults(func=run)


def glue_examples(task: str, glue_dir: str | None, calibration_samples: int, eval_samples: int | None):
    """(calibration texts, (eval texts, eval labels)) from the project's GLUE loader: train calibrates, test evaluates."""
    from ..data.glue import load_glue_splits

    splits = load_glue_splits(task, glue_dir=glue_dir, max_train_samples=calibration_samples,
                              max_eval_samples=eval_samples, glue_dir_key="--glue-dir")
    keys = splits.task.text_keys

    def texts(ds):
        cols = [ds[k] for k in keys]
        return list(cols[0]) if len(cols) == 1 else list(zip(*cols))

    test = next(iter(splits.test.values()))
    return texts(splits.train), (texts(test), list(test["label"]))


def run(args: argparse.Namespace) -> int:
    from ..errors import UserError
    from ..extras import require

    require("export", "hf-pins export")
    from ..export import check_export_request, export_model

    if args.calibration_task and not args.int8:
        raise UserError("--calibration-task only matters with --int8")
    if args.glue_dir and not args.calibration_task:
        raise UserError("--glue-dir needs --calibration-task")
    if args.calibration_samples < 1 or (args.eval_samples is not None and args.eval_samples < 1):
        raise UserError("--calibration-samples and --eval-samples must be positive integers")
    # Cheap checks first: a wrong path, a broken file or an unwritable --output should not wait for GLUE to load.
    check_export_request(args.model_dir, args.output, sequence_length=args.sequence_length,
                         batch_size=args.batch_size, overwrite=args.overwrite, opset=args.opset)
    calibration = evaluation = None
    if args.calibration_task:
        calibration, evaluation = glue_examples(args.calibration_task, args.glue_dir, args.calibration_samples,
                                                args.eval_samples)
    export_model(args.model_dir, args.output, sequence_length=args.sequence_length, batch_size=args.batch_size,
                 int8=args.int8, overwrite=args.overwrite, opset=args.opset, calibration_texts=calibration,
                 eval_examples=evaluation)
    return 0
