"""`hf_pins.runtime` and `hf-pins benchmark`: predictions, the ONNX Runtime fallback, the benchmark's JSON."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast  # noqa: E402

from hf_pins import export as ex  # noqa: E402
from hf_pins import inference_benchmark as ib  # noqa: E402
from hf_pins import runtime  # noqa: E402
from hf_pins.cli import main  # noqa: E402
from hf_pins.errors import ModelError, UserError  # noqa: E402
from hf_pins.pruning.targets import find_prunable  # noqa: E402

WORDS = "the a cat dog sat on mat film is moving bleak cheerful and it was good bad very not movie".split()
TEXTS = ["the cat sat on the mat", "a very bad movie", "it was good"]
PAIRS = [("the cat sat", "a dog sat"), ("good film", "bad film"), ("it was", "not good")]
SEQ, BATCH = 16, 2
DEEPSPARSE_OK, DEEPSPARSE_WHY = runtime.deepsparse_status()
# Every test that exports or runs a model needs the export extra; the DeepSparse comparison also needs DeepSparse.
export = pytest.mark.export


def write_tiny_model(path: Path, num_labels: int = 2, sparsity: float = 0.8) -> Path:
    """A 2-layer BERT (hidden 32) with a word-level vocab, magnitude-pruned, in save_pretrained layout."""
    path.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    torch.manual_seed(0)
    labels = {0: "negative", 1: "positive"} if num_labels == 2 else {0: "LABEL_0"}
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, num_labels=num_labels,
                        id2label=labels, label2id={v: k for k, v in labels.items()},
                        problem_type="regression" if num_labels == 1 else None)
    model = BertForSequenceClassification(config)
    with torch.no_grad():
        for weight in find_prunable(model).values():
            threshold = weight.abs().flatten().kthvalue(int(sparsity * weight.numel())).values
            weight[weight.abs() <= threshold] = 0
    model.save_pretrained(path)
    BertTokenizerFast(vocab_file=str(path / "vocab.txt")).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runtime")
    cls = write_tiny_model(root / "cls")
    reg = write_tiny_model(root / "reg", num_labels=1)
    quiet = dict(sequence_length=SEQ, batch_size=BATCH, log=lambda _: None)
    ex.export_model(cls, root / "cls_onnx", int8=True, **quiet)
    ex.export_model(reg, root / "reg_onnx", **quiet)
    return {"cls": cls, "cls_onnx": root / "cls_onnx", "reg_onnx": root / "reg_onnx"}


@pytest.fixture
def no_deepsparse(monkeypatch):
    """Make the optional dependency unimportable, as on a machine where it is not installed."""
    monkeypatch.setitem(sys.modules, "deepsparse", None)


@export
def test_predict_labels_and_scores(models):
    predictor = runtime.load(models["cls_onnx"], runtime="onnxruntime", precision="fp32")
    out = predictor.predict(TEXTS)
    assert len(out) == 3
    for row in out:
        assert set(row) == {"label", "score"}
        assert row["label"] in {"negative", "positive"}
        assert 0.5 <= row["score"] <= 1.0
    assert len(predictor.predict(PAIRS)) == 3
    assert predictor.predict("a single text") == predictor.predict(["a single text"])
    with pytest.raises(UserError):
        predictor.predict([1, 2])


@export
def test_predictions_match_pytorch(models):
    model = BertForSequenceClassification.from_pretrained(models["cls"]).eval()
    tokenizer = BertTokenizerFast.from_pretrained(models["cls"])
    with torch.no_grad():
        want = torch.softmax(model(**tokenizer(TEXTS, padding=True, return_tensors="pt")).logits, -1).numpy()
    got = runtime.load(models["cls_onnx"], runtime="onnxruntime", precision="fp32").predict(TEXTS)
    np.testing.assert_allclose([g["score"] for g in got], want.max(axis=1), atol=1e-5)
    assert [g["label"] for g in got] == [model.config.id2label[int(i)] for i in want.argmax(axis=1)]


@export
def test_regression_returns_scores_only(models):
    out = runtime.load(models["reg_onnx"], runtime="onnxruntime").predict(TEXTS)
    assert [set(r) for r in out] == [{"score"}] * 3


@export
def test_int8_is_the_default_when_exported(models):
    predictor = runtime.load(models["cls_onnx"], runtime="onnxruntime")
    assert predictor.precision == "int8"
    assert predictor.engine.path.name == "model-int8.onnx"
    fp32 = runtime.load(models["cls_onnx"], runtime="onnxruntime", precision="fp32").logits(TEXTS)
    np.testing.assert_allclose(predictor.logits(TEXTS), fp32, atol=0.05)
    with pytest.raises(UserError, match="export with --int8"):
        runtime.load(models["reg_onnx"], runtime="onnxruntime", precision="int8")


@export
def test_auto_falls_back_to_onnxruntime_with_one_line(models, no_deepsparse, caplog):
    with caplog.at_level(logging.WARNING, logger="hf_pins.runtime"):
        predictor = runtime.load(models["cls_onnx"], runtime="auto", precision="fp32")
    assert predictor.runtime == "onnxruntime"
    notices = [r.getMessage() for r in caplog.records if r.name == "hf_pins.runtime"]
    assert len(notices) == 1 and "\n" not in notices[0] and "ONNX Runtime" in notices[0]
    assert len(predictor.predict(TEXTS)) == 3
    with pytest.raises(UserError, match="deepsparse is not available"):
        runtime.load(models["cls_onnx"], runtime="deepsparse")


@export
@pytest.mark.deepsparse
@pytest.mark.skipif(not DEEPSPARSE_OK, reason=DEEPSPARSE_WHY)
def test_deepsparse_matches_onnxruntime(models):
    """DeepSparse runs the static [2, 16] graph: 3 texts are two batches, the second filled up and trimmed."""
    for precision, atol in (("fp32", 1e-4), ("int8", 0.05)):
        ds = runtime.load(models["cls_onnx"], runtime="deepsparse", precision=precision)
        assert ds.engine.static_shape == (BATCH, SEQ)
        ort = runtime.load(models["cls_onnx"], runtime="onnxruntime", precision=precision)
        np.testing.assert_allclose(ds.logits(TEXTS), ort.logits(TEXTS), atol=atol)
    assert runtime.load(models["cls_onnx"], runtime="auto").runtime == "deepsparse"


@export
def test_load_user_mistakes(models, tmp_path):
    with pytest.raises(ModelError, match="hf-pins export"):
        runtime.load(models["cls"])  # a PyTorch directory
    with pytest.raises(ModelError, match="does not exist"):
        runtime.load(tmp_path / "nope")
    with pytest.raises(UserError, match="runtime"):
        runtime.load(models["cls_onnx"], runtime="tensorrt")


@export
def test_machine_info_names_cpu_and_instruction_sets():
    info = ib.machine_info()
    assert info["cpu"] and info["cores_physical"] >= 1 and info["cores_logical"] >= 1
    assert isinstance(info["instruction_sets"], list)
    assert "onnxruntime" in info["versions"]


def _check_benchmark_json(path: Path, runtimes: set[str], precisions: set[str]):
    data = json.loads(path.read_text())
    assert set(data) == {"machine", "results"}
    assert {"cpu", "cores_physical", "instruction_sets"} <= set(data["machine"])
    assert {(r["runtime"], r["precision"]) for r in data["results"]} == {(a, b) for a in runtimes for b in precisions}
    for row in data["results"]:
        assert {"runtime", "batch_size", "sequence_length", "items_per_second", "latency_ms_median",
                "latency_ms_p90", "precision"} <= set(row)
        assert row["items_per_second"] > 0 and row["latency_ms_p90"] >= row["latency_ms_median"] > 0
        assert (row["batch_size"], row["sequence_length"]) == (BATCH, SEQ)
    return data


@export
def test_benchmark_json_and_table(models, tmp_path, capsys, no_deepsparse):
    out = tmp_path / "bench.json"
    code = main(["benchmark", str(models["cls_onnx"]), "--runtime", "all", "--iterations", "3", "--warmup", "0",
                 "--batch-size", str(BATCH), "--sequence-length", str(SEQ), "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "skipping DeepSparse" in printed and "machine:" in printed and "| items/s |" in printed
    _check_benchmark_json(out, {"onnxruntime"}, {"fp32", "int8"})


@export
def test_benchmark_exports_a_pytorch_model_first(models, tmp_path):
    out = tmp_path / "bench.json"
    runtimes = ["--runtime", "all"] if DEEPSPARSE_OK else ["--runtime", "onnxruntime"]
    code = main(["benchmark", str(models["cls"]), *runtimes, "--precision", "fp32", "--iterations", "2",
                 "--warmup", "0", "--batch-size", str(BATCH), "--sequence-length", str(SEQ), "--json", str(out)])
    assert code == 0
    _check_benchmark_json(out, {"onnxruntime", "deepsparse"} if DEEPSPARSE_OK else {"onnxruntime"}, {"fp32"})


@pytest.mark.parametrize("args", [["benchmark", "/nonexistent/model"],
                                  ["benchmark", "{cls_onnx}", "--batch-size", "0"],
                                  ["benchmark", "{reg_onnx}", "--precision", "int8"]])
@export
def test_benchmark_user_mistakes_exit_2(args, models, capsys):
    args = [a.format(**{k: str(v) for k, v in models.items()}) for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err


def test_deepsparse_threads_pinned_unless_user_says_otherwise(monkeypatch):
    monkeypatch.delenv("NM_BIND_THREADS_TO_CORES", raising=False)
    runtime.pin_deepsparse_threads()
    assert os.environ["NM_BIND_THREADS_TO_CORES"] == "1"
    monkeypatch.setenv("NM_BIND_THREADS_TO_CORES", "0")
    runtime.pin_deepsparse_threads()
    assert os.environ["NM_BIND_THREADS_TO_CORES"] == "0"


@export
def test_interleaved_rounds_cover_every_configuration(models):
    configs = [ib.Config(models["cls_onnx"], "onnxruntime", p, "tiny") for p in ("fp32", "int8")]
    rows = ib.benchmark(configs, batch_size=BATCH, sequence_length=SEQ, warmup_seconds=0, seconds=None,
                        iterations=4, rounds=2, threads=1, log=lambda _: None)
    assert [(r["precision"], r["iterations"], r["rounds"], r["threads"]) for r in rows] == [
        ("fp32", 4, 2, 1), ("int8", 4, 2, 1)]
    assert "| others' CPU |" in ib.format_table(rows)


def test_cpuinfo_is_parsed_once_for_model_and_flags():
    from hf_pins.cpu import parse_cpuinfo

    x86 = "processor\t: 0\nmodel name\t: AMD EPYC 9R14\nflags\t\t: fpu avx2 avx512f\n\nprocessor\t: 1\nflags\t: sse\n"
    assert parse_cpuinfo(x86).model == "AMD EPYC 9R14"
    assert parse_cpuinfo(x86).flags == {"fpu", "avx2", "avx512f"}
    assert parse_cpuinfo("processor\t: 0\nFeatures\t: fp asimd sve\n").flags == {"fp", "asimd", "sve"}
    assert parse_cpuinfo("").flags == frozenset()
