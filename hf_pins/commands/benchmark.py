"""`hf-pins benchmark MODEL_OR_ONNX_DIR [--runtime deepsparse|onnxruntime|all] [--batch-size N] [--sequence-length N]`."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "benchmark",
        help="measure inference throughput and latency on this CPU",
        description="Measure items/s and median/p90 latency of a model per runtime, after a warm-up. MODEL_OR_ONNX_DIR "
        "is a directory written by `hf-pins export`, or a PyTorch model directory (exported to a temporary folder "
        "first). Inputs are full-length random token ids.",
    )
    parser.add_argument("model_dir", metavar="MODEL_OR_ONNX_DIR")
    parser.add_argument("--runtime", choices=("deepsparse", "onnxruntime", "all"), default="all",
                        help="default: all (DeepSparse is skipped with a note where it cannot run)")
    parser.add_argument("--precision", choices=("fp32", "int8", "all"), default="all",
                        help="which exported graphs to run (default: all the directory has)")
    parser.add_argument("--batch-size", type=int, default=None, metavar="N",
                        help="default: the export's static batch size, else 1")
    parser.add_argument("--sequence-length", type=int, default=None, metavar="N",
                        help="default: the export's static sequence length, else 128")
    parser.add_argument("--int8", action="store_true", help="when exporting a PyTorch model, also make the INT8 graph")
    duration = parser.add_mutually_exclusive_group()
    duration.add_argument("--seconds", type=float, default=10.0, help="measure for this long per runtime (default 10)")
    duration.add_argument("--iterations", type=int, help="measure exactly this many calls per runtime")
    parser.add_argument("--warmup", type=float, default=2.0, metavar="SECONDS", help="warm-up time (default 2)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="split the measurement into this many interleaved rounds over the runtimes, so that "
                        "other processes on a shared machine slow them all alike (default 3)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads/cores per runtime (default: the physical cores)")
    parser.add_argument("--json", metavar="FILE", help="also write {machine, results} as JSON here")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import tempfile
    from pathlib import Path

    from .. import export as ex
    from .. import inference_benchmark as ib
    from .. import io
    from .. import runtime as rt
    from ..errors import ModelError, UserError
    from ..extras import require

    require("export", "hf-pins benchmark")

    if (args.batch_size is not None and args.batch_size < 1) or (
            args.sequence_length is not None and args.sequence_length < 1):
        raise UserError("--batch-size and --sequence-length must be positive integers")
    if (args.iterations is not None and args.iterations < 1) or args.seconds <= 0 or args.warmup < 0:
        raise UserError("--iterations and --seconds must be positive, --warmup not negative")
    if args.threads is not None and args.threads < 1:
        raise UserError("--threads must be a positive integer")
    if args.rounds < 1:
        raise UserError("--rounds must be a positive integer")
    path = Path(args.model_dir)
    if not path.is_dir():
        raise ModelError(f"model directory {path} does not exist" if not path.exists() else
                         f"{path} is not a directory")
    if args.json:  # before measuring: a wrong path should not cost the measurement
        io.check_output_file(args.json, "--json")
    if args.sequence_length is not None:
        ex.check_sequence_length(path, args.sequence_length)

    if args.runtime == "all":
        runtimes = ["onnxruntime"]
        ok, why = rt.deepsparse_status()
        if ok:
            runtimes.append("deepsparse")
        else:
            print(f"note: skipping DeepSparse: {why}")
    else:
        runtimes = [rt.resolve_runtime(args.runtime)]

    with io.stop_on_signals("benchmark", keeps="nothing was written"), \
            tempfile.TemporaryDirectory(prefix="hf_pins_export_") as tmp:
        if ex.is_onnx_dir(path):
            onnx_dir = path
            report = rt.read_export_report(onnx_dir)
            args.batch_size = args.batch_size or int(report.get("batch_size", 1))
            args.sequence_length = args.sequence_length or int(report.get("sequence_length", 128))
        else:
            args.batch_size = args.batch_size or 1
            args.sequence_length = args.sequence_length or 128
            onnx_dir = Path(tmp) / "onnx"
            ex.export_model(path, onnx_dir, sequence_length=args.sequence_length, batch_size=args.batch_size,
                            int8=args.int8 or args.precision == "int8")
        have = rt.available_precisions(onnx_dir)
        precisions = have if args.precision == "all" else [rt.resolve_precision(onnx_dir, args.precision)]
        machine = ib.machine_info()
        print(f"machine: {ib.format_machine(machine)}")
        results = ib.benchmark_dir(onnx_dir, runtimes, precisions, batch_size=args.batch_size,
                                   sequence_length=args.sequence_length, warmup_seconds=args.warmup,
                                   seconds=None if args.iterations else args.seconds, iterations=args.iterations,
                                   threads=args.threads, rounds=args.rounds, label=path.name)
    print()
    print(ib.format_table(results))
    if args.json:
        io.write_json(args.json, {"machine": machine, "results": results}, "--json")
        print(f"wrote {args.json}")
    return 0
