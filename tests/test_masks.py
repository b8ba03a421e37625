"""Global and per-matrix thresholds, and masks that keep pruned weights at exactly zero."""

import torch
from conftest import tiny_bert

from hf_pins.pruning.masks import global_masks, per_matrix_masks
from hf_pins.pruning.pruner import Pruner
from hf_pins.pruning.schedule import CubicSchedule
from hf_pins.pruning.targets import find_prunable


def test_global_threshold_ranks_all_matrices_together():
    scores = {"a": torch.tensor([[1.0, 5.0], [3.0, 7.0]]), "b": torch.tensor([[2.0, 6.0, 4.0, 8.0]])}
    masks, threshold = global_masks(scores, 0.5)
    assert threshold == 4.0
    assert masks["a"].tolist() == [[False, True], [False, True]]
    assert masks["b"].tolist() == [[False, True, False, True]]


def test_global_threshold_is_exact_with_ties_and_uneven_matrices():
    scores = {"a": torch.ones(3, 3), "b": torch.ones(7)}
    masks, _ = global_masks(scores, 0.5)
    assert sum(int((~m).sum()) for m in masks.values()) == 8  # round(0.5 * 16)
    scores = {"a": torch.tensor([0.0, 0.0, 0.0, 1.0]), "b": torch.tensor([9.0, 9.0])}
    masks, _ = global_masks(scores, 0.5)
    assert masks["a"].tolist() == [False, False, False, True] and masks["b"].tolist() == [True, True]


def test_per_matrix_threshold_prunes_each_matrix_alike():
    scores = {"a": torch.tensor([[1.0, 5.0], [3.0, 7.0]]), "b": torch.tensor([[20.0, 60.0, 40.0, 80.0]])}
    masks, _ = per_matrix_masks(scores, 0.5)
    assert masks["a"].tolist() == [[False, True], [False, True]]
    assert masks["b"].tolist() == [[False, True, False, True]]


def test_default_targets_are_encoder_projections_only():
    names = list(find_prunable(tiny_bert()))
    assert len(names) == 2 * 6
    assert all(".encoder.layer." in n for n in names)
    assert not any(k in n for n in names for k in ("embeddings", "LayerNorm", "pooler", "classifier"))
    kinds = {n.split("layer.0.", 1)[1] for n in names if "layer.0." in n}
    assert kinds == {"attention.self.query.weight", "attention.self.key.weight", "attention.self.value.weight",
                     "attention.output.dense.weight", "intermediate.dense.weight", "output.dense.weight"}


def _train_steps(pruner, model, optimizer, steps, start=0, seed=0):
    generator = torch.Generator().manual_seed(seed)
    for step in range(start, start + steps):
        for p in model.parameters():
            p.grad = torch.randn(p.shape, generator=generator)
        pruner.before_optimizer_step(step, optimizer)
        optimizer.step()
        pruner.after_optimizer_step(step, optimizer)


def _pruned_weights_after(mask_mode: str):
    """Prune at step 3, then take 3 more optimizer steps before the next mask update (at step 7)."""
    model = tiny_bert()
    pruner = Pruner(model, "magnitude", 0.5, mask_mode=mask_mode)
    pruner.set_schedule(CubicSchedule(100, 0.5, warmup_steps=0, final_steps=1, update_interval=4))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.01)
    _train_steps(pruner, model, optimizer, 4)
    masks = {n: m.clone() for n, m in pruner.masks.items()}
    assert pruner.sparsity() > 0
    assert all(bool((p[~masks[n]] == 0).all()) for n, p in pruner.params.items())
    # Random gradients keep flowing to pruned positions: only the mask mechanics decide whether they revive.
    _train_steps(pruner, model, optimizer, 3, start=4, seed=1)
    return {n: p[~masks[n]] for n, p in pruner.params.items()}


def test_persistent_masks_keep_pruned_weights_exactly_zero_through_adam_steps():
    pruned = _pruned_weights_after("persistent")
    assert all(bool((values == 0).all()) for values in pruned.values())


def test_regrow_mode_lets_pruned_weights_move_between_mask_updates():
    pruned = _pruned_weights_after("regrow")
    assert any(bool((values != 0).any()) for values in pruned.values())


def test_pruned_weights_optimizer_moments_are_cleared():
    model = tiny_bert()
    pruner = Pruner(model, "magnitude", 0.5)
    pruner.set_schedule(CubicSchedule(10, 0.5, warmup_steps=0, final_steps=5, update_interval=1))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    _train_steps(pruner, model, optimizer, 6)
    for n, p in pruner.params.items():
        state = optimizer.state[p]
        assert bool((state["exp_avg"][~pruner.masks[n]] == 0).all())
        assert bool((state["exp_avg_sq"][~pruner.masks[n]] == 0).all())


def test_state_dict_round_trip():
    model = tiny_bert()
    pruner = Pruner(model, "pins", 0.5)
    pruner.set_schedule(CubicSchedule(10, 0.5, warmup_steps=0, final_steps=5, update_interval=2))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    _train_steps(pruner, model, optimizer, 5)
    other = Pruner(tiny_bert(seed=3), "pins", 0.5)
    other.load_state_dict(pruner.state_dict())
    for n in pruner.masks:
        assert torch.equal(other.masks[n], pruner.masks[n])
        assert torch.equal(other.method.smoothed.mean[n], pruner.method.smoothed.mean[n])
    assert other.history == pruner.history and other.method.smoothed.window_count == pruner.method.smoothed.window_count


class _Drift(torch.optim.Optimizer):
    """An optimizer that moves every weight, zero gradient or not (as noise-injecting optimizers do)."""

    def __init__(self, params):
        super().__init__(params, {})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                p.add_(0.01)


def test_unknown_optimizers_get_the_re_mask_after_every_step():
    from hf_pins.pruning.pruner import keeps_zeros

    model = tiny_bert()
    pruner = Pruner(model, "magnitude", 0.5)
    pruner.set_schedule(CubicSchedule(100, 0.5, warmup_steps=0, final_steps=1, update_interval=4))
    optimizer = _Drift(model.parameters())
    assert not keeps_zeros(optimizer) and keeps_zeros(torch.optim.AdamW(tiny_bert().parameters()))
    _train_steps(pruner, model, optimizer, 6)  # mask at step 3, then two drifting steps without a mask update
    assert all(bool((p[~pruner.masks[n]] == 0).all()) for n, p in pruner.params.items())
