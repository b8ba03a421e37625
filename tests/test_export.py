"""`hf-pins export`: parity with PyTorch, zeros kept, static copy, INT8, user mistakes (tiny models, no network)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# The export extra is absent in CI's transformers-5 environment: the module is then skipped, with this reason.
onnx = pytest.importorskip("onnx", reason="needs hf_pins[export] (pip install 'hf_pins[export]')")
import torch  # noqa: E402
from onnx import numpy_helper  # noqa: E402
from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast  # noqa: E402

from hf_pins import export as ex  # noqa: E402
from hf_pins.cli import main  # noqa: E402
from hf_pins.pruning.targets import find_prunable, sparsity_report  # noqa: E402

WORDS = "the a cat dog sat on mat film is moving bleak cheerful and it was good bad very not movie".split()
TEXTS = ["the cat sat on the mat", "a very bad movie", "it was good", "bleak and not cheerful",
         "the film is moving", "a dog", "very very good film", "not good"]
SEQ, BATCH = 16, 2

pytestmark = pytest.mark.export


def write_tiny_model(path: Path, sparsity: float = 0.8, num_labels: int = 2, seed: int = 0,
                     prune_heads: dict | None = None) -> Path:
    """A 2-layer BERT (hidden 32) with a word-level vocab, magnitude-pruned per weight, in save_pretrained layout."""
    path.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(path / "vocab.txt"))
    torch.manual_seed(seed)
    labels = {i: f"label_{i}" for i in range(num_labels)}
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, num_labels=num_labels,
                        id2label=labels, label2id={v: k for k, v in labels.items()})
    model = BertForSequenceClassification(config)
    if prune_heads:
        model.prune_heads(prune_heads)
    with torch.no_grad():
        for weight in find_prunable(model).values():
            k = int(sparsity * weight.numel())
            if k:
                threshold = weight.abs().flatten().kthvalue(k).values
                weight[weight.abs() <= threshold] = 0
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    (path / "pruning_report.json").write_text(json.dumps({**sparsity_report(model), "task": "sst2"}))
    return path


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture(scope="module")
def exported(tiny_model, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("export") / "onnx"
    labels = [i % 2 for i in range(len(TEXTS))]
    report = ex.export_model(tiny_model, out, sequence_length=SEQ, batch_size=BATCH, int8=True,
                             calibration_texts=TEXTS, eval_examples=(TEXTS, labels), log=lambda _: None)
    return out, report


def test_writes_a_self_contained_folder(exported):
    out, report = exported
    for name in ("model.onnx", "model-static.onnx", "model-int8.onnx", "model-int8-static.onnx", "config.json",
                 "tokenizer.json", "export_report.json", "pruning_report.json"):
        assert (out / name).is_file(), name
    assert json.loads((out / "export_report.json").read_text()) == json.loads(json.dumps(report))


def test_logits_match_pytorch(exported, tiny_model):
    out, report = exported
    assert report["parity"]["max_abs_diff"] < 1e-4
    # Independently of the export's own check: new texts, padded to the longest only.
    model = BertForSequenceClassification.from_pretrained(tiny_model).eval()
    tokenizer = BertTokenizerFast.from_pretrained(out)
    enc = tokenizer(TEXTS, padding=True, return_tensors="np")
    session = ex.ort_session(out / "model.onnx")
    got = session.run(None, {k: v.astype(np.int64) for k, v in enc.items()})[0]
    with torch.no_grad():
        want = model(**{k: torch.from_numpy(v.astype(np.int64)) for k, v in enc.items()}).logits.numpy()
    assert np.abs(got - want).max() < 1e-4


def test_zeros_survive_export(exported, tiny_model):
    out, report = exported
    model = BertForSequenceClassification.from_pretrained(tiny_model)
    want = sparsity_report(model)
    modules = report["sparsity"]["modules"]
    assert set(modules) == set(want["modules"])
    for name, row in modules.items():
        assert row["pytorch"] == pytest.approx(want["modules"][name])
        assert row["onnx"] == pytest.approx(row["pytorch"])
    assert report["sparsity"]["overall"]["onnx"] == pytest.approx(0.8, abs=0.01)
    # The initializer named in the report really holds that weight's zeros.
    graph = onnx.load(str(out / "model.onnx")).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for name, weight in find_prunable(model).items():
        arr = inits[modules[name]["onnx_initializer"]]
        np.testing.assert_array_equal(arr == 0, (weight.detach().numpy() == 0).T)


def test_lost_zeros_are_an_error():
    torch_report = {"overall": 0.5, "modules": {"w": 0.5}}
    assert ex.compare_sparsity(torch_report, {"w": (50, 100)})["overall"]["onnx"] == 0.5
    with pytest.raises(ex.ExportCheckError, match="sparsity differs"):
        ex.compare_sparsity(torch_report, {"w": (49, 100)})
    with pytest.raises(ex.ExportCheckError, match="not found"):
        ex.compare_sparsity(torch_report, {})


def test_static_copy_has_fixed_input_shapes(exported):
    out, _ = exported
    for name in ("model-static.onnx", "model-int8-static.onnx"):
        shapes = ex.static_input_shapes(out / name)
        assert set(shapes) == {"input_ids", "attention_mask", "token_type_ids"}
        assert all(shape == [BATCH, SEQ] for shape in shapes.values()), shapes
    dynamic = ex.static_input_shapes(out / "model.onnx")
    assert all(isinstance(d, str) for shape in dynamic.values() for d in shape), dynamic


def test_int8_keeps_zeros_and_runs_in_onnxruntime(exported):
    out, report = exported
    graph = onnx.load(str(out / "model-int8.onnx")).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    fp32 = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(out / "model.onnx")).graph.initializer}
    matmul_int = [n for n in graph.node if n.op_type == "MatMulInteger"]
    assert len(matmul_int) == len(report["sparsity"]["modules"]) == report["int8"]["quantized_matmuls"]
    for node in matmul_int:
        weight = inits[node.input[1]]
        assert weight.dtype == np.int8
        assert not inits[node.input[3]].any(), "weight zero point must be 0 (symmetric)"
        original = fp32[node.input[1].removesuffix("_int8")]
        assert np.all(weight[original == 0] == 0), "an exact zero became non-zero"
    assert not any(n.op_type == "MatMul" and n.input[1] in fp32 and n.input[1] in inits for n in graph.node)
    # The report's claim is a measurement of the written files: it agrees with this test's own count.
    lost = sum(int(((fp32[n.input[1].removesuffix("_int8")] == 0) & (inits[n.input[1]] != 0)).sum())
               for n in matmul_int)
    assert report["int8"]["zeros_lost"] == lost == 0
    assert report["int8"]["zeros_kept"] is True
    assert report["int8"]["sparsity"]["int8"] >= report["int8"]["sparsity"]["fp32"] == pytest.approx(0.8, abs=0.01)

    enc = ex.encode(BertTokenizerFast.from_pretrained(out), TEXTS, SEQ)
    names = ex.graph_input_names(out / "model.onnx")
    want = ex.run_onnx(ex.ort_session(out / "model.onnx"), names, enc)
    got = ex.run_onnx(ex.ort_session(out / "model-int8.onnx"), names, enc)
    assert got.shape == want.shape
    assert np.abs(got - want).max() < 0.05  # tiny logits; INT8 error is small but not zero
    static = ex.run_onnx(ex.ort_session(out / "model-int8-static.onnx"), names, enc, BATCH)
    np.testing.assert_allclose(static, got, atol=1e-5)
    assert set(report["int8"]["eval"]) >= {"fp32", "int8", "delta", "metric", "examples"}
    assert report["int8"]["eval"]["examples"] == len(TEXTS)


def test_lost_int8_zeros_are_measured(exported):
    """`int8_zeros_lost` reads the two graphs: a zero made non-zero in the INT8 file is counted, by its MatMul."""
    out, _ = exported
    fp32 = onnx.load(str(out / "model.onnx"))
    int8 = onnx.load(str(out / "model-int8.onnx"))
    assert not any(ex.int8_zeros_lost(fp32, int8).values())
    node = next(n for n in int8.graph.node if n.op_type == "MatMulInteger")
    init = next(i for i in int8.graph.initializer if i.name == node.input[1])
    weight = numpy_helper.to_array(init).copy()
    original = {i.name: numpy_helper.to_array(i) for i in fp32.graph.initializer}[node.input[1].removesuffix("_int8")]
    weight[np.argwhere(original == 0)[0][0], np.argwhere(original == 0)[0][1]] = 3
    init.CopyFrom(numpy_helper.from_array(weight, init.name))
    assert ex.int8_zeros_lost(fp32, int8) == {**{k: 0 for k in ex.int8_zeros_lost(fp32, int8)},
                                              node.name.removesuffix("_MatMulInteger"): 1}


def zero_and_share(src: Path) -> list[str]:
    """Zero every query and key matrix and make layer 1's value matrix a copy of layer 0's: what a global threshold
    can leave (whole matrices pruned away), and identical matrices the exporter stores once. Returns the zeroed."""
    model = BertForSequenceClassification.from_pretrained(src)
    zeroed = []
    with torch.no_grad():
        for i, layer in enumerate(model.bert.encoder.layer):
            for part in ("query", "key"):
                getattr(layer.attention.self, part).weight.zero_()
                zeroed.append(f"bert.encoder.layer.{i}.attention.self.{part}.weight")
        layers = model.bert.encoder.layer
        layers[1].attention.self.value.weight.copy_(layers[0].attention.self.value.weight)
    model.save_pretrained(src)
    return zeroed


def test_all_zero_and_identical_matrices_export_keep_zeros_and_benchmark(tmp_path, capsys):
    src = write_tiny_model(tmp_path / "zeros", sparsity=0.5)
    zeroed = zero_and_share(src)
    out = tmp_path / "onnx"
    report = ex.export_model(src, out, sequence_length=SEQ, batch_size=BATCH, int8=True, log=lambda _: None)
    modules = report["sparsity"]["modules"]
    # The exporter really stored the four zero matrices once (else this test would not test sharing) ...
    assert len({modules[name]["onnx_initializer"] for name in zeroed}) == 1
    assert modules["bert.encoder.layer.0.attention.self.value.weight"]["onnx_initializer"] == \
        modules["bert.encoder.layer.1.attention.self.value.weight"]["onnx_initializer"]
    # ... and every weight's zeros were counted where the graph reads them.
    for name in zeroed:
        assert modules[name]["pytorch"] == modules[name]["onnx"] == 1.0
    graph = onnx.load(str(out / "model-int8.onnx")).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    by_node = {n.name: inits[n.input[1]] for n in graph.node if n.op_type == "MatMulInteger"}
    assert len(by_node) == len(modules) == report["int8"]["quantized_matmuls"]
    for name in zeroed:
        node = "/" + name.removesuffix(".weight").replace(".", "/").replace("layer/", "layer.") + "/MatMul_MatMulInteger"
        assert not by_node[node].any(), node
    assert report["int8"]["zeros_kept"] is True and report["int8"]["zeros_lost"] == 0
    assert main(["benchmark", str(src), "--runtime", "onnxruntime", "--sequence-length", str(SEQ), "--iterations", "2",
                 "--warmup", "0", "--rounds", "1"]) == 0, capsys.readouterr().err
    assert main(["benchmark", str(out), "--runtime", "onnxruntime", "--iterations", "2", "--warmup", "0",
                 "--rounds", "1"]) == 0, capsys.readouterr().err


def test_quantize_weight_is_symmetric_and_keeps_zeros():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(64, 16)).astype(np.float32)
    w[rng.random(w.shape) < 0.8] = 0
    q, scale = ex.quantize_weight(w)
    assert q.dtype == np.int8 and scale.shape == (16,)
    assert np.all(q[w == 0] == 0)
    assert np.abs(q).max() <= 127
    np.testing.assert_allclose(q * scale, w, atol=float(scale.max()) / 2 + 1e-7)


def test_structurally_pruned_model_exports(tmp_path):
    """Layers with different head counts (pruned heads) must export; nothing may assume uniform sizes."""
    src = write_tiny_model(tmp_path / "pruned", prune_heads={0: [0]})
    report = ex.export_model(src, tmp_path / "onnx", sequence_length=SEQ, log=lambda _: None)
    assert report["parity"]["max_abs_diff"] < 1e-4
    shapes = {tuple(numpy_helper.to_array(i).shape) for i in onnx.load(str(tmp_path / "onnx/model.onnx")).graph.initializer}
    assert (32, 16) in shapes and (32, 32) in shapes  # layer 0 has one 16-wide head left, layer 1 two


def test_cli_export_and_overwrite(tiny_model, tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["export", str(tiny_model), "--output", str(out), "--sequence-length", str(SEQ)]) == 0
    assert "max abs diff" in capsys.readouterr().out
    assert (out / "model-static.onnx").is_file() and not (out / "model-int8.onnx").exists()
    assert main(["export", str(tiny_model), "--output", str(out), "--sequence-length", str(SEQ), "--overwrite"]) == 0


@pytest.mark.parametrize("case", ["missing", "not_a_model", "non_empty_output", "too_long", "task_without_int8"])
def test_user_mistakes_exit_2_with_one_line(case, tiny_model, tmp_path, capsys):
    out = tmp_path / "out"
    args = {
        "missing": ["export", str(tmp_path / "nope"), "--output", str(out)],
        "not_a_model": ["export", str(tmp_path), "--output", str(out)],
        "non_empty_output": ["export", str(tiny_model), "--output", str(tiny_model.parent)],
        "too_long": ["export", str(tiny_model), "--output", str(out), "--sequence-length", "4096"],
        "task_without_int8": ["export", str(tiny_model), "--output", str(out), "--calibration-task", "sst2"],
    }[case]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err


def test_int8_calibration_from_a_glue_folder(tiny_model, tmp_path, capsys):
    """--calibration-task/--glue-dir: calibrate on train texts and report the accuracy cost on the test split."""
    sst2 = tmp_path / "glue" / "SST-2"
    sst2.mkdir(parents=True)
    rows = [(TEXTS[i % len(TEXTS)], i % 2) for i in range(40)]
    for name in ("train.tsv", "dev.tsv"):
        sst2.joinpath(name).write_text("sentence\tlabel\n" + "".join(f"{t} \t{y}\n" for t, y in rows))
    out = tmp_path / "int8"
    code = main(["export", str(tiny_model), "--output", str(out), "--sequence-length", str(SEQ), "--int8",
                 "--calibration-task", "sst2", "--glue-dir", str(tmp_path / "glue"), "--calibration-samples", "16"])
    assert code == 0, capsys.readouterr().err
    assert "accuracy cost of INT8 on 40 eval examples" in capsys.readouterr().out
    report = json.loads((out / "export_report.json").read_text())
    assert report["int8"]["calibration"] == "16 given texts"
    assert report["int8"]["eval"]["examples"] == 40
