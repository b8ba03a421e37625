"""gRDA / gRDAM: the update against its closed form, SGD at c = 0, its place in the Trainer, calibration and final cut."""

import math

import pytest
import torch
from conftest import make_trainer

from hf_pins.optim.composed import ComposedOptimizer
from hf_pins.optim.grda import GRDA
from hf_pins.optim.grda_calibration import calibrate_c


def _grads(steps: int, shape=(4, 5), seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g) for _ in range(steps)]


def _run(optimizer_cls, w0: torch.Tensor, grads, **kwargs) -> tuple[torch.Tensor, torch.optim.Optimizer]:
    w = torch.nn.Parameter(w0.clone())
    opt = optimizer_cls([w], **kwargs)
    for g in grads:
        w.grad = g.clone()
        opt.step()
    return w.detach(), opt


@pytest.mark.parametrize("mu", [0.51, 0.7])
def test_update_matches_the_closed_form_at_constant_lr(mu):
    torch.manual_seed(0)
    w0, grads, lr, c = torch.randn(4, 5), _grads(25), 0.05, 2.0
    w, opt = _run(GRDA, w0, grads, lr=lr, c=c, mu=mu)
    n = len(grads)
    threshold = c * math.sqrt(lr) * (n * lr) ** mu
    a = w0 - lr * torch.stack(grads).sum(0)
    expected = torch.sign(a) * (a.abs() - threshold).clamp_min(0)
    state = opt.state[next(iter(opt.state))]
    assert state["n"] == n and state["threshold"] == pytest.approx(threshold, rel=1e-12)
    torch.testing.assert_close(state["accumulator"], a, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(w, expected, rtol=1e-5, atol=1e-6)
    assert 0 < int((w == 0).sum()) < w.numel()  # the soft threshold produced exact zeros, not everywhere


def test_c_zero_is_plain_sgd():
    torch.manual_seed(1)
    w0, grads = torch.randn(4, 5), _grads(10, seed=1)
    w_grda, _ = _run(GRDA, w0, grads, lr=0.1, c=0.0)
    w_sgd, _ = _run(torch.optim.SGD, w0, grads, lr=0.1)
    torch.testing.assert_close(w_grda, w_sgd, rtol=0, atol=1e-7)


def test_gramd_momentum_and_weight_decay_at_c_zero_is_sgd_with_momentum():
    torch.manual_seed(2)
    w0, grads = torch.randn(4, 5), _grads(10, seed=2)
    w_grda, _ = _run(GRDA, w0, grads, lr=0.1, c=0.0, momentum=0.9, weight_decay=0.01)
    w_sgd, _ = _run(torch.optim.SGD, w0, grads, lr=0.1, momentum=0.9, weight_decay=0.01)
    torch.testing.assert_close(w_grda, w_sgd, rtol=1e-5, atol=1e-6)


def test_composed_optimizer_shares_groups_and_state_and_survives_a_state_dict_round_trip():
    torch.manual_seed(3)
    a, b = torch.nn.Parameter(torch.randn(3)), torch.nn.Parameter(torch.randn(4, 4))

    def build():
        return ComposedOptimizer([torch.optim.AdamW([a], lr=0.01), GRDA([b], lr=0.1, c=0.5)])

    opt = build()
    scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 0.5)
    assert [g["lr"] for g in opt.optimizers[0].param_groups + opt.optimizers[1].param_groups] == [0.005, 0.05]
    for g in _grads(3, (4, 4)):
        a.grad, b.grad = g[0, :3].clone(), g.clone()
        opt.step()
        scheduler.step()
    saved = opt.state_dict()
    copy = build()
    copy.load_state_dict(saved)
    assert copy.optimizers[1].state is copy.state and copy.state[b]["n"] == 3
    assert copy.optimizers[1].param_groups[0] is copy.param_groups[1]


def test_trainer_puts_prunable_matrices_under_grda_and_the_rest_under_adamw(tmp_path):
    trainer = make_trainer(tmp_path, pruning_method="grda", method_args={"c": 0.05, "lr": 0.05}, target_sparsity=0.0,
                           self_regularization=False, lr_scheduler_type="constant")
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    composed = trainer.optimizer.optimizer
    assert isinstance(composed, ComposedOptimizer)
    adamw, grda = composed.optimizers
    prunable = {id(p) for p in trainer.pruner.params.values()}
    assert {id(p) for g in grda.param_groups for p in g["params"]} == prunable
    assert not prunable & {id(p) for g in adamw.param_groups for p in g["params"]}
    assert [g["lr"] for g in composed.param_groups] == [1e-3, 1e-3, 0.05]  # the scheduler drives every group
    reached = trainer.sparsity_report()["overall"]
    assert reached > 0.05 and trainer.pruner.method.outcome == {"sparsity_reached": reached, "final_cut": False}
    embeddings = "bert.embeddings.word_embeddings.weight"
    assert not torch.equal(before[embeddings], trainer.model.get_parameter(embeddings))


def test_final_cut_reaches_the_target_only_when_asked_and_says_so(tmp_path):
    settings = {"c": 0.01, "lr": 0.05, "calibration_trials": 0}
    common = dict(pruning_method="grda", target_sparsity=0.6, self_regularization=False, num_train_epochs=1)
    cut = make_trainer(tmp_path / "cut", method_args=settings, **common)
    cut.train()
    assert cut.pruner.method.outcome["final_cut"] and cut.pruner.method.outcome["sparsity_reached"] < 0.6
    assert cut.sparsity_report()["overall"] == pytest.approx(0.6, abs=1 / cut.pruner.num_weights)
    kept = make_trainer(tmp_path / "kept", method_args={**settings, "final_cut": False}, **common)
    kept.train()
    assert not kept.pruner.method.outcome["final_cut"]
    assert kept.sparsity_report()["overall"] == kept.pruner.method.outcome["sparsity_reached"] < 0.6


def _fake_runs(table):
    calls = []

    def short_run(c):
        calls.append(c)
        return table[round(c, 6)]

    return short_run, calls


def test_calibration_takes_the_largest_c_that_keeps_the_metric():
    run, calls = _fake_runs({0.0: (0.90, 0.0, 0.0), 1e-4: (0.90, 0.1, 0.2), 2e-4: (0.895, 0.2, 0.4),
                             4e-4: (0.85, 0.4, 0.7), 8e-4: (0.80, 0.6, 0.9)})
    result = calibrate_c(run, c_start=1e-4, growth=2, trials=4, target=0.9, tolerance=0.01)
    assert result["chosen_c"] == 2e-4 and calls == [0.0, 1e-4, 2e-4, 4e-4]


def test_calibration_stops_at_the_first_c_projected_to_reach_the_target():
    run, calls = _fake_runs({0.0: (0.90, 0.0, 0.0), 1e-4: (0.90, 0.3, 0.5), 2e-4: (0.90, 0.5, 0.8)})
    result = calibrate_c(run, c_start=1e-4, growth=2, trials=5, target=0.8, tolerance=0.01)
    assert result["chosen_c"] == 2e-4 and calls == [0.0, 1e-4, 2e-4]
    assert result["trials"][-1]["projected_sparsity"] == 0.8
