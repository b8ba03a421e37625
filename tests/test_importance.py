"""The PINS importance score and its smoothing, against examples computed by hand."""

import math
from types import SimpleNamespace

import pytest
import torch
from conftest import OneWeight

from hf_pins.experimental import ExperimentalSettings
from hf_pins.pruning.pruner import Pruner
from hf_pins.pruning.schedule import CubicSchedule
from hf_pins.pruning.smoothing import SmoothedScore


def raw_score(optimizer_name: str, update: str, form: str) -> torch.Tensor:
    """Take one optimizer step with gradient [0.5, 0.25] and return the raw (window-summed) PINS score."""
    model = OneWeight()
    weight = model.layer[0].proj.weight
    args = SimpleNamespace(experimental_settings=ExperimentalSettings(importance_update=update, importance_form=form),
                           score_beta1=0.85, score_beta2=0.95)
    pruner = Pruner(model, "pins", 0.5, args=args)
    pruner.set_schedule(CubicSchedule(10, 0.5, warmup_steps=5, final_steps=2, update_interval=10))
    opt = torch.optim.Adam([weight], lr=0.1) if optimizer_name == "adam" else torch.optim.SGD([weight], lr=0.1)
    weight.grad = torch.tensor([[0.5, 0.25]])
    pruner.before_optimizer_step(0, opt)
    opt.step()
    pruner.after_optimizer_step(0, opt)
    return pruner.method.smoothed.window_sum["layer.0.proj.weight"]


def test_optimizer_update_uses_the_parameters_adam_produced():
    # Adam's first step moves each weight by lr * sign(g) (m / sqrt(v) = g / |g|): theta(t+1) = [0.9, -2.1].
    # s = -g * theta(t+1) = [-0.5 * 0.9, -0.25 * -2.1]
    expected = torch.tensor([[-0.45, 0.525]])
    torch.testing.assert_close(raw_score("adam", "optimizer", "signed"), expected, rtol=1e-5, atol=1e-6)


def test_sgd_stand_in_uses_theta_minus_lr_g_whatever_the_optimizer():
    # s = -g * (theta - lr * g) = [-0.5 * (1 - 0.05), -0.25 * (-2 - 0.025)]
    expected = torch.tensor([[-0.475, 0.50625]])
    torch.testing.assert_close(raw_score("adam", "sgd", "signed"), expected, rtol=1e-6, atol=1e-7)


def test_sgd_stand_in_absolute_form():
    torch.testing.assert_close(raw_score("adam", "sgd", "absolute"), torch.tensor([[0.475, 0.50625]]),
                               rtol=1e-6, atol=1e-7)


def test_both_forms_agree_when_the_optimizer_is_plain_sgd():
    torch.testing.assert_close(raw_score("sgd", "optimizer", "signed"), raw_score("sgd", "sgd", "signed"))


def test_absolute_form_ranks_by_magnitude_of_the_loss_change():
    torch.testing.assert_close(raw_score("adam", "optimizer", "absolute"), torch.tensor([[0.45, 0.525]]))


def test_smoothing_mean_times_uncertainty_by_hand():
    smoothed = SmoothedScore({"w": torch.Size([1])}, beta1=0.5, beta2=0.5)
    # Window 1: raw scores 2 and 4 -> window mean 3. mean = 0.5*0 + 0.5*3 = 1.5; unc = 0.5*|3 - 1.5| = 0.75.
    for raw in (2.0, 4.0):
        smoothed.add("w", torch.tensor([raw]))
        smoothed.step()
    smoothed.close_window()
    assert smoothed.mean["w"].item() == pytest.approx(1.5)
    assert smoothed.uncertainty["w"].item() == pytest.approx(0.75)
    # Window 2: raw 1 -> mean = 0.5*1.5 + 0.5*1 = 1.25; unc = 0.5*0.75 + 0.5*|1 - 1.25| = 0.5.
    smoothed.add("w", torch.tensor([1.0]))
    smoothed.step()
    smoothed.close_window()
    assert smoothed.mean["w"].item() == pytest.approx(1.25)
    assert smoothed.uncertainty["w"].item() == pytest.approx(0.5)
    assert smoothed.score("w").item() == pytest.approx(0.625)
    assert smoothed.window_sum["w"].item() == 0.0


def test_smoothed_score_of_one_step_window_matches_formula():
    smoothed = SmoothedScore({"w": torch.Size([1])}, beta1=0.85, beta2=0.95)
    smoothed.add("w", torch.tensor([-0.45]))
    smoothed.step()
    smoothed.close_window()
    mean = 0.15 * -0.45
    uncertainty = 0.05 * abs(-0.45 - mean)
    assert smoothed.score("w").item() == pytest.approx(mean * uncertainty, rel=1e-5)
    assert math.copysign(1, smoothed.score("w").item()) == -1  # the signed form keeps the sign
