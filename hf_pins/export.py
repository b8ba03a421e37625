"""Export a (pruned) sequence-classification model to ONNX for ONNX Runtime and DeepSparse, and prove nothing was lost.

Why each step exists:
- optimum's exporter (task `text-classification`) writes `model.onnx` with dynamic axes, which ONNX Runtime runs at any shape.
- DeepSparse only exploits unstructured sparsity when the graph inputs have static shapes (a dynamic-axes 80%-sparse
  BERT-base ran no faster than dense), so a copy with inputs fixed to `[batch, seq]` is written next to it.
- The exporter constant-folds and transposes weights, renames them (`onnx::MatMul_123`) and stores identical matrices
  once (several all-zero matrices of one shape become one initializer read through `Identity` nodes), so a weight's
  zeros could be lost without anyone noticing; every prunable weight is found in the graph by what it is (the
  initializer feeding its module's MatMul/Gemm) and its zeros are counted there and compared with PyTorch's.
- Everything is written into a staging folder next to `--output` and moved into place only when every check passed,
  so a failure, SIGINT/SIGTERM or a full disk leaves the previous output (or none) and no partial file.
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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import io
from .errors import ModelError, UserError

LOG = logging.getLogger(__name__)

ONNX_NAME = "model.onnx"
STATIC_NAME = "model-static.onnx"
INT8_NAME = "model-int8.onnx"
INT8_STATIC_NAME = "model-int8-static.onnx"
REPORT_NAME = "export_report.json"

PARITY_ATOL = 1e-4
# BERT-family attention exports as scaled_dot_product_attention, which torch's exporter supports from opset 14; the
# checks below read the graph with the installed onnx, whose newest opset is the upper bound.
MIN_OPSET = 14
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
    """`--output`: absent, empty or (with `--overwrite`) replaceable; writable; not the model folder. Changes nothing."""
    return io.check_output_dir(output, flag="--output", overwrite=overwrite, protect=source)


def check_opset(opset: int | None) -> None:
    """`--opset` within what the exporter can write and the installed onnx can check."""
    if opset is None:
        return
    import onnx

    newest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= newest:
        raise UserError(f"--opset {opset} is not supported; give {MIN_OPSET} to {newest} (or leave it out for "
                        "optimum's default)")


def load_onnx(path: str | os.PathLike, load_external_data: bool = True):
    """onnx.load with a truncated or foreign file reported as one ModelError naming it."""
    import onnx

    try:
        return onnx.load(str(path), load_external_data=load_external_data)
    except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError and friends: the user's file is broken
        raise ModelError(f"{path} is not a readable ONNX model ({_first_line(exc)}); the file is truncated or "
                         "corrupt: export it again") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def graph_input_names(onnx_path: str | os.PathLike) -> list[str]:
    model = load_onnx(onnx_path, load_external_data=False)
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
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - InvalidProtobuf, Fail, NoSuchFile: ONNX Runtime's own exception types
        raise ModelError(f"{path} cannot be loaded by ONNX Runtime ({_first_line(exc)}); the file is truncated or "
                         "corrupt: export it again") from None


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
    model = load_onnx(onnx_path, load_external_data=False)
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


@dataclass(frozen=True)
class GraphWeight:
    """A constant weight matrix as the graph uses it: the node that multiplies by it and the initializer holding it."""

    node: str
    initializer: str
    transposed: bool  # stored [in, out] (MatMul, Gemm without transB), i.e. transposed from torch's [out, in]


def _identity_aliases(graph) -> dict[str, str]:
    return {n.output[0]: n.input[0] for n in graph.node if n.op_type == "Identity" and n.input and n.output}


def _constant_source(aliases: dict[str, str], name: str, matrices: set[str]) -> str | None:
    """The initializer a tensor is, following the `Identity` nodes through which the exporter shares one initializer
    between several identical weights; None when the tensor is computed."""
    seen = set()
    while name in aliases and name not in seen:
        seen.add(name)
        name = aliases[name]
    return name if name in matrices else None


def _node_module(node_name: str) -> str:
    """The PyTorch module a node was traced from: `/bert/encoder/layer.0/attention/self/key/MatMul` ->
    `bert.encoder.layer.0.attention.self.key` (torch's exporter names nodes by module scope)."""
    scope = node_name.strip("/").rsplit("/", 1)[0] if "/" in node_name.strip("/") else ""
    return scope.replace("/", ".")


def graph_weights(model) -> dict[str, GraphWeight]:
    """{module path: GraphWeight} for every MatMul/Gemm whose second input is a constant float matrix."""
    graph = model.graph
    matrices = {i.name for i in graph.initializer if len(i.dims) == 2 and i.data_type == 1}  # float32
    aliases = _identity_aliases(graph)
    found: dict[str, GraphWeight] = {}
    for node in graph.node:
        if node.op_type not in ("MatMul", "Gemm") or len(node.input) < 2:
            continue
        source = _constant_source(aliases, node.input[1], matrices)
        if source is None:
            continue
        trans_b = any(a.name == "transB" and a.i for a in node.attribute)
        module = _node_module(node.name)
        if module:
            found[module] = GraphWeight(node.name, source, transposed=node.op_type == "MatMul" or not trans_b)
    return found


def _digest(array: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(array, dtype=np.float32).tobytes()).hexdigest()


def match_initializers(model, weights: dict[str, np.ndarray], atol: float = 1e-6) -> dict[str, tuple[str, bool]]:
    """Map each PyTorch weight name (`module.weight`) to (ONNX initializer name, transposed?).

    First by what the weight is in the graph: the initializer feeding the MatMul/Gemm traced from its module, if its
    shape fits. Otherwise (another exporter's naming) by content: equal bytes, then close values of the same shape.
    Several weights may map to one initializer: the exporter stores identical matrices (e.g. several all-zero ones)
    once. Weights found neither way are left out, and `compare_sparsity` reports them.
    """
    from onnx import numpy_helper

    arrays = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer
              if len(i.dims) == 2 and i.data_type == 1}
    by_module = graph_weights(model)
    matches: dict[str, tuple[str, bool]] = {}
    for name, w in weights.items():
        used = by_module.get(name.removesuffix(".weight"))
        if used is not None and arrays[used.initializer].shape == (w.T if used.transposed else w).shape:
            matches[name] = (used.initializer, used.transposed)

    by_digest: dict[str, str] = {}
    by_shape: dict[tuple, list[str]] = {}
    for init_name, arr in arrays.items():
        by_digest.setdefault(_digest(arr), init_name)
        by_shape.setdefault(arr.shape, []).append(init_name)
    for name, w in weights.items():
        if name in matches:
            continue
        for transposed, candidate in ((True, w.T), (False, w)):
            hit = by_digest.get(_digest(candidate)) or next(
                (n for n in by_shape.get(candidate.shape, [])
                 if np.allclose(arrays[n], candidate, rtol=0, atol=atol)), None)
            if hit is not None:
                matches[name] = (hit, transposed)
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
    The bias Add that follows the MatMul is left as it is. A weight initializer shared by several MatMuls (identical
    matrices, stored once by the exporter) is quantized once; each MatMul gets its own rescale. Returns (new model,
    {MatMul node: its weight's initializer and zero counts}).
    u8 x s8 products may saturate on CPUs with AVX2 but without VNNI (ONNX Runtime's documented caveat); AVX-512 VNNI
    machines, where DeepSparse's INT8 is fast, compute them exactly.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight_inits = set(weight_inits)
    inits = {i.name: i for i in model.graph.initializer}
    aliases = _identity_aliases(model.graph)
    targets = {}  # MatMul output -> the initializer its weight input is
    for n in model.graph.node:
        if n.op_type == "MatMul" and len(n.input) == 2:
            source = _constant_source(aliases, n.input[1], weight_inits)
            if source is not None:
                targets[n.output[0]] = source
    if not targets:
        raise ExportCheckError("no MatMul with a prunable weight found to quantize")
    target_nodes = [n for n in model.graph.node if n.output and n.output[0] in targets]
    activations = sorted({n.input[0] for n in target_nodes})
    ranges = calibrate_ranges(model, activations, calibration_feeds, percentile=percentile)

    q = onnx.ModelProto()
    q.CopyFrom(model)
    graph = q.graph
    new_inits = []
    quantized_input: dict[str, tuple[str, str, float]] = {}
    quantized_weight: dict[str, tuple[np.ndarray, dict]] = {}
    stats = {}
    # Nodes must stay topologically sorted: build the new list, inserting the quantize ops in place of each MatMul.
    new_nodes = []
    for node in model.graph.node:
        if node.op_type != "MatMul" or node.output[0] not in targets:
            new_nodes.append(node)
            continue
        x, w_name = node.input[0], targets[node.output[0]]
        base = node.name or node.output[0]
        if x not in quantized_input:
            scale, zp = _activation_qparams(*ranges[x])
            s_name, z_name, xq = f"{x}_qscale", f"{x}_qzero", f"{x}_quint8"
            new_inits += [numpy_helper.from_array(np.array(scale, dtype=np.float32), s_name),
                          numpy_helper.from_array(np.array(zp, dtype=np.uint8), z_name)]
            new_nodes.append(helper.make_node("QuantizeLinear", [x, s_name, z_name], [xq], name=f"{x}_QuantizeLinear"))
            quantized_input[x] = (xq, z_name, scale)
        xq, z_name, x_scale = quantized_input[x]
        wq_name, wz_name = f"{w_name}_int8", f"{w_name}_int8_zero"
        if w_name not in quantized_weight:
            w = numpy_helper.to_array(inits[w_name])
            wq, w_scale = quantize_weight(w, per_channel)
            counts = {"fp32_zeros": int((w == 0).sum()), "int8_zeros": int((wq == 0).sum()), "size": int(w.size)}
            quantized_weight[w_name] = (w_scale, counts)
            new_inits += [numpy_helper.from_array(wq, wq_name),
                          numpy_helper.from_array(np.array(0, dtype=np.int8), wz_name)]
        w_scale, counts = quantized_weight[w_name]
        stats[base] = {"initializer": w_name, **counts}
        rescale_name = f"{base}_rescale"
        rescale = (x_scale * w_scale).astype(np.float32)
        if not per_channel:
            rescale = rescale.reshape(())
        new_inits.append(numpy_helper.from_array(rescale, rescale_name))
        acc, accf = f"{base}_int32", f"{base}_int32_float"
        new_nodes.append(helper.make_node("MatMulInteger", [xq, wq_name, z_name, wz_name], [acc],
                                          name=f"{base}_MatMulInteger"))
        new_nodes.append(helper.make_node("Cast", [acc], [accf], name=f"{base}_Cast", to=TensorProto.FLOAT))
        new_nodes.append(helper.make_node("Mul", [accf, rescale_name], [node.output[0]], name=f"{base}_Rescale"))

    del graph.node[:]
    graph.node.extend(_without_unused_identities(new_nodes, {o.name for o in graph.output}))
    consumed = {name for n in graph.node for name in n.input}
    kept = [i for i in graph.initializer if i.name in consumed or i.name not in weight_inits]
    del graph.initializer[:]
    graph.initializer.extend(kept + new_inits)
    del graph.value_info[:]
    onnx.checker.check_model(q)
    return q, stats


def _without_unused_identities(nodes: list, outputs: set[str]) -> list:
    """Drop the Identity nodes that only passed a now-quantized weight to the MatMuls it replaced."""
    while True:
        consumed = {name for n in nodes for name in n.input} | outputs
        kept = [n for n in nodes if n.op_type != "Identity" or n.output[0] in consumed]
        if len(kept) == len(nodes):
            return kept
        nodes = kept


def int8_zeros_lost(fp32_model, int8_model) -> dict[str, int]:
    """{MatMul node: how many of its FP32 weight's exact zeros are non-zero in the INT8 graph}, read from the two
    graphs alone: each MatMulInteger `<node>_MatMulInteger` replaces the FP32 MatMul `<node>`."""
    from onnx import numpy_helper

    fp32 = {w.node: w for w in graph_weights(fp32_model).values()}
    fp32_arrays = {i.name: i for i in fp32_model.graph.initializer}
    int8_arrays = {i.name: i for i in int8_model.graph.initializer}
    lost = {}
    for node in int8_model.graph.node:
        if node.op_type != "MatMulInteger":
            continue
        original = fp32.get(node.name.removesuffix("_MatMulInteger"))
        if original is None or node.input[1] not in int8_arrays:
            raise ExportCheckError(f"INT8 node {node.name} has no FP32 MatMul to compare its weight's zeros with")
        w = numpy_helper.to_array(fp32_arrays[original.initializer])
        wq = numpy_helper.to_array(int8_arrays[node.input[1]])
        lost[original.node] = int(((w == 0) & (wq != 0)).sum())
    return lost


# --------------------------------------------------------------------------------------------------------------------
# The export


@dataclass
class Int8Options:
    """What the INT8 step needs beyond the FP32 export: texts or (a, b) pairs whose activations set the scales
    (synthetic inputs if None), labelled examples on which its accuracy cost is measured, and the activation range
    percentile (min/max if None)."""

    calibration_texts: Sequence | None = None
    eval_examples: tuple[Sequence, Sequence] | None = None
    activation_percentile: float | None = None


@dataclass
class Fp32Export:
    """The checked FP32 graph, and what the static copy and the INT8 step compare against."""

    folder: Path
    graph: object  # onnx.ModelProto
    matches: dict[str, tuple[str, bool]]
    input_names: list[str]
    tokenizer: object
    vocab_size: int
    batches: list[dict[str, np.ndarray]]  # sample inputs ...
    reference: list[np.ndarray]  # ... and PyTorch's logits for them
    sequence_length: int
    batch_size: int


def _load_pytorch(model_dir: Path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    try:
        model = AutoModelForSequenceClassification.from_pretrained(str(model_dir))
    except Exception as exc:  # noqa: BLE001 - the user's files, already checked; report whatever else the library says
        raise ModelError(f"{model_dir} cannot be loaded as a sequence-classification model: "
                         f"{_first_line(exc)}") from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"{model_dir} has no usable tokenizer files: {_first_line(exc)}") from None
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


def check_export_request(model_dir: str | os.PathLike, output: str | os.PathLike, *, sequence_length: int,
                         batch_size: int, overwrite: bool, opset: int | None) -> tuple[Path, Path]:
    """Everything that can be wrong with an export request, checked before any model loads: the source's files
    (config, weights, tokenizer complete), the shapes against the model's positions, the opset, the destination.
    Returns (source, output). Writes nothing."""
    from .modeling import check_model_files

    source = check_model_dir(model_dir)
    check_model_files(str(source), key="MODEL_DIR")
    if sequence_length < 1 or batch_size < 1:
        raise UserError("--sequence-length and --batch-size must be positive integers")
    check_sequence_length(source, sequence_length)
    check_opset(opset)
    return source, check_output_dir(output, overwrite, source)


def check_sequence_length(model_dir: Path, sequence_length: int) -> None:
    """The model has a position embedding for every position of `--sequence-length`."""
    try:
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # unreadable configs are reported where they are read
    max_positions = config.get("max_position_embeddings") if isinstance(config, dict) else None
    if isinstance(max_positions, int) and 0 < max_positions < sequence_length:
        raise UserError(f"--sequence-length {sequence_length} exceeds the model's max_position_embeddings "
                        f"({max_positions}, {model_dir / 'config.json'})")


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
    The folder is built in a staging place and moved to `output` only when complete: on any failure, SIGINT/SIGTERM
    (`RunStopped`) or a full disk (`OutputError`), `output` is as it was.
    """
    source, out = check_export_request(model_dir, output, sequence_length=sequence_length, batch_size=batch_size,
                                       overwrite=overwrite, opset=opset)
    options = Int8Options(calibration_texts, eval_examples, activation_percentile) if int8 else None
    with io.stop_on_signals("export", keeps=f"nothing was written, {out} is as it was") as stop, \
            io.staged_dir(out, "--output") as staging:
        model, tokenizer = _load_pytorch(source)
        log(f"exporting {source} to {out / ONNX_NAME} (optimum, text-classification)")
        fp32, dyn_diff = _export_fp32(model, tokenizer, source, staging, opset, sequence_length, batch_size, log)
        sparsity = _check_zeros(model, fp32, log)
        static_diff = _write_static(fp32, log)
        report = _report(model, source, fp32, dyn_diff, static_diff, sparsity)
        del model
        if options is not None:
            report["int8"] = _export_int8(fp32, options, log)
            report["files"].update({"int8": INT8_NAME, "int8_static": INT8_STATIC_NAME})
        io.write_json(staging / REPORT_NAME, report)
        stop.check()  # a signal a library swallowed still stops the export before it is moved into place
    log(f"wrote {out / REPORT_NAME}")
    return report


def _export_fp32(model, tokenizer, source: Path, folder: Path, opset: int | None, sequence_length: int,
                 batch_size: int, log) -> tuple[Fp32Export, float]:
    """optimum's export with the tokenizer, config and provenance next to it; checked against PyTorch's logits."""
    from optimum.exporters.onnx import onnx_export_from_model

    with warnings.catch_warnings():
        # The tracer's warnings (constant mask tensors, legacy exporter) are about the trace, not the user's model;
        # parity below is the real check.
        warnings.simplefilter("ignore")
        onnx_export_from_model(model, str(folder), task="text-classification", opset=opset, do_validation=False)
    onnx_path = folder / ONNX_NAME
    if not onnx_path.is_file():
        raise ExportCheckError(f"optimum did not write {ONNX_NAME}")
    tokenizer.save_pretrained(str(folder))
    model.config.save_pretrained(str(folder))
    for name in PROVENANCE_FILES:
        if (source / name).is_file():
            shutil.copy2(source / name, folder / name)

    input_names = graph_input_names(onnx_path)
    batches = sample_batches(tokenizer, sequence_length, model.config.vocab_size)
    ref = [_torch_logits(model, b) for b in batches]
    session = ort_session(onnx_path)
    diff = max(float(np.abs(run_onnx(session, input_names, b) - r).max()) for b, r in zip(batches, ref))
    log(f"logits max abs diff ONNX vs PyTorch: {diff:.2e} (must be < {PARITY_ATOL:.0e})")
    if not diff < PARITY_ATOL:
        raise ExportCheckError(f"ONNX logits differ from PyTorch by {diff:.2e} (>= {PARITY_ATOL:.0e})")
    graph = load_onnx(onnx_path)
    fp32 = Fp32Export(folder, graph, {}, input_names, tokenizer, model.config.vocab_size, batches, ref,
                      sequence_length, batch_size)
    return fp32, diff


def _check_zeros(model, fp32: Fp32Export, log) -> dict:
    """Find every prunable weight in the graph and compare its zeros with PyTorch's; sets `fp32.matches`."""
    from .pruning.targets import find_prunable, sparsity_report

    weights = {n: p.detach().float().numpy() for n, p in find_prunable(model).items()}
    fp32.matches = match_initializers(fp32.graph, weights)
    sparsity = compare_sparsity(sparsity_report(model), onnx_sparsity(fp32.graph, fp32.matches))
    shared = len(fp32.matches) - len({m[0] for m in fp32.matches.values()})
    log(f"prunable weights: PyTorch sparsity {sparsity['overall']['pytorch']:.2%}, "
        f"ONNX {sparsity['overall']['onnx']:.2%} ({len(fp32.matches)} weights, all match"
        + (f"; {shared} stored once with an identical one" if shared else "") + ")")
    for name, row in sparsity["modules"].items():
        row["onnx_initializer"] = fp32.matches[name][0]
    return sparsity


def _write_static(fp32: Fp32Export, log) -> float:
    """The copy with inputs fixed to [batch, sequence] for DeepSparse; its logits must match PyTorch's too."""
    import onnx

    static_path = fp32.folder / STATIC_NAME
    onnx.save(make_static(fp32.graph, fp32.batch_size, fp32.sequence_length), str(static_path))
    session = ort_session(static_path)
    diff = max(float(np.abs(run_onnx(session, fp32.input_names, b, fp32.batch_size) - r).max())
               for b, r in zip(fp32.batches, fp32.reference))
    if not diff < PARITY_ATOL:
        raise ExportCheckError(f"static-shape ONNX logits differ from PyTorch by {diff:.2e}")
    log(f"static copy {static_path.name}: inputs fixed to [{fp32.batch_size}, {fp32.sequence_length}], "
        f"max abs diff {diff:.2e}")
    return diff


def _report(model, source: Path, fp32: Fp32Export, dyn_diff: float, static_diff: float, sparsity: dict) -> dict:
    report = {
        "source": str(source),
        "task": "text-classification",
        "architecture": (model.config.architectures or [type(model).__name__])[0],
        "num_labels": model.config.num_labels,
        "opset": int(max((o.version for o in fp32.graph.opset_import if o.domain in ("", "ai.onnx")), default=0)),
        "batch_size": fp32.batch_size,
        "sequence_length": fp32.sequence_length,
        "input_names": fp32.input_names,
        "files": {"onnx": ONNX_NAME, "static": STATIC_NAME},
        "parity": {"max_abs_diff": dyn_diff, "static_max_abs_diff": static_diff, "atol": PARITY_ATOL},
        "sparsity": sparsity,
    }
    if (source / "pruning_report.json").is_file():
        try:
            report["pruning_report"] = json.loads((source / "pruning_report.json").read_text())
        except (OSError, ValueError):
            pass
    return report


def _calibration_feeds(fp32: Fp32Export, options: Int8Options) -> tuple[list[dict], str]:
    """Batches whose activation ranges set the INT8 scales, and a phrase saying where they came from."""
    if options.calibration_texts:
        source = f"{len(options.calibration_texts)} given texts"
        enc = encode(fp32.tokenizer, list(options.calibration_texts), fp32.sequence_length)
        batches = [{k: v[i:i + 16] for k, v in enc.items()} for i in range(0, enc["input_ids"].shape[0], 16)]
    else:
        source = "synthetic (sample sentences and random token ids)"
        batches = fp32.batches + [random_encoded(4, fp32.sequence_length, fp32.vocab_size, seed=s) for s in (2, 3)]
    return [feeds_for(fp32.input_names, b) for b in batches], source


def _export_int8(fp32: Fp32Export, options: Int8Options, log) -> dict:
    """Quantize, write the INT8 graph and its static copy, measure that every FP32 zero is still zero in the written
    file, and compare with PyTorch (and, given labelled examples, the accuracy cost)."""
    import onnx

    calibration, cal_source = _calibration_feeds(fp32, options)
    log(f"quantizing to INT8 (weights symmetric per channel, activations static uint8, calibration: {cal_source})")
    qmodel, stats = quantize_int8(fp32.graph, {m[0] for m in fp32.matches.values()}, calibration,
                                  percentile=options.activation_percentile)
    int8_path = fp32.folder / INT8_NAME
    onnx.save(qmodel, str(int8_path))
    static_path = fp32.folder / INT8_STATIC_NAME
    onnx.save(make_static(qmodel, fp32.batch_size, fp32.sequence_length), str(static_path))

    lost = int8_zeros_lost(fp32.graph, load_onnx(int8_path))
    if any(lost.values()):
        worst = max(lost, key=lost.get)
        raise ExportCheckError(f"INT8 turned {sum(lost.values())} exact zeros into non-zeros ({worst}: {lost[worst]})")
    size = sum(s["size"] for s in stats.values())
    fp32_sparsity = sum(s["fp32_zeros"] for s in stats.values()) / size
    int8_sparsity = sum(s["int8_zeros"] for s in stats.values()) / size
    log(f"INT8 weights: every FP32 zero is still zero ({len(lost)} MatMuls; sparsity FP32 {fp32_sparsity:.2%}, "
        f"INT8 {int8_sparsity:.2%}: small weights may round to zero too)")

    session = ort_session(int8_path)
    diffs, agree, rows = [], 0, 0
    for b, r in zip(fp32.batches, fp32.reference):
        got = run_onnx(session, fp32.input_names, b)
        diffs.append(float(np.abs(got - r).max()))
        agree += int((got.argmax(1) == r.argmax(1)).sum())
        rows += r.shape[0]
    run_onnx(ort_session(static_path), fp32.input_names, fp32.batches[0], fp32.batch_size)  # runs at its fixed shape
    result = {
        "scheme": "static QOperator: QuantizeLinear(uint8 activations) -> MatMulInteger(int8 symmetric per-channel "
                  "weights, zero point 0) -> Cast -> Mul",
        "calibration": cal_source,
        "activation_percentile": options.activation_percentile,
        "quantized_matmuls": len(lost),
        "zeros_lost": sum(lost.values()),
        "zeros_kept": not any(lost.values()),
        "sparsity": {"fp32": fp32_sparsity, "int8": int8_sparsity},
        "sample_logits_max_abs_diff": max(diffs),
        "sample_argmax_agreement": agree / rows,
    }
    log(f"INT8 vs PyTorch on sample inputs: max abs logit diff {max(diffs):.3f}, argmax agreement {agree}/{rows}")
    if options.eval_examples is not None:
        result["eval"] = _int8_accuracy(fp32, session, options.eval_examples, log)
    return result


def _int8_accuracy(fp32: Fp32Export, int8_session, examples: tuple[Sequence, Sequence], log) -> dict:
    """The accuracy (or MAE) of the FP32 and the INT8 graph on labelled examples, with ONNX Runtime."""
    texts, labels = examples
    enc = encode(fp32.tokenizer, list(texts), fp32.sequence_length)
    before = score_predictions(run_onnx(ort_session(fp32.folder / ONNX_NAME), fp32.input_names, enc), labels)
    after = score_predictions(run_onnx(int8_session, fp32.input_names, enc), labels)
    log(f"accuracy cost of INT8 on {len(labels)} eval examples ({before['metric']}, ONNX Runtime): "
        f"FP32 {before['value']:.4f} -> INT8 {after['value']:.4f} ({after['value'] - before['value']:+.4f})")
    return {"examples": len(labels), "metric": before["metric"], "fp32": before["value"], "int8": after["value"],
            "delta": after["value"] - before["value"]}
