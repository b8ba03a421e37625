"""Greedy forward selection: the greedy least-squares path, local imitation on a planted layer, folding and removal,
save and reload of uneven structures, budgets and the tolerance."""

import copy

import pytest
import torch
from conftest import pad_collate, tiny_bert, token_dataset
from transformers import AutoModelForSequenceClassification

from hf_pins.config import PINSConfig
from hf_pins.structured.gfs import greedy_forward_selection, keep_from_target
from hf_pins.structured.selection import GreedySelector
from hf_pins.structured.surgery import apply_selection, encoder_layers, gated


def _model(**overrides):
    return tiny_bert(num_attention_heads=4, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, **overrides)


def _args(tmp_path, **method_args):
    """A greedy-forward-selection config; keyword arguments are its `method_args`."""
    return PINSConfig(output_dir=str(tmp_path), use_cpu=True, report_to="none", self_regularization=False,
                      pruning_method="gfs", per_device_eval_batch_size=16, seed=0,
                      method_args={"samples": 64, **method_args})


def _logits(model, n=16, seed=5):
    data = token_dataset(n, seed=seed)
    batch = pad_collate([data[i] for i in range(n)])
    model.eval()
    with torch.no_grad():
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits


def test_greedy_path_is_forward_selection_with_a_least_squares_refit():
    torch.manual_seed(0)
    z = torch.randn(30, 7, dtype=torch.float64)
    y = z.sum(1)
    selector = GreedySelector(z.T @ z)

    def residual(cols):
        gamma = torch.linalg.lstsq(z[:, cols], y[:, None]).solution
        return float(((y[:, None] - z[:, cols] @ gamma) ** 2).sum())

    chosen = []
    for _ in range(4):
        best = min((j for j in range(7) if j not in chosen), key=lambda j: residual(chosen + [j]))
        assert selector.step() == best
        chosen.append(best)
    _, gamma = selector.coefficients()
    torch.testing.assert_close(gamma, torch.linalg.lstsq(z[:, chosen], y[:, None]).solution[:, 0])
    assert selector.residual() == pytest.approx(residual(chosen) / float(y @ y))


def _plant(model):
    """In every layer only units 2, 5, 9, 17 reach the output; unit 20 duplicates unit 2 (so one of them with
    coefficient 2 replaces both); units 30 and 31 are loud decoys (huge activations and output columns) that cancel
    each other and are orthogonal to everything else, so any magnitude criterion would keep them."""
    with torch.no_grad():
        for layer in encoder_layers(model):
            first, second = layer.intermediate.dense, layer.output.dense
            relevant = [2, 5, 9, 17]
            first.weight[20], first.bias[20] = first.weight[2], first.bias[2]
            first.weight[30] = first.weight[31] = 20 * first.weight[30]
            first.bias[30] = first.bias[31] = 1.0
            cols = torch.randn(second.out_features, 4)
            decoy = torch.randn(second.out_features)
            basis, _ = torch.linalg.qr(cols)
            decoy = 50 * (decoy - basis @ (basis.T @ decoy))
            second.weight.zero_()
            second.weight[:, relevant] = cols
            second.weight[:, 20] = cols[:, 0]
            second.weight[:, 30], second.weight[:, 31] = decoy, -decoy
    return model


def test_local_imitation_selects_exactly_the_units_that_rebuild_a_planted_layer(tmp_path):
    model = _plant(_model())
    reference = _logits(model)
    args = _args(tmp_path, imitation="local", ffn_keep=4 / 32, heads_keep=1.0)
    structure = greedy_forward_selection(model, args, token_dataset(64), None, pad_collate, False)
    assert structure["ffn_units_kept"] == [4, 4] and structure["heads_kept"] == [4, 4]
    for layer in structure["layers"]:
        assert layer["ffn_reconstruction_error"] == pytest.approx(0.0, abs=1e-6)
    for layer in encoder_layers(model):  # each kept unit's output column is a planted one, the duplicate doubled
        second = layer.output.dense.weight
        assert second.shape[1] == 4
        norms = second.norm(dim=0)
        assert (norms < 30).all()  # no decoy (their columns have norm ~50 or more)
    torch.testing.assert_close(_logits(model), reference, rtol=1e-4, atol=1e-5)
    assert structure["parameters"]["after"] < structure["parameters"]["before"]


def test_selected_units_and_the_doubled_duplicate(tmp_path):
    model = _plant(_model())
    layer = encoder_layers(model)[0]
    rows, cols = layer.intermediate.dense.weight.detach().clone(), layer.output.dense.weight.detach().clone()
    args = _args(tmp_path, imitation="local", ffn_keep=4 / 32, heads_keep=1.0)
    greedy_forward_selection(model, args, token_dataset(64), None, pad_collate, False)
    kept_rows, kept_cols = layer.intermediate.dense.weight.detach(), layer.output.dense.weight.detach()
    origin = [frozenset(j for j in range(32) if torch.equal(kept_rows[i], rows[j])) for i in range(4)]
    assert sorted(map(sorted, origin)) == [[2, 20], [5], [9], [17]]  # never a decoy
    for i, units in enumerate(origin):
        factor = 2.0 if units == {2, 20} else 1.0  # the refit gives the kept twin the coefficient 2
        torch.testing.assert_close(kept_cols[:, i], factor * cols[:, min(units)], rtol=1e-4, atol=1e-5)


def test_folding_equals_gating_and_uneven_structures_survive_save_and_reload(tmp_path):
    model = _model()
    layers = encoder_layers(model)
    torch.manual_seed(1)
    plan = {
        0: {"ffn_units": [3, 10, 11, 30], "ffn_gamma": torch.tensor([1.5, 0.5, 1.0, 2.0], dtype=torch.float64),
            "ffn_shift": torch.randn(16) * 0.1, "heads": [0, 2], "head_gamma": torch.tensor([1.2, 0.7]),
            "head_shift": torch.randn(16) * 0.1},
        1: {"ffn_units": list(range(0, 32, 3)), "ffn_gamma": torch.ones(11, dtype=torch.float64),
            "ffn_shift": torch.zeros(16), "heads": [1, 2, 3], "head_gamma": torch.ones(3), "head_shift": torch.zeros(16)},
    }
    gates = {}
    for index, spec in plan.items():
        ffn_gate, head_gate = torch.zeros(32), torch.zeros(4)
        ffn_gate[spec["ffn_units"]] = spec["ffn_gamma"].float()
        head_gate[spec["heads"]] = spec["head_gamma"].float()
        gates[index] = {"ffn_gate": ffn_gate, "ffn_shift": spec["ffn_shift"], "head_gate": head_gate,
                        "head_shift": spec["head_shift"]}
    with gated(layers, gates):
        expected = _logits(model)
    storage = apply_selection(model, layers, plan)
    assert storage == {"intermediate_size": 11, "ffn_padding_units": 7}
    folded = _logits(model)
    torch.testing.assert_close(folded, expected, rtol=1e-4, atol=1e-5)
    model.save_pretrained(tmp_path / "small")
    loaded, info = AutoModelForSequenceClassification.from_pretrained(tmp_path / "small", output_loading_info=True)
    assert not any(info.values()), info
    from hf_pins import compat

    if compat.removes_heads():  # transformers 4.x: the heads are gone from the saved model
        assert {int(k): sorted(v) for k, v in loaded.config.pruned_heads.items()} == {0: [1, 3], 1: [0]}
        assert [l.attention.self.num_attention_heads for l in loaded.bert.encoder.layer] == [2, 3]
    else:  # transformers 5.x: the removed heads' query rows are zero (compat.remove_heads)
        query = loaded.bert.encoder.layer[0].attention.self.query.weight
        size = loaded.config.hidden_size // loaded.config.num_attention_heads
        assert all(float(query[h * size:(h + 1) * size].abs().sum()) == 0 for h in (1, 3))
    torch.testing.assert_close(_logits(loaded), folded, rtol=0, atol=0)


def test_keep_from_target_removes_that_fraction_of_each_layer():
    layer = encoder_layers(_model(intermediate_size=64))[0]
    ffn_keep, heads_keep, rule = keep_from_target(0.5, layer)
    assert heads_keep == 0.5 and "heads keep" in rule
    d, m = 16, 64
    kept = heads_keep * 4 * d * d + ffn_keep * 2 * d * m
    assert kept / (4 * d * d + 2 * d * m) == pytest.approx(0.5, abs=2 * d / (4 * d * d + 2 * d * m))


@pytest.mark.parametrize("imitation", ["global", "auto"])
def test_global_and_auto_imitation_with_a_global_budget(tmp_path, imitation):
    model = _model()
    reference_params = sum(p.numel() for p in model.parameters())
    args = _args(tmp_path, imitation=imitation, budget="global", ffn_keep=0.5, heads_keep=0.5)
    structure = greedy_forward_selection(model, args, token_dataset(64), token_dataset(32, seed=1), pad_collate, False)
    assert sum(structure["ffn_units_kept"]) == 32 and sum(structure["heads_kept"]) == 4
    assert structure["parameters"]["before"] == reference_params > structure["parameters"]["after"]
    assert structure["intermediate_size"]["after"] == max(structure["ffn_units_kept"])
    if imitation == "auto":
        for layer in structure["layers"]:
            assert layer["imitation"] == min(layer["dev_loss"], key=layer["dev_loss"].get)
    saved = copy.deepcopy(model)
    saved.save_pretrained(tmp_path / "m")
    torch.testing.assert_close(_logits(AutoModelForSequenceClassification.from_pretrained(tmp_path / "m")),
                               _logits(model), rtol=0, atol=0)


def test_tolerance_stops_adding_units_once_dev_accuracy_is_kept(tmp_path):
    model = _model()
    args = _args(tmp_path, ffn_keep=0.75, heads_keep=0.75, tolerance=1.0)  # any accuracy is kept
    structure = greedy_forward_selection(model, args, token_dataset(64), token_dataset(32, seed=1), pad_collate, False)
    assert structure["ffn_units_kept"] == [1, 1] and structure["heads_kept"] == [1, 1]
    strict = greedy_forward_selection(_model(), _args(tmp_path, ffn_keep=0.75, heads_keep=0.75),
                                      token_dataset(64), None, pad_collate, False)
    assert strict["ffn_units_kept"] == [24, 24] and strict["heads_kept"] == [3, 3]


def test_pins_on_top_of_the_selection_and_resume_rebuilds_the_smaller_model(tmp_path, tiny_recipe):
    import shutil

    from hf_pins.recipe import load_recipe
    from hf_pins.training import run_training

    sets = ["pruning.method=gfs", "pruning.method_args.then=pins", "pruning.method_args.ffn_keep=0.5",
            "pruning.target_sparsity=0.5"]
    recipe = load_recipe(tiny_recipe, overrides=sets)
    first = run_training(recipe, output_dir=str(tmp_path / "run")).report
    structure = first["structure"]
    kept = structure["prunable_weights"]["after"] / structure["prunable_weights"]["before"]
    assert kept == 0.75  # half the FFN weights, all attention weights
    assert first["overall"] == pytest.approx(1 - kept * 0.5, abs=1e-3)  # PINS prunes half of what is left
    shutil.rmtree(tmp_path / "run" / "checkpoint-16")
    resumed = run_training(recipe, output_dir=str(tmp_path / "run"), resume=True).report
    assert resumed["structure"]["ffn_units_kept"] == structure["ffn_units_kept"]
    assert resumed["overall"] == pytest.approx(first["overall"], abs=1e-3)
