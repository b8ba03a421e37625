"""Export a (pruned) sequence-classification model to ONNX for ONNX Runtime and DeepSparse, and prove nothing was lost.

Why each step exists:
- optimum's exporter (task `text-classification`) writes `model.onnx` with dynamic axes, which ONNX Runtime runs at any shape.
- DeepSparse only exploits unstructured sparsity when the graph inputs have static shapes (a dynamic-axes 80%-sparse
  BERT-base ran no faster than dense), so a copy with inputs fixed to `[batch, seq]` is written next to it.
- The exporter constant-folds and transposes weights and renames them (`onnx::MatMul_123`), so a weight's zeros could in
  principle be lost without anyone noticing; every prunable weight is found in the graph by content and its sparsity is
  compared with PyTorch's.
- `onnxruntime.quantization` cannot be imported with the onnx 1.14 that DeepSparse 1.8 requires (it needs onnx's INT4
  type), so INT8 is done here: weights symmetric per output channel (zero stays exactly zero), activations static uint8
  from calibration, each prunable `MatMul` rewritten as QuantizeLinear -> MatMulInteger -> Cast -> Mul. That is the
  QOperator form SparseML produces for DeepSparse, and ONNX Runtime runs it too.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from .errors import ModelError, UserError

LOG = logging.getLogger(__name__)

ONNX_NAME = "model.onnx"
STATIC_NAME = "model-static.onnx"
INT8_NAME = "model-int8.onnx"
INT8_STATIC_NAME = "model-int8-static.onnx"
REPORT_NAME = "export_report.json"

PARITY_ATOL = 1e-4
# Files a training run leaves next to the weights that are worth keeping with the exported model.
PROVENANCE_FILES = ("recipe.yaml", "pruning_report.json")

SAMPLE_TEXTS = (
    ("A charming and often affecting journey.", "The film is moving."),
    ("Unflinchingly bleak and desperate.", "It is a cheerful film."),
    ("The cat sat on the mat while the dog slept by the fire.", "A dog slept."),
    ("Stocks fell sharply on Monday after the central bank raised rates.", "Markets went up."),
)


class ExportCheckError(RuntimeError):
    """The exported graph does not reproduce the PyTorch model (logits or zeros differ): a bug, not a user mistake."""


# --------------------------------------------------------------------------------------------------------------------
# Inputs and checks shared by export and runtime


def check_model_dir(model_dir: str | os.PathLike) -> Path:
    """A PyTorch model directory as `save_pretrained` writes it; raise a one-line ModelError otherwise."""
    path = Path(model_dir)
    if not path.exists():
        raise ModelError(f"model directory {path} does not exist")
    if not path.is_dir():
        raise ModelError(f"{path} is not a directory; expected a model directory written by `hf-pins train`")
    if not (path / "config.json").is_file():
        raise ModelError(f"{path} is not a model directory: no config.json (expected a save_pretrained layout)")
    weights = list(path.glob("*.safetensors")) + list(path.glob("pytorch_model*.bin"))
    if not weights:
        raise ModelError(f"{path} has no weights (model.safetensors or pytorch_model.bin)")
    return path


def is_onnx_dir(path: str | os.PathLike) -> bool:
    return (Path(path) / ONNX_NAME).is_file() or (Path(path) / STATIC_NAME).is_file()


def check_output_dir(output: str | os.PathLike, overwrite: bool, source: Path | None = None) -> Path:
    """Refuse to mix a new export with old files: a non-empty output needs `--overwrite`. Changes nothing."""
    out = Path(output)
    if source is not None and out.resolve() == source.resolve():
        raise UserError(f"--output {out} is the model directory itself; choose another directory")
    if out.exists() and not out.is_dir():
        raise UserError(f"--output {out} is a file; expected a directory")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise UserError(f"--output {out} is not empty; pass --overwrite to replace its contents")
        if source is not None and source.resolve().is_relative_to(out.resolve()):
            raise UserError(f"--output {out} contains the model directory; refusing to overwrite it")
    return out


def prepare_output_dir(output: str | os.PathLike, overwrite: bool, source: Path | None = None) -> Path:
    out = check_output_dir(output, overwrite, source)
    if out.exists() and any(out.iterdir()):
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def graph_input_names(onnx_path: str | os.PathLike) -> list[str]:
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    initializers = {i.name for i in model.graph.initializer}
    return [i.name for i in model.graph.input if i.name not in initializers]


def encode(tokenizer, texts: Sequence, sequence_length: int, pad_to_max: bool = True) -> dict[str, np.ndarray]:
    """Tokenize single texts or (text_a, text_b) pairs to int64 numpy arrays."""
    if len(texts) and isinstance(texts[0], (tuple, list)):
        a = [t[0] for t in texts]
        b = [t[1] for t in texts]
        enc = tokenizer(a, b, truncation=True, max_length=sequence_length,
                        padding="max_length" if pad_to_max else "longest", return_tensors="np")
    else:
        enc = tokenizer(list(texts), truncation=True, max_length=sequence_length,
                        padding="max_length" if pad_to_max else "longest", return_tensors="np")
    return {k: np.asarray(v, dtype=np.int64) for k, v in enc.items()}


def feeds_for(input_names: Iterable[str], encoded: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Select the arrays a graph wants; token_type_ids default to zeros when the tokenizer gave none."""
    feeds = {}
    for name in input_names:
        if name in encoded:
            feeds[name] = encoded[name]
        elif name == "token_type_ids":
            feeds[name] = np.zeros_like(encoded["input_ids"])
        else:
            raise ModelError(f"the ONNX graph needs input {name!r}, which the tokenizer does not produce")
    return feeds


def random_encoded(batch_size: int, sequence_length: int, vocab_size: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Full-length random token ids: the worst case for speed, and inputs unlike any sample text for parity."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(min(1000, vocab_size // 2), vocab_size, size=(batch_size, sequence_length), dtype=np.int64)
    return {
        "input_ids": ids,
        "attention_mask": np.ones_like(ids),
        "token_type_ids": np.zeros_like(ids),
    }


def ort_session(path: str | os.PathLike, threads: int | None = None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


# --------------------------------------------------------------------------------------------------------------------
# Static shapes


def make_static(model, batch_size: int, sequence_length: int):
    """Fix every graph input to [batch, seq] and outputs' batch dim, so DeepSparse can plan sparse kernels."""
    import onnx

    static = onnx.ModelProto()
    static.CopyFrom(model)
    initializers = {i.name for i in static.graph.initializer}
    for inp in static.graph.input:
        if inp.name in initializers:
            continue
        dims = inp.type.tensor_type.shape.dim
        if len(dims) != 2:
            raise ExportCheckError(f"graph input {inp.name} has rank {len(dims)}; expected [batch, sequence]")
        for dim, value in zip(dims, (batch_size, sequence_length)):
            dim.ClearField("dim_param")
            dim.dim_value = value
    for out in static.graph.output:
        dims = out.type.tensor_type.shape.dim
        if len(dims) >= 1:
            dims[0].ClearField("dim_param")
            dims[0].dim_value = batch_size
    # Intermediate shapes recorded with symbolic dims would contradict the fixed inputs.
    del static.graph.value_info[:]
    return static


def static_input_shapes(onnx_path: str | os.PathLike) -> dict[str, list]:
    """{input name: [dims]} with ints for fixed dims and strings for symbolic ones."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    initializers = {i.name for i in model.graph.initializer}
    shapes = {}
    for inp in model.graph.input:
        if inp.name in initializers:
            continue
        shapes[inp.name] = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
                            for d in inp.type.tensor_type.shape.dim]
    return shapes


# --------------------------------------------------------------------------------------------------------------------
# Finding PyTorch weights in the graph


def _digest(array: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(array, dtype=np.float32).tobytes()).hexdigest()


def match_initializers(model, weights: dict[str, np.ndarray], atol: float = 1e-6) -> dict[str, tuple[str, bool]]:
    """Map each PyTorch weight name to (ONNX initializer name, transposed?), by content.

    The exporter renames and (for MatMul) transposes weights, so names are useless; equal bytes are a certain match,
    and close values (same shape) are the fallback should an optimisation pass have touched them.
    """
    from onnx import numpy_helper

    by_digest: dict[str, str] = {}
    by_shape: dict[tuple, list[str]] = {}
    arrays: dict[str, np.ndarray] = {}
    for init in model.graph.initializer:
        if len(init.dims) != 2 or init.data_type != 1:  # float32 matrices only
            continue
        arr = numpy_helper.to_array(init)
        arrays[init.name] = arr
        by_digest.setdefault(_digest(arr), init.name)
        by_shape.setdefault(arr.shape, []).append(init.name)

    matches: dict[str, tuple[str, bool]] = {}
    used: set[str] = set()
    for name, w in weights.items():
        for transposed, candidate in ((True, w.T), (False, w)):
            hit = by_digest.get(_digest(candidate))
            if hit is not None and hit not in used:
                matches[name] = (hit, transposed)
                used.add(hit)
                break
    for name, w in weights.items():
        if name in matches:
            continue
        for transposed, candidate in ((True, w.T), (False, w)):
            found = None
            for init_name in by_shape.get(candidate.shape, []):
                if init_name not in used and np.allclose(arrays[init_name], candidate, rtol=0, atol=atol):
                    found = init_name
                    break
            if found:
                matches[name] = (found, transposed)
                used.add(found)
                break
    return matches


def onnx_sparsity(model, matches: dict[str, tuple[str, bool]]) -> dict[str, tuple[int, int]]:
    """{PyTorch weight name: (zeros, size)} of its matched ONNX initializer."""
    from onnx import numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    result = {}
    for name, (init_name, _) in matches.items():
        arr = numpy_helper.to_array(inits[init_name])
        result[name] = (int((arr == 0).sum()), int(arr.size))
    return result


def compare_sparsity(torch_report: dict, onnx_counts: dict[str, tuple[int, int]]) -> dict:
    """Per-module sparsity side by side; raises ExportCheckError if a weight is missing or its zeros changed."""
    modules = {}
    problems = []
    zeros = total = 0
    for name, sp in torch_report["modules"].items():
        counts = onnx_counts.get(name)
        if counts is None:
            modules[name] = {"pytorch": sp, "onnx": None}
            problems.append(f"{name}: not found in the ONNX graph")
            continue
        got = counts[0] / counts[1]
        zeros += counts[0]
        total += counts[1]
        modules[name] = {"pytorch": sp, "onnx": got}
        if abs(got - sp) > 0.5 / counts[1]:  # i.e. a different count of zeros
            problems.append(f"{name}: PyTorch sparsity {sp:.4f} but ONNX {got:.4f}")
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise ExportCheckError("sparsity differs between PyTorch and ONNX: " + "; ".join(problems[:5]) + more)
    return {"overall": {"pytorch": torch_report["overall"], "onnx": zeros / total if total else 0.0},
            "modules": modules}


# --------------------------------------------------------------------------------------------------------------------
# INT8


def _activation_qparams(lo: float, hi: float) -> tuple[float, int]:
    """Asymmetric uint8 scale/zero point over [lo, hi] (widened to include 0 so zero padding is exact)."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = (hi - lo) / 255.0 if hi > lo else 1.0
    zero_point = int(np.clip(round(-lo / scale), 0, 255))
    return float(scale), zero_point


def quantize_weight(w_in_out: np.ndarray, per_channel: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per output column of a [in, out] MatMul weight; exact zeros map to 0 (zero point is 0)."""
    max_abs = np.abs(w_in_out).max(axis=0) if per_channel else np.abs(w_in_out).max(keepdims=True)[0]
    scale = np.where(max_abs > 0, max_abs / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.round(w_in_out / scale), -127, 127).astype(np.int8)
    return q, scale


def calibrate_ranges(model, tensor_names: list[str], feeds_list: list[dict], percentile: float | None = None):
    """Min/max (or a percentile of |x|) of the named intermediate tensors over calibration batches, via ORT."""
    import onnx
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    existing = {o.name for o in probe.graph.output}
    for name in tensor_names:
        if name not in existing:
            probe.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    # Basic optimisation only: full fusion could remove the tensors we want to observe.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "probe.onnx"
        onnx.save(probe, str(path))
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        lows = {n: np.inf for n in tensor_names}
        highs = {n: -np.inf for n in tensor_names}
        samples: dict[str, list[np.ndarray]] = {n: [] for n in tensor_names}
        for feeds in feeds_list:
            outs = session.run(tensor_names, feeds)
            for name, value in zip(tensor_names, outs):
                if percentile is None:
                    lows[name] = min(lows[name], float(value.min()))
                    highs[name] = max(highs[name], float(value.max()))
                else:
                    flat = value.reshape(-1)
                    step = max(1, flat.size // 200_000)
                    samples[name].append(flat[::step])
    if percentile is not None:
        for name in tensor_names:
            flat = np.concatenate(samples[name])
            lows[name] = float(np.percentile(flat, 100.0 - percentile))
            highs[name] = float(np.percentile(flat, percentile))
    return {n: (lows[n], highs[n]) for n in tensor_names}


def quantize_int8(model, weight_inits: Iterable[str], calibration_feeds: list[dict],
                  percentile: float | None = None, per_channel: bool = True):
    """Rewrite every MatMul whose weight is one of `weight_inits` ([in, out]) into static INT8 QOperator form.

    x -> QuantizeLinear(s_x, zp_x: uint8) -> MatMulInteger(W_q: int8, zero point 0) -> Cast(float) -> Mul(s_x * s_w).
    The bias Add that follows the MatMul is left as it is. Returns (new model, per-weight int8 stats).
    u8 x s8 products may saturate on CPUs with AVX2 but without VNNI (ONNX Runtime's documented caveat); AVX-512 VNNI
    machines, where DeepSparse's INT8 is fast, compute them exactly.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight_inits = set(weight_inits)
    inits = {i.name: i for i in model.graph.initializer}
    targets = [n for n in model.graph.node
               if n.op_type == "MatMul" and len(n.input) == 2 and n.input[1] in weight_inits]
    if not targets:
        raise ExportCheckError("no MatMul with a prunable weight found to quantize")
    activations = sorted({n.input[0] for n in targets})
    ranges = calibrate_ranges(model, activations, calibration_feeds, percentile=percentile)

    q = onnx.ModelProto()
    q.CopyFrom(model)
    graph = q.graph
    new_inits = []
    quantized_input: dict[str, tuple[str, str, float]] = {}
    stats = {}
    # Nodes must stay topologically sorted: build the new list, inserting the quantize ops in place of each MatMul.
    target_outputs = {n.output[0] for n in targets}
    new_nodes = []
    for node in model.graph.node:
        if node.op_type != "MatMul" or node.output[0] not in target_outputs:
            new_nodes.append(node)
            continue
        x, w_name = node.input[0], node.input[1]
        base = node.name or node.output[0]
        if x not in quantized_input:
            scale, zp = _activation_qparams(*ranges[x])
            s_name, z_name, xq = f"{x}_qscale", f"{x}_qzero", f"{x}_quint8"
            new_inits += [numpy_helper.from_array(np.array(scale, dtype=np.float32), s_name),
                          numpy_helper.from_array(np.array(zp, dtype=np.uint8), z_name)]
            new_nodes.append(helper.make_node("QuantizeLinear", [x, s_name, z_name], [xq], name=f"{x}_QuantizeLinear"))
            quantized_input[x] = (xq, z_name, scale)
        xq, z_name, x_scale = quantized_input[x]
        if w_name in stats:
            raise ExportCheckError(f"weight {w_name} is used by more than one MatMul; cannot quantize it")
        w = numpy_helper.to_array(inits[w_name])
        wq, w_scale = quantize_weight(w, per_channel)
        zeros_before = w == 0
        zeros_after = wq == 0
        if np.any(zeros_before & ~zeros_after):
            raise ExportCheckError(f"quantizing {w_name} turned exact zeros into non-zeros")
        stats[w_name] = {"fp32_zeros": int(zeros_before.sum()), "int8_zeros": int(zeros_after.sum()),
                         "size": int(w.size), "zeros_kept": True}
        wq_name, rescale_name, wz_name = f"{w_name}_int8", f"{w_name}_rescale", f"{w_name}_int8_zero"
        rescale = (x_scale * w_scale).astype(np.float32)
        if not per_channel:
            rescale = rescale.reshape(())
        new_inits += [numpy_helper.from_array(wq, wq_name),
                      numpy_helper.from_array(rescale, rescale_name),
                      numpy_helper.from_array(np.array(0, dtype=np.int8), wz_name)]
        acc, accf = f"{base}_int32", f"{base}_int32_float"
        new_nodes.append(helper.make_node("MatMulInteger", [xq, wq_name, z_name, wz_name], [acc],
                                          name=f"{base}_MatMulInteger"))
        new_nodes.append(helper.make_node("Cast", [acc], [accf], name=f"{base}_Cast", to=TensorProto.FLOAT))
        new_nodes.append(helper.make_node("Mul", [accf, rescale_name], [node.output[0]], name=f"{base}_Rescale"))

    del graph.node[:]
    graph.node.extend(new_nodes)
    used_weights = {n.input[1] for n in targets}
    kept = [i for i in graph.initializer if i.name not in used_weights]
    del graph.initializer[:]
    graph.initializer.extend(kept + new_inits)
    del graph.value_info[:]
    onnx.checker.check_model(q)
    return q, stats


# --------------------------------------------------------------------------------------------------------------------
# The export


def _load_pytorch(model_dir: Path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    try:
        model = AutoModelForSequenceClassification.from_pretrained(str(model_dir))
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"{model_dir} cannot be loaded as a sequence-classification model: {exc}".splitlines()[0])
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    except (OSError, ValueError, TypeError) as exc:
        raise ModelError(f"{model_dir} has no usable tokenizer files: {exc}".splitlines()[0])
    model.eval()
    return model, tokenizer


def _torch_logits(model, encoded: dict[str, np.ndarray]) -> np.ndarray:
    import inspect

    import torch

    accepted = set(inspect.signature(model.forward).parameters)
    with torch.no_grad():
        inputs = {k: torch.from_numpy(v) for k, v in encoded.items() if k in accepted}
        return model(**inputs).logits.float().numpy()


def _tile_to(encoded: dict[str, np.ndarray], rows: int) -> dict[str, np.ndarray]:
    return {k: np.resize(v, (rows, v.shape[1])) for k, v in encoded.items()}


def sample_batches(tokenizer, sequence_length: int, vocab_size: int) -> list[dict[str, np.ndarray]]:
    """Real-looking sentence pairs padded to the full length, and full-length random ids (no padding at all)."""
    texts = encode(tokenizer, list(SAMPLE_TEXTS), sequence_length)
    return [texts, random_encoded(2, sequence_length, vocab_size, seed=1)]


def run_onnx(session, input_names: list[str], encoded: dict[str, np.ndarray], batch_size: int | None = None):
    """Logits for all rows, in chunks of a static batch size when the graph has one (last chunk padded)."""
    n = encoded["input_ids"].shape[0]
    if batch_size is None:
        return session.run(None, feeds_for(input_names, encoded))[0]
    out = []
    for start in range(0, n, batch_size):
        chunk = {k: v[start:start + batch_size] for k, v in encoded.items()}
        rows = chunk["input_ids"].shape[0]
        if rows < batch_size:
            chunk = _tile_to(chunk, batch_size)
        out.append(session.run(None, feeds_for(input_names, chunk))[0][:rows])
    return np.concatenate(out)


def score_predictions(logits: np.ndarray, labels: Sequence) -> dict:
    """Accuracy for classification, mean absolute error for regression (one output)."""
    labels = np.asarray(labels)
    if logits.shape[1] == 1:
        return {"metric": "mae", "value": float(np.abs(logits[:, 0] - labels.astype(np.float32)).mean())}
    return {"metric": "accuracy", "value": float((logits.argmax(axis=1) == labels).mean())}


def export_model(
    model_dir: str | os.PathLike,
    output: str | os.PathLike,
    *,
    sequence_length: int = 128,
    batch_size: int = 1,
    int8: bool = False,
    overwrite: bool = False,
    opset: int | None = None,
    calibration_texts: Sequence | None = None,
    eval_examples: tuple[Sequence, Sequence] | None = None,
    activation_percentile: float | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Export, check parity and sparsity, write the static copy (and INT8 files), and return the report.

    `calibration_texts`: texts or (a, b) pairs whose activations set the INT8 scales (synthetic inputs if None).
    `eval_examples`: (texts, labels) on which the accuracy cost of INT8 is measured with ONNX Runtime.
    """
    import onnx

    from .pruning.targets import find_prunable, sparsity_report

    source = check_model_dir(model_dir)
    if sequence_length < 1 or batch_size < 1:
        raise UserError("--sequence-length and --batch-size must be positive integers")
    model, tokenizer = _load_pytorch(source)
    max_positions = getattr(model.config, "max_position_embeddings", None)
    if max_positions and sequence_length > max_positions:
        raise UserError(f"--sequence-length {sequence_length} exceeds the model's max_position_embeddings "
                        f"({max_positions})")
    out = prepare_output_dir(output, overwrite, source)

    torch_sparsity = sparsity_report(model)
    weights = {n: p.detach().float().numpy() for n, p in find_prunable(model).items()}

    from optimum.exporters.onnx import onnx_export_from_model

    log(f"exporting {source} to {out / ONNX_NAME} (optimum, text-classification)")
    with warnings.catch_warnings():
        # The tracer's warnings (constant mask tensors, legacy exporter) are about the trace, not the user's model;
        # parity below is the real check.
        warnings.simplefilter("ignore")
        onnx_export_from_model(model, str(out), task="text-classification", opset=opset, do_validation=False)
    onnx_path = out / ONNX_NAME
    if not onnx_path.is_file():
        raise ExportCheckError(f"optimum did not write {onnx_path}")
    tokenizer.save_pretrained(str(out))
    model.config.save_pretrained(str(out))
    for name in PROVENANCE_FILES:
        if (source / name).is_file():
            shutil.copy2(source / name, out / name)

    # Parity with PyTorch.
    input_names = graph_input_names(onnx_path)
    session = ort_session(onnx_path)
    batches = sample_batches(tokenizer, sequence_length, model.config.vocab_size)
    ref = [_torch_logits(model, b) for b in batches]
    dyn_diff = max(float(np.abs(run_onnx(session, input_names, b) - r).max()) for b, r in zip(batches, ref))
    log(f"logits max abs diff ONNX vs PyTorch: {dyn_diff:.2e} (must be < {PARITY_ATOL:.0e})")
    if not dyn_diff < PARITY_ATOL:
        raise ExportCheckError(f"ONNX logits differ from PyTorch by {dyn_diff:.2e} (>= {PARITY_ATOL:.0e})")

    # Zeros survived.
    graph = onnx.load(str(onnx_path))
    matches = match_initializers(graph, weights)
    sparsity = compare_sparsity(torch_sparsity, onnx_sparsity(graph, matches))
    log(f"prunable weights: PyTorch sparsity {sparsity['overall']['pytorch']:.2%}, "
        f"ONNX {sparsity['overall']['onnx']:.2%} ({len(matches)} weights, all match)")
    for name, row in sparsity["modules"].items():
        row["onnx_initializer"] = matches[name][0]

    # Static copy for DeepSparse.
    static_path = out / STATIC_NAME
    onnx.save(make_static(graph, batch_size, sequence_length), str(static_path))
    static_session = ort_session(static_path)
    static_diff = max(float(np.abs(run_onnx(static_session, input_names, b, batch_size) - r).max())
                      for b, r in zip(batches, ref))
    if not static_diff < PARITY_ATOL:
        raise ExportCheckError(f"static-shape ONNX logits differ from PyTorch by {static_diff:.2e}")
    log(f"static copy {static_path.name}: inputs fixed to [{batch_size}, {sequence_length}], "
        f"max abs diff {static_diff:.2e}")

    report = {
        "source": str(source),
        "task": "text-classification",
        "architecture": (model.config.architectures or [type(model).__name__])[0],
        "num_labels": model.config.num_labels,
        "opset": int(max((o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")), default=0)),
        "batch_size": batch_size,
        "sequence_length": sequence_length,
        "input_names": input_names,
        "files": {"onnx": ONNX_NAME, "static": STATIC_NAME},
        "parity": {"max_abs_diff": dyn_diff, "static_max_abs_diff": static_diff, "atol": PARITY_ATOL},
        "sparsity": sparsity,
    }
    if (source / "pruning_report.json").is_file():
        try:
            report["pruning_report"] = json.loads((source / "pruning_report.json").read_text())
        except json.JSONDecodeError:
            pass
    del session, static_session

    if int8:
        report["int8"] = _export_int8(
            graph, out, matches, input_names, tokenizer, model.config.vocab_size, batches, ref, sequence_length,
            batch_size, calibration_texts, eval_examples, activation_percentile, log)
        report["files"].update({"int8": INT8_NAME, "int8_static": INT8_STATIC_NAME})

    (out / REPORT_NAME).write_text(json.dumps(report, indent=2) + "\n")
    log(f"wrote {out / REPORT_NAME}")
    return report


def _export_int8(graph, out: Path, matches, input_names, tokenizer, vocab_size, batches, ref, sequence_length,
                 batch_size, calibration_texts, eval_examples, percentile, log) -> dict:
    import onnx

    if calibration_texts:
        cal_source = f"{len(calibration_texts)} given texts"
        enc = encode(tokenizer, list(calibration_texts), sequence_length)
        calibration = [{k: v[i:i + 16] for k, v in enc.items()} for i in range(0, enc["input_ids"].shape[0], 16)]
    else:
        cal_source = "synthetic (sample sentences and random token ids)"
        calibration = batches + [random_encoded(4, sequence_length, vocab_size, seed=s) for s in (2, 3)]
    calibration = [feeds_for(input_names, c) for c in calibration]
    log(f"quantizing to INT8 (weights symmetric per channel, activations static uint8, calibration: {cal_source})")
    qmodel, stats = quantize_int8(graph, [m[0] for m in matches.values()], calibration, percentile=percentile)
    int8_path = out / INT8_NAME
    onnx.save(qmodel, str(int8_path))
    static_path = out / INT8_STATIC_NAME
    onnx.save(make_static(qmodel, batch_size, sequence_length), str(static_path))

    size = sum(s["size"] for s in stats.values())
    fp32_sparsity = sum(s["fp32_zeros"] for s in stats.values()) / size
    int8_sparsity = sum(s["int8_zeros"] for s in stats.values()) / size
    log(f"INT8 weights: every FP32 zero is still zero ({len(stats)} weights; sparsity FP32 {fp32_sparsity:.2%}, "
        f"INT8 {int8_sparsity:.2%}: small weights may round to zero too)")

    session = ort_session(int8_path)
    diffs, agree, rows = [], 0, 0
    for b, r in zip(batches, ref):
        got = run_onnx(session, input_names, b)
        diffs.append(float(np.abs(got - r).max()))
        agree += int((got.argmax(1) == r.argmax(1)).sum())
        rows += r.shape[0]
    static_session = ort_session(static_path)
    run_onnx(static_session, input_names, batches[0], batch_size)  # it must run at its fixed shape
    result = {
        "scheme": "static QOperator: QuantizeLinear(uint8 activations) -> MatMulInteger(int8 symmetric per-channel "
                  "weights, zero point 0) -> Cast -> Mul",
        "calibration": cal_source,
        "activation_percentile": percentile,
        "quantized_matmuls": len(stats),
        "zeros_kept": True,
        "sparsity": {"fp32": fp32_sparsity, "int8": int8_sparsity},
        "sample_logits_max_abs_diff": max(diffs),
        "sample_argmax_agreement": agree / rows,
    }
    log(f"INT8 vs PyTorch on sample inputs: max abs logit diff {max(diffs):.3f}, argmax agreement {agree}/{rows}")

    if eval_examples is not None:
        texts, labels = eval_examples
        enc = encode(tokenizer, list(texts), sequence_length)
        fp32 = score_predictions(run_onnx(ort_session(out / ONNX_NAME), input_names, enc), labels)
        q = score_predictions(run_onnx(session, input_names, enc), labels)
        result["eval"] = {"examples": len(labels), "metric": fp32["metric"], "fp32": fp32["value"],
                          "int8": q["value"], "delta": q["value"] - fp32["value"]}
        log(f"accuracy cost of INT8 on {len(labels)} eval examples ({fp32['metric']}, ONNX Runtime): "
            f"FP32 {fp32['value']:.4f} -> INT8 {q['value']:.4f} ({q['value'] - fp32['value']:+.4f})")
    return result
