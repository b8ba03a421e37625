"""The cubic schedule at its boundaries, counted in optimizer steps."""

import pytest

from hf_pins.pruning.schedule import CubicSchedule


def test_boundaries():
    s = CubicSchedule(total_steps=100, target_sparsity=0.8, warmup_steps=10, final_steps=30, update_interval=10)
    assert s.sparsity(0) == 0.0 and s.sparsity(9) == 0.0  # dense warm-up
    assert s.sparsity(10) == pytest.approx(0.0)  # ramp starts at r = 1
    assert s.keep_ratio(40) == pytest.approx(0.2 + 0.8 * (1 - 30 / 60) ** 3)
    assert s.keep_ratio(69) == pytest.approx(0.2 + 0.8 * (1 / 60) ** 3)
    assert s.sparsity(70) == pytest.approx(0.8) and s.sparsity(99) == pytest.approx(0.8)
    values = [s.sparsity(t) for t in range(100)]
    assert values == sorted(values)  # never decreases


def test_mask_updates_every_interval_in_the_ramp_and_every_step_at_the_end():
    s = CubicSchedule(total_steps=100, target_sparsity=0.8, warmup_steps=10, final_steps=30, update_interval=10)
    updates = [t for t in range(100) if s.updates_mask(t)]
    assert updates[:6] == [19, 29, 39, 49, 59, 69]
    assert updates[6:] == list(range(70, 100))
    assert not s.updates_mask(9)  # window closes in warm-up, but no mask yet
    assert s.closes_window(9)
    assert s.at_target(99) and s.at_target(70) and not s.at_target(69)


def test_ratios_and_explicit_steps():
    s = CubicSchedule.from_config(200, 0.9, warmup_ratio=0.1, final_ratio=0.3)
    assert (s.warmup_steps, s.final_steps) == (20, 60)
    s = CubicSchedule.from_config(200, 0.9, warmup_steps=5, warmup_ratio=0.1, final_steps=7, final_ratio=0.3)
    assert (s.warmup_steps, s.final_steps) == (5, 7)
    s = CubicSchedule.from_config(50, 0.9, warmup_ratio=0.0, final_ratio=0.0)
    assert s.final_steps == 1 and s.sparsity(49) == pytest.approx(0.9)  # the last step is always at the target


def test_warmup_in_epochs_wins_over_the_ratio_and_loses_to_steps():
    # 1.5 epochs of 14 steps = 21 steps, whatever the ratio says; explicit steps still win.
    s = CubicSchedule.from_config(70, 0.8, warmup_epochs=1.5, steps_per_epoch=14, warmup_ratio=0.07, final_ratio=0.3)
    assert (s.warmup_steps, s.final_steps) == (21, 21)
    assert s.keep_ratio(20) == 1.0 and s.keep_ratio(21) == 1.0 and s.keep_ratio(22) < 1.0
    s = CubicSchedule.from_config(70, 0.8, warmup_steps=3, warmup_epochs=1.5, steps_per_epoch=14, final_ratio=0.3)
    assert s.warmup_steps == 3
    with pytest.raises(ValueError, match="steps per epoch"):
        CubicSchedule.from_config(70, 0.8, warmup_epochs=1.0, final_ratio=0.3)
    with pytest.raises(ValueError):  # five epochs of warm-up in a four-epoch run
        CubicSchedule.from_config(56, 0.8, warmup_epochs=5, steps_per_epoch=14, final_ratio=0.3)


@pytest.mark.parametrize("kwargs", [
    dict(total_steps=10, target_sparsity=0.8, warmup_steps=5, final_steps=5),
    dict(total_steps=10, target_sparsity=1.0, warmup_steps=1, final_steps=1),
    dict(total_steps=10, target_sparsity=0.5, warmup_steps=1, final_steps=0),
    dict(total_steps=10, target_sparsity=0.5, warmup_steps=1, final_steps=1, update_interval=0),
])
def test_impossible_schedules_are_refused(kwargs):
    with pytest.raises(ValueError):
        CubicSchedule(**kwargs)
