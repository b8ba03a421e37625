"""benchmarks/score_agreement.py: shadow criteria scored beside a pruning run choose what the driver would choose when
they are the driver's own criterion, and differently when they are not."""

import sys

import pytest
from conftest import REPO, make_trainer

sys.path.insert(0, str(REPO / "benchmarks"))
from score_agreement import SHADOWS, agreement_callback  # noqa: E402


@pytest.mark.parametrize("method", ["pins", "platon"])
def test_shadow_of_the_driving_criterion_agrees_on_every_weight(tmp_path, method):
    callback = agreement_callback(list(SHADOWS))
    trainer = make_trainer(tmp_path, pruning_method=method, self_regularization=False, callbacks=[callback])
    trainer.train()
    updates = callback.updates
    assert [u["step"] for u in updates] == [h["step"] for h in trainer.pruner.history]
    assert sum(u["pruned_now"] for u in updates) == round(0.8 * trainer.pruner.num_weights)
    own = "pins" if method == "pins" else "platon"
    assert all(u["same_choice"][own] == 1.0 for u in updates)
    assert all(0.0 <= v <= 1.0 for u in updates for v in u["same_choice"].values())
    # Magnitude is a different criterion: at this learning rate (1e-3) it disagrees somewhere.
    assert min(u["same_choice"]["magnitude"] for u in updates) < 1.0
    summary = callback.summary()
    assert summary[own] == {"same_choice": 1.0, "lowest_in_one_update": 1.0}
    assert set(summary) == set(SHADOWS)
