"""PINSTrainer end to end on a tiny model: target reached exactly, accumulation, bf16, best checkpoint, resume."""

import json
import shutil

import pytest
import torch
from conftest import make_trainer, tiny_bert


def _no_dropout():
    return tiny_bert(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def test_ends_at_target_sparsity_with_exact_zeros_and_logs(tmp_path):
    trainer = make_trainer(tmp_path)
    trainer.train()
    report = trainer.sparsity_report()
    n = trainer.pruner.num_weights
    assert abs(report["overall"] - 0.8) <= 1 / n + 1e-12
    assert set(report["modules"]) == set(trainer.pruner.params)
    for name, p in trainer.pruner.params.items():
        assert torch.equal(p == 0, ~trainer.pruner.masks[name])
    logged = [entry for entry in trainer.state.log_history if "sparsity" in entry]
    assert logged and logged[-1]["sparsity"] == pytest.approx(0.8, abs=1e-3)
    assert any("threshold" in entry for entry in logged)
    assert any("teacher_refresh" in entry for entry in trainer.state.log_history)


def test_warmup_in_epochs_counts_the_trainers_optimizer_steps(tmp_path):
    # 64 examples, batch 8, accumulation 3: 8 batches = 3 optimizer steps per epoch (the last one short), 12 in all.
    trainer = make_trainer(tmp_path, gradient_accumulation_steps=3, dense_warmup_epochs=2, eval_strategy="no",
                           self_regularization=False)
    trainer.train()
    assert trainer.state.max_steps == 12
    assert trainer.pruner.schedule.warmup_steps == 6
    assert trainer.pruner.history[0]["step"] > 6  # no mask before the two dense epochs are over


def test_best_checkpoint_is_chosen_among_evaluations_at_the_target(tmp_path):
    trainer = make_trainer(tmp_path)
    trainer.train()
    at_target = [e for e in trainer.evaluations if e["at_target"]]
    assert at_target and all(e["sparsity"] == pytest.approx(0.8, abs=1e-3) for e in at_target)
    best = max(at_target, key=lambda e: e["dev_metric"])
    assert trainer.best_at_target["step"] == best["step"]
    assert trainer.evaluations[-1]["step"] == trainer.state.max_steps  # the last step is always evaluated
    for key, value in trainer.model.state_dict().items():
        assert torch.equal(value, trainer.best_at_target["weights"][key])


def _scores_after(tmp_path, batch_size, accumulation):
    trainer = make_trainer(
        tmp_path, model=_no_dropout(), per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=accumulation, num_train_epochs=1, eval_strategy="no",
        self_regularization=False, max_grad_norm=0.5, mask_update_interval=100,
        dense_warmup_ratio=0.5, pruning_final_ratio=0.4,
    )
    trainer.train()
    return trainer


def test_one_score_update_per_optimizer_step_on_the_accumulated_clipped_gradient(tmp_path):
    single = _scores_after(tmp_path / "a", 8, 1)
    accumulated = _scores_after(tmp_path / "b", 4, 2)
    assert single.state.max_steps == accumulated.state.max_steps == 8
    assert single.pruner.method.smoothed.windows_closed == accumulated.pruner.method.smoothed.windows_closed
    for name in single.pruner.params:
        torch.testing.assert_close(
            accumulated.pruner.method.smoothed.score(name), single.pruner.method.smoothed.score(name),
            rtol=1e-4, atol=1e-10,
        )


def test_bf16_autocast_keeps_float32_scores_and_reaches_the_target(tmp_path):
    trainer = make_trainer(tmp_path, bf16=True, num_train_epochs=2)
    trainer.train()
    for name in trainer.pruner.params:
        score = trainer.pruner.method.smoothed.score(name)
        assert score.dtype == torch.float32 and torch.isfinite(score).all()
    assert trainer.sparsity_report()["overall"] == pytest.approx(0.8, abs=1e-3)


def test_resume_gives_the_same_final_masks_and_weights(tmp_path):
    # eval_steps 6: the checkpoint at step 16 falls between evaluations, with teacher weights summed since step 12
    settings = dict(save_strategy="steps", save_steps=8, save_total_limit=None, num_train_epochs=4, eval_steps=6)
    full = make_trainer(tmp_path / "full", **settings)
    full.train()
    assert full.state.max_steps == 32

    interrupted = tmp_path / "interrupted"
    interrupted.mkdir()
    shutil.copytree(tmp_path / "full" / "checkpoint-16", interrupted / "checkpoint-16")
    meta = json.loads((interrupted / "checkpoint-16" / "pruning_state.json").read_text())
    assert meta["pruner"]["history"] and "selfreg" in meta

    resumed = make_trainer(interrupted, model=tiny_bert(seed=7), **settings)
    resumed.train(resume_from_checkpoint=str(interrupted / "checkpoint-16"))
    for name in full.pruner.masks:
        assert torch.equal(full.pruner.masks[name], resumed.pruner.masks[name])
    for key, value in full.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[key], value, rtol=0, atol=0)
    assert [r["step"] for r in resumed.selfreg.refreshes] == [r["step"] for r in full.selfreg.refreshes]
    full_weights, resumed_weights = ([e["teacher_weight"] for e in t.evaluations] for t in (full, resumed))
    assert full_weights[0] is None and resumed_weights[0] is None  # nothing distilled before the first teacher
    assert resumed_weights[1:] == pytest.approx(full_weights[1:], rel=1e-5)


def test_regrow_mode_still_ends_at_the_target(tmp_path):
    trainer = make_trainer(tmp_path, mask_mode="regrow", experimental={"importance_update": "sgd"})
    trainer.train()
    assert trainer.sparsity_report()["overall"] == pytest.approx(0.8, abs=1e-3)


def test_config_refuses_impossible_values():
    from hf_pins import PINSConfig

    with pytest.raises(ValueError, match="target_sparsity"):
        PINSConfig(output_dir="x", target_sparsity=1.0)
    with pytest.raises(ValueError, match="self_regularization"):
        PINSConfig(output_dir="x", eval_strategy="no")
    with pytest.raises(ValueError, match="load_best_model_at_end"):
        PINSConfig(output_dir="x", eval_strategy="steps", load_best_model_at_end=True, metric_for_best_model="loss")


@pytest.mark.parametrize("mask_mode, method", [("regrow", "pins"), ("behind_mask", "movement")])
def test_best_checkpoint_comes_back_with_its_own_masks(tmp_path, mask_mode, method):
    """With masks that change at the target (regrow, behind_mask), the final model is the best evaluation's weights
    with that evaluation's masks: exactly the target sparsity and the dev score that chose it."""
    trainer = make_trainer(tmp_path, mask_mode=mask_mode, pruning_method=method, self_regularization=False,
                           num_train_epochs=6, eval_steps=2)
    trainer.train()
    best = trainer.best_at_target
    assert best["step"] < trainer.state.global_step  # the case that matters: an earlier evaluation won
    report = trainer.sparsity_report()
    assert report["overall"] == pytest.approx(round(0.8 * trainer.pruner.num_weights) / trainer.pruner.num_weights)
    assert trainer.evaluate()["eval_accuracy"] == pytest.approx(best["metric"])
