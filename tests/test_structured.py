"""Gradual structured pruning (`pruning.granularity: structured`): which units the scores remove, the smaller model
that replaces the masked one, its reload and export, resume, and `hf-pins train` end to end."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from conftest import make_trainer, tiny_bert
from transformers import AutoModelForSequenceClassification

from hf_pins import compat
from hf_pins.cli import main
from hf_pins.pruning.structured import StructuredPruner
from hf_pins.structured.surgery import remove_units
from hf_pins.structured.units import StructuredSettings

# 2 layers, hidden 16, 4 heads of 4 dimensions, 8 FFN units: a head owns 4 * 4 * 16 = 256 weights, an FFN unit 32.
SHAPE = dict(num_hidden_layers=2, num_attention_heads=4, intermediate_size=8)
HEAD, UNIT, LAYER = 256, 32, 4 * 256 + 8 * 32
PLANTED_HEADS = {0: [2], 1: [0, 3]}
PLANTED_UNITS = {0: [1, 5], 1: [6]}


def planted_model():
    """Every prunable weight 1 except the planted heads' and FFN units' weights, 0.1: they matter least under
    magnitude and, with equal gradients, under PINS and PLATON too."""
    model = tiny_bert(**SHAPE)
    with torch.no_grad():
        for index, layer in enumerate(model.bert.encoder.layer):
            attn = layer.attention
            for linear in (attn.self.query, attn.self.key, attn.self.value, attn.output.dense,
                           layer.intermediate.dense, layer.output.dense):
                linear.weight.fill_(1.0)
            for h in PLANTED_HEADS[index]:
                rows = slice(4 * h, 4 * h + 4)
                for linear in (attn.self.query, attn.self.key, attn.self.value):
                    linear.weight[rows] = 0.1
                attn.output.dense.weight[:, rows] = 0.1
            for j in PLANTED_UNITS[index]:
                layer.intermediate.dense.weight[j] = 0.1
                layer.output.dense.weight[:, j] = 0.1
    return model


GLOBAL = StructuredSettings(budget="global")  # units compete across layers, as the planted ones need


def removed(pruner) -> tuple[dict, dict]:
    heads = {i: torch.nonzero(~pruner.unit_keep[f"head.{i}"]).flatten().tolist() for i in range(2)}
    units = {i: torch.nonzero(~pruner.unit_keep[f"ffn.{i}"]).flatten().tolist() for i in range(2)}
    return heads, units


@pytest.mark.parametrize("method", ["magnitude", "pins", "platon"])
def test_planted_heads_and_units_are_the_ones_removed(method):
    model = planted_model()
    pruner = StructuredPruner(model, method=method, structured=GLOBAL)
    if method != "magnitude":  # one step with every gradient 1: the raw score is |theta| (PINS: |-g theta(t+1)|)
        for p in pruner.params.values():
            p.grad = torch.ones_like(p)
        pruner.method.before_step(None)
        pruner.method.after_step(None)
        pruner.method.end_window()
    planted = 3 * HEAD + 3 * UNIT
    pruner.update_masks(planted / (2 * LAYER))
    assert removed(pruner) == (PLANTED_HEADS, PLANTED_UNITS)
    assert pruner.sparsity() == pytest.approx(planted / (2 * LAYER))
    # The masks cover exactly the planted weights, and the unit flags read back from them.
    pruner.apply_masks()
    zeros = sum(int((p == 0).sum()) for p in pruner.params.values())
    assert zeros == planted
    assert all(bool((p[p != 0] == 1).all()) for p in pruner.params.values())


def test_unit_score_is_the_sum_of_its_weights_scores():
    model = planted_model()
    pruner = StructuredPruner(model, method="magnitude")
    sums = pruner.layout.aggregate(pruner.method.scores())
    assert sums["head.0"].tolist() == pytest.approx([HEAD, HEAD, 0.1 * HEAD, HEAD])
    assert sums["ffn.1"].tolist() == pytest.approx([UNIT] * 6 + [0.1 * UNIT, UNIT])


def test_keep_fractions_and_per_layer_budget():
    model = planted_model()
    # Half the heads over all layers, no FFN unit: the three planted heads and the next (layer 0, head 0).
    pruner = StructuredPruner(model, method="magnitude", structured=StructuredSettings(heads_keep=0.5, budget="global"))
    assert pruner.target_sparsity == pytest.approx(4 * HEAD / (2 * LAYER))
    pruner.update_masks(pruner.target_sparsity)
    heads, units = removed(pruner)
    assert heads == {0: [0, 2], 1: [0, 3]} and units == {0: [], 1: []}
    # Per layer: each layer loses a quarter of its heads and of its FFN units, the lowest-scoring in that layer.
    pruner = StructuredPruner(model, method="magnitude")  # per_layer, the default
    pruner.update_masks(0.25)
    heads, units = removed(pruner)
    assert heads == {0: [2], 1: [0]} and units == {0: [1, 5], 1: [0, 6]}


def test_removed_units_stay_removed():
    model = planted_model()
    pruner = StructuredPruner(model, method="magnitude", structured=GLOBAL)
    pruner.update_masks(3 * HEAD / (2 * LAYER))
    first = removed(pruner)
    with torch.no_grad():  # the removed heads would now rank highest: they must not come back
        for p in pruner.params.values():
            p.mul_(-1).add_(2.0)
    pruner.update_masks(4 * HEAD / (2 * LAYER))
    heads, _ = removed(pruner)
    assert all(set(first[0][i]) <= set(heads[i]) for i in range(2))


def masked_model_with_uneven_units():
    """A model whose weights are masked to: no head in layer 0, heads 1 and 3 in layer 1, 3 and 5 FFN units."""
    model = tiny_bert(**SHAPE)
    pruner = StructuredPruner(model, method="magnitude")
    keep = {"head.0": torch.tensor([False] * 4), "head.1": torch.tensor([False, True, False, True]),
            "ffn.0": torch.tensor([True, False, True, False, False, False, True, False]),
            "ffn.1": torch.tensor([True, True, False, True, True, False, True, False])}
    pruner.set_masks(pruner.layout.expand(keep, pruner.masks))
    pruner.apply_masks()
    return model, pruner


def test_smaller_model_computes_the_masked_one_and_reloads(tmp_path):
    model, pruner = masked_model_with_uneven_units()
    model.eval()
    ids = torch.randint(5, 60, (3, 9))
    mask = torch.ones_like(ids)
    mask[0, 6:] = 0
    with torch.no_grad():
        before = model(input_ids=ids, attention_mask=mask).logits
    pruner.finish()
    structure = pruner.structure
    assert structure["heads_per_layer"] == [0, 2] and structure["ffn_units_per_layer"] == [3, 5]
    assert structure["head_padding"] == 1 and structure["intermediate_size"] == 5
    layers = model.bert.encoder.layer
    if compat.removes_heads():
        assert layers[0].attention.self.query.weight.shape == (4, 16)  # one zero head keeps the attention running
        assert layers[1].attention.self.query.weight.shape == (8, 16)
        assert layers[1].attention.output.dense.weight.shape == (16, 8)
    else:  # transformers 5 cannot take heads out: they stay in place, zeroed
        assert int((layers[1].attention.output.dense.weight != 0).any(0).sum()) == 8
    assert layers[0].intermediate.dense.weight.shape == (5, 16) and layers[1].output.dense.weight.shape == (16, 5)
    with torch.no_grad():
        after = model(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(after, before, rtol=0, atol=1e-5)

    model.save_pretrained(tmp_path)
    reloaded, info = AutoModelForSequenceClassification.from_pretrained(tmp_path, output_loading_info=True)
    assert not any(info.values()), info
    reloaded.eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(input_ids=ids, attention_mask=mask).logits, before, rtol=0, atol=1e-5)
    kept = sum(p.numel() for p in reloaded.parameters())
    assert kept == sum(p.numel() for p in model.parameters()) < sum(p.numel() for p in tiny_bert(**SHAPE).parameters())
    # Sparsity against the original prunable weights: removed units, and the zero head and FFN padding, count.
    original = 2 * LAYER
    nonzero = (2 * HEAD + 8 * UNIT) + 0  # layer 1's two heads, 3 + 5 FFN units; padding is all zeros
    assert pruner.report()["overall"] == pytest.approx(1 - nonzero / original)


def test_remove_units_refuses_nothing_and_keeps_a_full_model_intact():
    model = tiny_bert(**SHAPE)
    keep = {f"{kind}.{i}": torch.ones(n, dtype=torch.bool) for i in range(2) for kind, n in (("head", 4), ("ffn", 8))}
    shapes = {n: p.shape for n, p in model.named_parameters()}
    remove_units(model, keep)
    assert {n: p.shape for n, p in model.named_parameters()} == shapes


def test_smaller_model_exports_with_logit_parity(tmp_path):
    from test_export import write_tiny_model

    from hf_pins import export as ex

    src = write_tiny_model(tmp_path / "dense", sparsity=0.0)
    model = AutoModelForSequenceClassification.from_pretrained(src)
    pruner = StructuredPruner(model, method="magnitude")
    keep = {"head.0": torch.tensor([False, False]), "head.1": torch.tensor([False, True]),
            "ffn.0": torch.arange(64) % 3 == 0, "ffn.1": torch.arange(64) % 2 == 0}
    pruner.set_masks(pruner.layout.expand(keep, pruner.masks))
    pruner.apply_masks()
    pruner.finish()
    small = tmp_path / "small"
    model.save_pretrained(small)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (src / name).exists():
            shutil.copy(src / name, small / name)
    report = ex.export_model(small, tmp_path / "onnx", sequence_length=16, log=lambda _: None)
    assert report["parity"]["max_abs_diff"] < 1e-4
    assert main(["export", str(small), "--output", str(tmp_path / "cli"), "--sequence-length", "16"]) == 0


def test_resume_mid_run_gives_the_same_final_structure(tmp_path):
    settings = dict(save_strategy="steps", save_steps=8, save_total_limit=None, num_train_epochs=4, eval_steps=6,
                    pruning_granularity="structured", target_sparsity=0.5)
    full = make_trainer(tmp_path / "full", model=tiny_bert(**SHAPE), **settings)
    full.train()
    assert full.state.max_steps == 32
    interrupted = tmp_path / "interrupted"
    interrupted.mkdir()
    shutil.copytree(tmp_path / "full" / "checkpoint-16", interrupted / "checkpoint-16")
    meta = json.loads((interrupted / "checkpoint-16" / "pruning_state.json").read_text())
    assert meta["pruner"]["granularity"] == "structured" and meta["pruner"]["history"]
    resumed = make_trainer(interrupted, model=tiny_bert(seed=7, **SHAPE), **settings)
    resumed.train(resume_from_checkpoint=str(interrupted / "checkpoint-16"))
    assert resumed.pruner.structure == full.pruner.structure
    for key, flags in full.pruner.unit_keep.items():
        assert torch.equal(resumed.pruner.unit_keep[key], flags), key
    for key, value in full.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[key], value, rtol=0, atol=0)
    # An unstructured run refuses the structured checkpoint.
    other = make_trainer(tmp_path / "other", model=tiny_bert(**SHAPE), save_strategy="steps", save_steps=8,
                         target_sparsity=0.5)
    with pytest.raises(ValueError, match="granularity 'structured'"):
        other.train(resume_from_checkpoint=str(interrupted / "checkpoint-16"))


def test_unstructured_masks_are_unchanged_by_default(tmp_path):
    trainer = make_trainer(tmp_path, target_sparsity=0.5, num_train_epochs=2)
    assert type(trainer.pruner).__name__ == "Pruner" and trainer.args.pruning_granularity == "unstructured"


@pytest.mark.parametrize("method,extra", [
    ("pins", []),
    ("magnitude", ["pruning.structured_args.budget=global"]),
    ("platon", ["pruning.structured_args.heads_keep=0.5", "pruning.structured_args.ffn_keep=0.5"]),
])
@pytest.mark.export  # it exports the smaller model
def test_train_structured_end_to_end(tmp_path, tiny_recipe, capsys, method, extra):
    out = tmp_path / "model"
    sets = [f"pruning.method={method}", "pruning.granularity=structured", "pruning.target_sparsity=0.5", *extra]
    code = main(["train", str(tiny_recipe), "--output-dir", str(out), *[a for s in sets for a in ("--set", s)]])
    stdout = capsys.readouterr().out
    assert code == 0, stdout
    report = json.loads((out / "pruning_report.json").read_text())
    structure = report["structure"]
    assert report["method"] == method and report["prunable_weights"] == 2 * (4 * 16 * 16 + 2 * 16 * 32)
    assert report["overall"] == pytest.approx(0.5, abs=0.1)
    assert sum(structure["heads_per_layer"]) < structure["heads_before"]
    assert sum(structure["ffn_units_per_layer"]) < structure["ffn_units_before"]
    parameters = structure["parameters"]
    assert f"{parameters['before']:,} -> {parameters['after']:,} parameters" in stdout
    model, info = AutoModelForSequenceClassification.from_pretrained(out, output_loading_info=True)
    assert not any(info.values()), info
    assert model.config.intermediate_size == structure["intermediate_size"] < 32
    assert sum(p.numel() for p in model.parameters()) == parameters["after"] < parameters["before"]
    assert "accuracy" in report["metrics"]["test"]
    assert main(["export", str(out), "--output", str(tmp_path / "onnx"), "--sequence-length", "16"]) == 0


def test_structured_bad_input_is_one_line(tmp_path, tiny_recipe, capsys):
    out = tmp_path / "model"
    code = main(["train", str(tiny_recipe), "--output-dir", str(out), "--set", "pruning.granularity=structured",
                 "--set", "pruning.method=movement"])
    err = capsys.readouterr().err
    assert code == 2 and "pruning.granularity" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_compound_removes_units_then_single_weights_of_what_remains():
    model = planted_model()
    settings = StructuredSettings(heads_keep=5 / 8, ffn_keep=13 / 16, budget="global", then="unstructured")
    pruner = StructuredPruner(model, method="magnitude", target_sparsity=0.6, structured=settings)
    assert pruner.structured_target == pytest.approx((3 * HEAD + 3 * UNIT) / (2 * LAYER))
    pruner.update_masks(pruner.structured_target)
    assert removed(pruner) == (PLANTED_HEADS, PLANTED_UNITS)
    pruner.update_masks(0.6)
    pruner.apply_masks()
    assert removed(pruner) == (PLANTED_HEADS, PLANTED_UNITS)  # the units stay; single weights of the others go
    assert sum(int((p == 0).sum()) for p in pruner.params.values()) == round(0.6 * 2 * LAYER)
    pruner.finish()
    assert pruner.report()["overall"] == pytest.approx(round(0.6 * 2 * LAYER) / (2 * LAYER))
    assert pruner.structure["heads_per_layer"] == [3, 2]
    with pytest.raises(ValueError, match="must exceed"):
        StructuredPruner(planted_model(), method="magnitude", target_sparsity=0.2, structured=settings)


@pytest.mark.export  # it exports the smaller model
def test_train_compound_recipe_end_to_end(tmp_path, tiny_recipe, capsys):
    out = tmp_path / "model"
    sets = ["pruning.granularity=structured", "pruning.target_sparsity=0.7", "pruning.structured_args.heads_keep=0.5",
            "pruning.structured_args.ffn_keep=0.5", "pruning.structured_args.then=unstructured"]
    code = main(["train", str(tiny_recipe), "--output-dir", str(out), *[a for s in sets for a in ("--set", s)]])
    assert code == 0, capsys.readouterr().out
    report = json.loads((out / "pruning_report.json").read_text())
    assert report["overall"] == pytest.approx(0.7, abs=2e-3)
    structure = report["structure"]
    assert sum(structure["heads_per_layer"]) == 2 and sum(structure["ffn_units_per_layer"]) == 32  # half of each
    model = AutoModelForSequenceClassification.from_pretrained(out)
    prunable = [m.weight for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and ".layer." in n]
    assert any(int((w == 0).sum()) > 0 for w in prunable)  # single zeros left inside the kept units
    assert main(["export", str(out), "--output", str(tmp_path / "onnx"), "--sequence-length", "16"]) == 0
