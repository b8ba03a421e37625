"""Movement, soft movement and PLATON scores against hand-computed examples; every method trains with and without
self-regularization; each method's recipe keys are validated like every other key."""

import re
from types import SimpleNamespace

import pytest
import torch
from conftest import OneWeight, make_trainer
from torch import nn

from hf_pins.errors import RecipeError
from hf_pins.methods import METHODS as METHOD_CLASSES
from hf_pins.methods import get_method
from hf_pins.pruning.pruner import Pruner
from hf_pins.pruning.schedule import CubicSchedule
from hf_pins.recipe import load_recipe

NAME = "layer.0.proj.weight"


Args = SimpleNamespace


def two_sgd_steps(method: str, **settings) -> Pruner:
    """SGD at lr 0.1 with gradient [0.5, 0.25], then [-1, 0.5]; the masks are not due yet (warm-up)."""
    model = OneWeight()
    weight = model.layer[0].proj.weight
    pruner = Pruner(model, method, 0.5, args=Args(score_beta1=0.5, score_beta2=0.5),
                    settings=get_method(method).settings_class(**settings))
    pruner.set_schedule(CubicSchedule(20, 0.5, warmup_steps=10, final_steps=2, update_interval=20))
    opt = torch.optim.SGD([weight], lr=0.1)
    for step, grad in enumerate(([[0.5, 0.25]], [[-1.0, 0.5]])):
        weight.grad = torch.tensor(grad)
        pruner.before_optimizer_step(step, opt)
        opt.step()
        pruner.after_optimizer_step(step, opt)
    return pruner


def test_movement_accumulates_minus_theta_g_at_the_weights_the_forward_pass_used():
    # step 1: theta [1, -2], g [0.5, 0.25]      -> -theta*g = [-0.5, 0.5];  SGD -> theta [0.95, -2.025]
    # step 2: theta [0.95, -2.025], g [-1, 0.5] -> -theta*g = [0.95, 1.0125]
    pruner = two_sgd_steps("movement")
    torch.testing.assert_close(pruner.method.scores()[NAME], torch.tensor([[0.45, 1.5125]]))
    weighted = two_sgd_steps("movement", lr_weighted=True)  # each term times lr 0.1
    torch.testing.assert_close(weighted.method.scores()[NAME], torch.tensor([[0.045, 0.15125]]))


def test_movement_with_adam_scores_moves_each_score_by_adams_normalised_step():
    # -theta*g: step 1 [-0.5, 0.5], step 2 [0.95, 1.0125] (above). Adam, beta1 0.9, beta2 0.999, unit step:
    # step 1: m_hat = [-0.5, 0.5], v_hat = [0.25, 0.25]                      -> [-1, 1]
    # step 2: m = [0.05, 0.14625], v = [0.00115225, 0.00127490625];
    #         m_hat = m / 0.19, v_hat = v / 0.001999 -> [0.346617, 0.963850]; scores [-0.653383, 1.963850]
    pruner = two_sgd_steps("movement", score_update="adam")
    torch.testing.assert_close(pruner.method.scores()[NAME], torch.tensor([[-0.653383, 1.963850]]))
    # Saved and restored with the pruner: the moments and the step count travel too.
    state = pruner.state_dict()
    other = two_sgd_steps("movement", score_update="adam")
    other.method.adam_steps = 0
    other.load_state_dict(state)
    assert other.method.adam_steps == 2
    torch.testing.assert_close(other.method.adam_v[NAME], torch.tensor([[0.00115225, 0.00127490625]]))


def test_soft_movement_is_a_proximal_l1_step_on_the_scores():
    # lambda_t = 0.5 * mean|-theta*g|.  step 1: mean 0.5 -> lambda 0.25; soft([-0.5, 0.5], 0.25) = [-0.25, 0.25]
    # step 2: mean 0.98125 -> lambda 0.490625; soft([0.7, 1.2625], 0.490625) = [0.209375, 0.771875]
    pruner = two_sgd_steps("soft_movement", l1=0.5)
    torch.testing.assert_close(pruner.method.score[NAME], torch.tensor([[0.209375, 0.771875]]))
    plain = two_sgd_steps("soft_movement", l1=0.0)
    torch.testing.assert_close(plain.method.scores()[NAME], two_sgd_steps("movement").method.scores()[NAME])


def test_soft_movement_ranks_zero_scores_by_magnitude_between_negative_and_positive():
    model = nn.Module()
    model.layer = nn.ModuleList([nn.Module()])
    model.layer[0].proj = nn.Linear(5, 1, bias=False)
    with torch.no_grad():
        model.layer[0].proj.weight.copy_(torch.tensor([[9.0, 0.1, 3.0, 0.2, 5.0]]))
    pruner = Pruner(model, "soft_movement", 0.5, settings=get_method("soft_movement").settings_class(l1=1.0))
    pruner.method.score[NAME] = torch.tensor([[-1e-6, 0.0, 0.0, 2e-6, 0.0]])
    ranking = pruner.method.scores()[NAME].flatten().argsort().tolist()
    assert ranking == [0, 1, 2, 4, 3]  # negative, then the zeros by |theta| (0.1 < 3 < 5), then positive


def test_platon_scores_the_magnitude_of_theta_times_g_before_the_step():
    # |theta(t) * g(t)|: step 1 [0.5, 0.5], step 2 [0.95, 1.0125]; one window of two steps: mean [0.725, 0.75625]
    pruner = two_sgd_steps("platon")
    smoothed = pruner.method.smoothed
    torch.testing.assert_close(smoothed.window_sum[NAME], torch.tensor([[1.45, 1.5125]]))
    smoothed.close_window()
    window = torch.tensor([[0.725, 0.75625]])
    mean = 0.5 * window
    uncertainty = 0.5 * (window - mean).abs()
    torch.testing.assert_close(pruner.method.scores()[NAME], mean * uncertainty)


METHODS = ["pins", "magnitude", "movement", "soft_movement", "platon", "grda", "gfs"]


@pytest.mark.parametrize("self_regularization", [True, False], ids=["selfreg", "plain"])
@pytest.mark.parametrize("method", METHODS)
def test_every_method_trains_with_and_without_self_regularization(tmp_path, method, self_regularization):
    extra = {"method_args": {"c": 0.05, "lr": 0.05}} if method == "grda" else {}
    trainer = make_trainer(tmp_path, pruning_method=method, self_regularization=self_regularization,
                           num_train_epochs=2, **extra)
    trainer.train()
    report = trainer.sparsity_report()
    assert (trainer.selfreg is not None) == self_regularization
    if self_regularization:
        assert trainer.selfreg.refreshes
    if METHOD_CLASSES[method].schedules_masks:
        assert report["overall"] == pytest.approx(0.8, abs=1 / trainer.pruner.num_weights + 1e-12)
    elif method == "grda":  # nothing forced during training; the final cut is reported
        outcome = trainer.pruner.method.outcome
        assert outcome["final_cut"] == (outcome["sparsity_reached"] < 0.8)
        assert 0 < outcome["sparsity_reached"] and report["overall"] >= 0.8 - 1e-3
        assert not trainer.pruner.history
    else:  # gfs: fine-tuning after the selection, no unstructured mask; any evaluation may be the final model
        assert report["overall"] == 0.0 and trainer.best_at_target is not None


def test_movement_with_adam_scores_trains_to_the_target(tmp_path):
    trainer = make_trainer(tmp_path, pruning_method="movement", method_args={"score_update": "adam"}, num_train_epochs=2,
                           self_regularization=False)
    trainer.train()
    assert trainer.sparsity_report()["overall"] == pytest.approx(0.8, abs=1 / trainer.pruner.num_weights + 1e-12)
    assert trainer.pruner.method.adam_steps == trainer.state.max_steps


@pytest.mark.parametrize("override, key", [
    (["pruning.method=grda", "pruning.method_args.mu=0.4"], "pruning.method_args.mu: expected a number in (0.5, 1)"),
    (["pruning.method=grda", "pruning.method_args.momentum=1.0"], "pruning.method_args.momentum"),
    (["pruning.method=grda", "pruning.method_args.c=fast"], "pruning.method_args.c: expected a number"),
    (["pruning.method=soft_movement", "pruning.method_args.l1=-1"], "pruning.method_args.l1"),
    (["pruning.method=gfs", "pruning.method_args.ffn_keep=0"], "pruning.method_args.ffn_keep"),
    (["pruning.method=gfs", "pruning.method_args.imitation=both"], "pruning.method_args.imitation"),
    (["pruning.method=gfs", "pruning.method_args.then=grda"], "pruning.method_args.then"),
    (["pruning.method=movement", "pruning.method_args.lr_weighted=maybe"], "pruning.method_args.lr_weighted"),
    (["pruning.method=movement", "pruning.method_args.score_update=sgd"], "pruning.method_args.score_update"),
    (["pruning.method=movement", "pruning.method_args.score_updat=adam"], "did you mean score_update"),
    (["pruning.method_args.c=0.1"], "pruning.method_args.c: the pruning method 'pins' takes no settings"),
    (["pruning.grda_c=0.1"], "pruning.grda_c: moved to pruning.method_args.c"),
    (["pruning.warmup_steps=10"], "pruning.warmup_steps: renamed to pruning.dense_warmup_steps"),
    (["pruning.importance_form=signed"], "pruning.importance_form: moved to pruning.experimental.importance_form"),
])
def test_method_keys_are_validated_like_every_other_key(tiny_recipe, override, key):
    with pytest.raises(RecipeError, match=re.escape(key)):
        load_recipe(tiny_recipe, overrides=override)


def test_gfs_then_needs_a_structured_budget(tiny_recipe):
    with pytest.raises(RecipeError, match="pruning.method_args.then"):
        load_recipe(tiny_recipe, overrides=["pruning.method=gfs", "pruning.method_args.then=pins"])
    recipe = load_recipe(tiny_recipe, overrides=["pruning.method=gfs", "pruning.method_args.then=pins",
                                                 "pruning.method_args.ffn_keep=0.5"])
    assert recipe.pruning["method_args"] == {"then": "pins", "ffn_keep": 0.5}


# -- movement's own masking: pruned weights kept behind the mask ----------------------------------------------------
def test_behind_mask_keeps_pruned_values_scores_them_and_restores_them_by_hand():
    model = OneWeight()  # weight [1, -2]
    weight = model.layer[0].proj.weight
    pruner = Pruner(model, "movement", 0.5, mask_mode="behind_mask", threshold="per_matrix")
    pruner.method.score[NAME].copy_(torch.tensor([[1.0, -1.0]]))
    pruner.update_masks(0.5)  # keeps weight 0
    pruner.apply_masks()
    assert weight.tolist() == [[1.0, 0.0]] and pruner.hidden[NAME].tolist() == [[0.0, -2.0]]
    assert pruner.method.theta(NAME).tolist() == [[1.0, -2.0]]  # the method sees the dense weight
    # A step with g = [0.5, 0.25]: the score moves at the pruned position too, with its hidden value:
    # -theta * g = [-0.5, 0.5]; the pruned weight's own gradient is masked (its value stays frozen).
    weight.grad = torch.tensor([[0.5, 0.25]])
    pruner.before_optimizer_step(0, None)
    torch.testing.assert_close(pruner.method.score[NAME], torch.tensor([[0.5, -0.5]]))
    assert weight.grad.tolist() == [[0.5, 0.0]]
    pruner.method.score[NAME].copy_(torch.tensor([[-1.0, 1.0]]))
    pruner.update_masks(0.5)  # weight 1 comes back with its value, weight 0 goes behind the mask
    pruner.apply_masks()
    assert weight.tolist() == [[0.0, -2.0]] and pruner.hidden[NAME].tolist() == [[1.0, 0.0]]
    other = Pruner(OneWeight(), "movement", 0.5, mask_mode="behind_mask", threshold="per_matrix")
    other.load_state_dict(pruner.state_dict())
    assert other.hidden[NAME].tolist() == [[1.0, 0.0]] and other.masks[NAME].tolist() == [[False, True]]


def test_movement_behind_the_mask_trains_to_the_target_with_zeros_in_the_model(tmp_path):
    trainer = make_trainer(tmp_path, pruning_method="movement", mask_mode="behind_mask", pruning_threshold="per_matrix",
                           num_train_epochs=2, self_regularization=False)
    trainer.train()
    pruner = trainer.pruner
    expected = sum(round(0.8 * p.numel()) for p in pruner.params.values()) / pruner.num_weights  # per matrix
    assert trainer.sparsity_report()["overall"] == pytest.approx(expected)
    for n, p in pruner.params.items():
        assert bool((p[~pruner.masks[n]] == 0).all()) and bool((pruner.hidden[n][pruner.masks[n]] == 0).all())
    assert any(bool((h != 0).any()) for h in pruner.hidden.values())  # pruned values are kept, not lost
