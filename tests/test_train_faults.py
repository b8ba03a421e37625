"""`hf-pins train` against faults of its output folder: resuming under another recipe, a corrupt checkpoint,
`--overwrite` over a finished run, an unwritable folder, a full disk while checkpointing."""

import errno
import json
import shutil

import pytest
from test_cli_train import run_cli

from hf_pins.errors import OutputError
from hf_pins.recipe import load_recipe
from hf_pins.training import run_training

SAVE_EVERY_4 = ["--set", "training.save_steps=4"]


def _listing(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture
def finished_run(tmp_path, tiny_recipe, capsys):
    out = tmp_path / "model"
    code, _, stderr = run_cli(capsys, "train", str(tiny_recipe), "--output-dir", str(out), *SAVE_EVERY_4)
    assert code == 0, stderr
    return out


def test_resume_continues_from_the_checkpoint_not_from_scratch(finished_run, tiny_recipe):
    from transformers import TrainerCallback

    class Steps(TrainerCallback):
        def __init__(self):
            self.steps = []

        def on_optimizer_step(self, args, state, control, **kwargs):
            self.steps.append(state.global_step)

    shutil.rmtree(finished_run / "checkpoint-16")  # the newest left is checkpoint-12 (save_total_limit 2)
    steps = Steps()
    recipe = load_recipe(tiny_recipe, overrides=["training.save_steps=4"])
    result = run_training(recipe, output_dir=str(finished_run), resume=True, callbacks=[steps])
    assert steps.steps == [12, 13, 14, 15]  # only the last four of the sixteen steps ran again
    assert result.report["overall"] == pytest.approx(0.8, abs=1e-3)


def test_resume_under_a_changed_recipe_is_refused_unless_allowed(finished_run, tiny_recipe, capsys):
    before = _listing(finished_run)
    code, _, stderr = run_cli(capsys, "train", str(tiny_recipe), "--output-dir", str(finished_run), *SAVE_EVERY_4,
                              "--set", "pruning.target_sparsity=0.5", "--resume")
    assert code == 2 and len(stderr.strip().splitlines()) == 1
    assert "pruning.target_sparsity was 0.8 in the run being resumed, is 0.5 now" in stderr
    assert _listing(finished_run) == before
    code, _, stderr = run_cli(capsys, "train", str(tiny_recipe), "--output-dir", str(finished_run), *SAVE_EVERY_4,
                              "--set", "training.logging_steps=2", "--resume")
    assert code == 0, stderr  # logging does not shape the model
    code, _, stderr = run_cli(capsys, "train", str(tiny_recipe), "--output-dir", str(finished_run), *SAVE_EVERY_4,
                              "--set", "training.learning_rate=0.01", "--resume", "--allow-changes")
    assert code == 0, stderr


def test_overwrite_removes_the_replaced_runs_checkpoints(finished_run, tiny_recipe, capsys):
    assert list(finished_run.glob("checkpoint-*"))
    code, _, stderr = run_cli(capsys, "train", str(tiny_recipe), "--output-dir", str(finished_run), "--overwrite",
                              "--set", "training.save_strategy=no")
    assert code == 0, stderr
    assert not list(finished_run.glob("checkpoint-*"))  # nothing of the old run left to resume by mistake
    code, _, stderr = run_cli(capsys, "train", str(tiny_recipe), "--output-dir", str(finished_run), "--resume",
                              "--set", "training.save_strategy=no")
    assert code == 2 and "no checkpoint-* folder" in stderr


CHECKPOINT_FAULTS = {
    "truncated optimizer": (lambda c: (c / "optimizer.pt").write_bytes((c / "optimizer.pt").read_bytes()[:100]),
                            "optimizer.pt is truncated"),
    "missing trainer state": (lambda c: (c / "trainer_state.json").unlink(), "trainer_state.json is missing"),
    "truncated weights": (lambda c: (c / "model.safetensors").write_bytes((c / "model.safetensors").read_bytes()[:64]),
                          "model.safetensors"),
    "truncated pruning state": (lambda c: (c / "pruning_state.safetensors").write_bytes(b"\x00" * 10),
                                "pruning_state.safetensors"),
    "broken pruning meta": (lambda c: (c / "pruning_state.json").write_text("{not json"), "pruning_state.json"),
    "missing scheduler": (lambda c: (c / "scheduler.pt").unlink(), "scheduler.pt is missing"),
    "no weights": (lambda c: (c / "model.safetensors").unlink(), "holds no model weights"),
}


@pytest.mark.parametrize("fault", sorted(CHECKPOINT_FAULTS))
def test_corrupt_checkpoint_on_resume_is_one_line(finished_run, tiny_recipe, capsys, fault):
    damage, fragment = CHECKPOINT_FAULTS[fault]
    damage(finished_run / "checkpoint-16")
    before = _listing(finished_run)
    code, _, stderr = run_cli(capsys, "train", str(tiny_recipe), "--output-dir", str(finished_run), *SAVE_EVERY_4,
                              "--resume")
    assert code == 2 and len(stderr.strip().splitlines()) == 1 and fragment in stderr, stderr
    assert "checkpoint-16" in stderr and _listing(finished_run) == before


def test_output_dir_under_a_file_is_refused_before_any_work(tmp_path, tiny_recipe, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    code, _, stderr = run_cli(capsys, "train", str(tiny_recipe), "--output-dir", str(blocker / "model"))
    assert code == 2 and "a-file is a file" in stderr and blocker.read_text() == "x"


def test_full_disk_while_checkpointing_is_one_line_and_leaves_no_partial_checkpoint(tmp_path, tiny_recipe,
                                                                                   monkeypatch):
    import hf_pins.trainer

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(hf_pins.trainer, "save_file", full)
    out = tmp_path / "model"
    with pytest.raises(OutputError, match="no space left on the device"):
        run_training(load_recipe(tiny_recipe), output_dir=str(out))
    assert not list(out.glob("checkpoint-*")) and not (out / ".checkpoint-staging").exists()
    assert not (out / "pruning_report.json").exists()


def test_full_disk_while_writing_the_report_keeps_no_partial_file(tmp_path, tiny_recipe, monkeypatch):
    import hf_pins.io

    real = hf_pins.io.write_bytes

    def full_for_the_report(path, data, flag=""):
        if str(path).endswith("pruning_report.json"):
            raise hf_pins.io.output_error(OSError(errno.ENOSPC, "No space"), path, flag)
        return real(path, data, flag)

    monkeypatch.setattr(hf_pins.io, "write_bytes", full_for_the_report)
    out = tmp_path / "model"
    with pytest.raises(OutputError, match="no space left"):
        run_training(load_recipe(tiny_recipe), output_dir=str(out))
    assert not (out / "pruning_report.json").exists()
    assert json.loads((out / "training_log.json").read_text())  # what was written before is whole
