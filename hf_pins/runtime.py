"""Run an exported model (`hf-pins export`) on CPU with DeepSparse or ONNX Runtime.

DeepSparse is optional (deprecated upstream, Linux x86-64 with AVX2 or better only) and imported lazily, so everything
works with ONNX Runtime alone. DeepSparse runs the static-shape graph (the only form whose sparsity it exploits), so its
inputs are always padded to the exported [batch, sequence]; ONNX Runtime runs the dynamic graph and pads to the longest
text in the batch.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import tempfile
from pathlib import Path

import numpy as np

from . import export as ex
from .cpu import cpu_flags
from .errors import ModelError, UserError

LOG = logging.getLogger(__name__)

RUNTIMES = ("auto", "deepsparse", "onnxruntime")
PRECISIONS = ("auto", "fp32", "int8")


# --------------------------------------------------------------------------------------------------------------------
# What this machine can run


def deepsparse_status() -> tuple[bool, str]:
    """(usable, why not): DeepSparse needs Linux x86-64 with AVX2 at least, and the package installed."""
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        return False, f"DeepSparse runs on Linux x86-64 only (this is {platform.system()} {platform.machine()})"
    flags = cpu_flags()
    if flags and "avx2" not in flags:
        return False, "DeepSparse needs a CPU with AVX2 at least"
    try:
        import deepsparse  # noqa: F401
    except Exception as exc:  # ImportError, or a broken install (e.g. an onnx it cannot use)
        return False, f"DeepSparse is not importable ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
    return True, ""


def resolve_runtime(runtime: str) -> str:
    """`auto` becomes DeepSparse where it can run, else ONNX Runtime with one line saying why."""
    if runtime not in RUNTIMES:
        raise UserError(f"runtime {runtime!r} is not one of {', '.join(RUNTIMES)}")
    if runtime == "onnxruntime":
        return runtime
    ok, why = deepsparse_status()
    if runtime == "deepsparse":
        if not ok:
            raise UserError(f"--runtime deepsparse is not available here: {why}; use --runtime onnxruntime")
        return runtime
    if not ok:
        LOG.warning("%s; using ONNX Runtime instead", why)
        return "onnxruntime"
    return "deepsparse"


# --------------------------------------------------------------------------------------------------------------------
# Exported directories


def read_export_report(onnx_dir: Path) -> dict:
    path = onnx_dir / ex.REPORT_NAME
    if not path.is_file():
        return {}
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise ModelError(f"{path} is not valid JSON ({ex._first_line(exc)}); export the model again") from None
    if not isinstance(report, dict):
        raise ModelError(f"{path} holds JSON {type(report).__name__}, expected an object; export the model again")
    return report


def check_onnx_dir(model_dir: str | os.PathLike) -> Path:
    path = Path(model_dir)
    if not path.exists():
        raise ModelError(f"model directory {path} does not exist")
    if not path.is_dir():
        raise ModelError(f"{path} is not a directory; expected a directory written by `hf-pins export`")
    if not ex.is_onnx_dir(path):
        if (path / "config.json").is_file():
            raise ModelError(f"{path} holds a PyTorch model, not an export; run `hf-pins export {path} --output DIR` first")
        raise ModelError(f"{path} has no {ex.ONNX_NAME}; expected a directory written by `hf-pins export`")
    return path


def available_precisions(onnx_dir: Path) -> list[str]:
    found = []
    if (onnx_dir / ex.ONNX_NAME).is_file() or (onnx_dir / ex.STATIC_NAME).is_file():
        found.append("fp32")
    if (onnx_dir / ex.INT8_NAME).is_file() or (onnx_dir / ex.INT8_STATIC_NAME).is_file():
        found.append("int8")
    return found


def resolve_precision(onnx_dir: Path, precision: str) -> str:
    """`auto` is INT8 when the directory was exported with --int8 (the user asked for it), else FP32."""
    if precision not in PRECISIONS:
        raise UserError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    have = available_precisions(onnx_dir)
    if precision == "auto":
        return "int8" if "int8" in have else "fp32"
    if precision not in have:
        hint = " (export with --int8)" if precision == "int8" else ""
        raise UserError(f"{onnx_dir} has no {precision} model{hint}")
    return precision


def onnx_file(onnx_dir: Path, precision: str, static: bool) -> Path | None:
    names = {("fp32", False): ex.ONNX_NAME, ("fp32", True): ex.STATIC_NAME,
             ("int8", False): ex.INT8_NAME, ("int8", True): ex.INT8_STATIC_NAME}
    path = onnx_dir / names[(precision, static)]
    return path if path.is_file() else None


def static_model(onnx_dir: Path, precision: str, batch_size: int, sequence_length: int, workdir: Path) -> Path:
    """The static-shape graph at [batch, seq]: the exported one when it matches, else a copy fixed here."""
    import onnx

    path = onnx_file(onnx_dir, precision, static=True)
    if path is not None:
        shapes = list(ex.static_input_shapes(path).values())
        if shapes and all(s == [batch_size, sequence_length] for s in shapes):
            return path
    source = onnx_file(onnx_dir, precision, static=False) or path
    target = workdir / f"{precision}-static-b{batch_size}-s{sequence_length}.onnx"
    if not target.is_file():
        onnx.save(ex.make_static(ex.load_onnx(source), batch_size, sequence_length), str(target))
    return target


# --------------------------------------------------------------------------------------------------------------------
# Engines: a callable from a {name: int64 array} feed to logits


class OrtEngine:
    name = "onnxruntime"

    def __init__(self, path: Path, threads: int | None = None):
        self.path = path
        self.session = ex.ort_session(path, threads)
        self.input_names = [i.name for i in self.session.get_inputs()]
        shape = self.session.get_inputs()[0].shape
        self.static_shape = tuple(shape) if all(isinstance(d, int) for d in shape) else None

    def __call__(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run(None, {n: feeds[n] for n in self.input_names})[0]


def pin_deepsparse_threads() -> None:
    """Bind DeepSparse's worker threads to cores, as its own benchmark and server do by default (`Engine` alone does
    not). Unpinned, its threads wait on each other whenever another process takes a core: on a busy 2-core machine an
    80%-sparse BERT-base ran at about 1 item/s unpinned and 6 pinned. Set NM_BIND_THREADS_TO_CORES=0 to opt out."""
    os.environ.setdefault("NM_BIND_THREADS_TO_CORES", "1")


class DeepSparseEngine:
    name = "deepsparse"

    def __init__(self, path: Path, batch_size: int, threads: int | None = None):
        pin_deepsparse_threads()
        from deepsparse import Engine

        self.path = path
        self.input_names = ex.graph_input_names(path)
        self.engine = Engine(str(path), batch_size=batch_size, num_cores=threads)
        shapes = list(ex.static_input_shapes(path).values())
        self.static_shape = tuple(shapes[0])

    def __call__(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        return self.engine.run([np.ascontiguousarray(feeds[n]) for n in self.input_names], val_inp=False)[0]


def physical_cores() -> int:
    try:
        import psutil

        return psutil.cpu_count(logical=False) or os.cpu_count() or 1
    except ImportError:
        return os.cpu_count() or 1


def make_engine(onnx_dir: Path, runtime: str, precision: str, batch_size: int, sequence_length: int,
                workdir: Path, threads: int | None = None):
    if runtime == "deepsparse":
        return DeepSparseEngine(static_model(onnx_dir, precision, batch_size, sequence_length, workdir), batch_size,
                                threads)
    path = onnx_file(onnx_dir, precision, static=False) or onnx_file(onnx_dir, precision, static=True)
    return OrtEngine(path, threads or physical_cores())


# --------------------------------------------------------------------------------------------------------------------
# The predictor


class Predictor:
    """`predict(texts)` -> [{"label", "score"}] (or [{"score"}] for regression) with the exported tokenizer and labels."""

    def __init__(self, onnx_dir: Path, runtime: str, precision: str, threads: int | None = None):
        from transformers import AutoConfig, AutoTokenizer

        self.model_dir = onnx_dir
        self.runtime = runtime
        self.precision = precision
        report = read_export_report(onnx_dir)
        self.batch_size = int(report.get("batch_size", 1))
        self.sequence_length = int(report.get("sequence_length", 128))
        try:
            self.config = AutoConfig.from_pretrained(str(onnx_dir))
            self.tokenizer = AutoTokenizer.from_pretrained(str(onnx_dir))
        except Exception as exc:  # noqa: BLE001 - the export's files: any library failure on them is reported
            raise ModelError(f"{onnx_dir} lacks readable config or tokenizer files: {ex._first_line(exc)}") from None
        self.regression = self.config.num_labels == 1 or getattr(self.config, "problem_type", None) == "regression"
        self._tmp = tempfile.TemporaryDirectory(prefix="hf_pins_rt_")
        self.engine = make_engine(onnx_dir, runtime, precision, self.batch_size, self.sequence_length,
                                  Path(self._tmp.name), threads)

    def logits(self, inputs) -> np.ndarray:
        items = _as_items(inputs)
        if not items:
            return np.zeros((0, self.config.num_labels), dtype=np.float32)
        static = self.engine.static_shape is not None
        enc = ex.encode(self.tokenizer, items, self.sequence_length, pad_to_max=static)
        feeds = ex.feeds_for(self.engine.input_names, enc)
        if not static:
            return self.engine(feeds)
        out = []
        b = self.batch_size
        for start in range(0, len(items), b):
            chunk = {k: v[start:start + b] for k, v in feeds.items()}
            rows = chunk[self.engine.input_names[0]].shape[0]
            if rows < b:  # the graph has a fixed batch: fill with copies, drop their outputs
                chunk = {k: np.resize(v, (b, v.shape[1])) for k, v in chunk.items()}
            out.append(self.engine(chunk)[:rows])
        return np.concatenate(out)

    def predict(self, inputs) -> list[dict]:
        logits = self.logits(inputs)
        if self.regression:
            return [{"score": float(row[0])} for row in logits]
        shifted = logits - logits.max(axis=1, keepdims=True)
        probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
        id2label = self.config.id2label or {}
        result = []
        for row in probs:
            i = int(row.argmax())
            result.append({"label": str(id2label.get(i, f"LABEL_{i}")), "score": float(row[i])})
        return result

    def __repr__(self) -> str:
        return f"Predictor({self.model_dir}, runtime={self.runtime}, precision={self.precision})"


def _as_items(inputs) -> list:
    """A text, a (text_a, text_b) pair, or a list of either."""
    if isinstance(inputs, str):
        return [inputs]
    if isinstance(inputs, tuple) and len(inputs) == 2 and all(isinstance(t, str) for t in inputs):
        return [inputs]
    items = list(inputs)
    for item in items:
        if isinstance(item, str):
            continue
        if isinstance(item, (tuple, list)) and len(item) == 2 and all(isinstance(t, str) for t in item):
            continue
        raise UserError("predict() takes texts or (text_a, text_b) pairs of strings")
    if len({isinstance(i, str) for i in items}) > 1:
        raise UserError("predict() takes either texts or (text_a, text_b) pairs, not a mix")
    return [tuple(i) if not isinstance(i, str) else i for i in items]


def load(model_dir: str | os.PathLike, runtime: str = "auto", precision: str = "auto",
         threads: int | None = None) -> Predictor:
    """A predictor for a directory written by `hf-pins export`.

    runtime: "auto" (DeepSparse when importable and the CPU has AVX2, else ONNX Runtime with a one-line warning),
    "deepsparse" or "onnxruntime". precision: "auto" (INT8 if exported with --int8), "fp32" or "int8".
    """
    onnx_dir = check_onnx_dir(model_dir)
    chosen = resolve_runtime(runtime)
    return Predictor(onnx_dir, chosen, resolve_precision(onnx_dir, precision), threads)
