"""Fault injection: broken user files, a full disk, signals during export, unwritable destinations.

Each fault must end in one `error:` (or `stopped:`) line with its exit code, name the file or flag, and leave the
destination as it was: absent, or holding the previous output, and no partial or staging file. The classes here are
counted in FAULT_CLASSES at the end (the documentation's table comes from `python tests/test_faults.py --count`).
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO

from hf_pins.cli import main

SEQ = 16


# --------------------------------------------------------------------------------------------------------------------
# Helpers


def _refused(capsys, argv, *fragments, code=2) -> str:
    """Run the CLI in-process; one stderr line starting `error:` that holds every fragment, and the exit code."""
    capsys.readouterr()  # what building the fixtures printed is not the command's output
    got = main(argv)
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert got == code, captured.err[-3000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err[-3000:]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return captured.out


def _listing(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (hidden ones too) with its bytes: "as it was" means this is unchanged."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _no_staging_left(parent: Path) -> None:
    left = [p.name for p in parent.iterdir() if ".hf-pins-" in p.name]
    assert not left, left


def _truncate(path: Path, keep: float | int = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: keep if isinstance(keep, int) else int(len(data) * keep)])


@pytest.fixture(scope="module")
def source(tiny_model_dir, tmp_path_factory) -> Path:
    """The conftest tiny BERT with its tokenizer: what `hf-pins train` leaves (weights, config, tokenizer)."""
    folder = tmp_path_factory.mktemp("faults") / "model"
    shutil.copytree(tiny_model_dir, folder)
    return folder


@pytest.fixture(scope="module")
def exported(source, tmp_path_factory) -> Path:
    from hf_pins.export import export_model

    out = tmp_path_factory.mktemp("faults-export") / "onnx"
    export_model(source, out, sequence_length=SEQ, log=lambda _: None)
    return out


def _broken_copy(folder: Path, tmp_path: Path, edit) -> Path:
    copy = tmp_path / f"broken-{folder.name}"
    shutil.copytree(folder, copy)
    edit(copy)
    return copy


# --------------------------------------------------------------------------------------------------------------------
# Broken files handed over by the user: export source


def _drop_vocabulary(d: Path) -> None:
    for name in ("vocab.txt", "tokenizer.json"):
        (d / name).unlink(missing_ok=True)


SOURCE_FAULTS = {
    "truncated model.safetensors": (lambda d: _truncate(d / "model.safetensors"), "model.safetensors"),
    "model.safetensors cut inside its header": (lambda d: _truncate(d / "model.safetensors", 5), "model.safetensors"),
    "empty model.safetensors": (lambda d: _truncate(d / "model.safetensors", 0), "model.safetensors"),
    "truncated config.json": (lambda d: _truncate(d / "config.json"), "config.json"),
    "config.json not UTF-8": (lambda d: (d / "config.json").write_bytes(b"\xff\xfe{"), "config.json"),
    "truncated tokenizer.json": (lambda d: _truncate(d / "tokenizer.json"), "tokenizer.json"),
    "truncated tokenizer_config.json": (lambda d: _truncate(d / "tokenizer_config.json"), "tokenizer_config.json"),
    "no tokenizer vocabulary": (_drop_vocabulary, "no tokenizer vocabulary"),
}


@pytest.mark.parametrize("fault", sorted(SOURCE_FAULTS))
@pytest.mark.export
def test_export_source_faults(fault, source, tmp_path, capsys):
    edit, fragment = SOURCE_FAULTS[fault]
    broken = _broken_copy(source, tmp_path, edit)
    out = tmp_path / "out"
    stdout = _refused(capsys, ["export", str(broken), "--output", str(out), "--sequence-length", str(SEQ)], fragment)
    assert "exporting" not in stdout  # refused before any model loaded
    assert not out.exists()


@pytest.mark.parametrize("fault", ["truncated model.safetensors", "no tokenizer vocabulary"])
@pytest.mark.export
def test_benchmark_of_a_broken_pytorch_folder(fault, source, tmp_path, capsys):
    edit, fragment = SOURCE_FAULTS[fault]
    broken = _broken_copy(source, tmp_path, edit)
    _refused(capsys, ["benchmark", str(broken), "--iterations", "1", "--warmup", "0", "--rounds", "1"], fragment)


# --------------------------------------------------------------------------------------------------------------------
# Broken files handed over by the user: an export read by `benchmark` and `hf_pins.runtime`

EXPORT_FAULTS = {
    "truncated model.onnx": (lambda d: _truncate(d / "model.onnx"), "model.onnx"),
    "model.onnx is not ONNX": (lambda d: (d / "model.onnx").write_text("not a graph"), "model.onnx"),
    "truncated model-static.onnx": (lambda d: (d / "model.onnx").unlink() or _truncate(d / "model-static.onnx"),
                                    "model-static.onnx"),
    "truncated export_report.json": (lambda d: _truncate(d / "export_report.json"), "export_report.json"),
}


@pytest.mark.parametrize("fault", sorted(EXPORT_FAULTS))
@pytest.mark.export
def test_benchmark_of_a_broken_export(fault, exported, tmp_path, capsys):
    edit, fragment = EXPORT_FAULTS[fault]
    broken = _broken_copy(exported, tmp_path, edit)
    _refused(capsys, ["benchmark", str(broken), "--runtime", "onnxruntime", "--iterations", "1", "--warmup", "0",
                      "--rounds", "1"], fragment)


@pytest.mark.parametrize("fault", ["truncated model.onnx", "model.onnx is not ONNX", "truncated export_report.json"])
@pytest.mark.export
def test_runtime_load_of_a_broken_export(fault, exported, tmp_path):
    from hf_pins import runtime
    from hf_pins.errors import UserError

    edit, fragment = EXPORT_FAULTS[fault]
    broken = _broken_copy(exported, tmp_path, edit)
    with pytest.raises(UserError, match=fragment.replace(".", r"\.")):
        runtime.load(broken, runtime="onnxruntime")


# --------------------------------------------------------------------------------------------------------------------
# Broken or incompatible files handed over by the user: `train`'s model, tokenizer and teacher


def _bigger_vocabulary(d: Path) -> None:
    """A tokenizer with more tokens than the model has embedding rows (ids past the table fail at step 0)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(d)
    tokenizer.add_tokens([f"extra{i}" for i in range(50)])  # the same in transformers 4.57 and 5.x
    tokenizer.save_pretrained(d)


def _three_labels(d: Path) -> None:
    from transformers import AutoConfig, BertForSequenceClassification

    config = AutoConfig.from_pretrained(d, num_labels=3)
    BertForSequenceClassification(config).save_pretrained(d)


TRAIN_MODEL_FAULTS = {
    "truncated model.safetensors": (lambda d: _truncate(d / "model.safetensors"), "model.safetensors"),
    "truncated config.json": (lambda d: _truncate(d / "config.json"), "config.json"),
    "truncated tokenizer.json": (lambda d: _truncate(d / "tokenizer.json"), "tokenizer.json"),
    "no tokenizer vocabulary": (_drop_vocabulary, "no tokenizer vocabulary"),
    "classification head for another number of labels": (_three_labels, "predicts 3 labels"),
    "tokenizer larger than the embeddings": (_bigger_vocabulary, "embeddings have"),
}


@pytest.mark.parametrize("fault", sorted(TRAIN_MODEL_FAULTS))
def test_train_model_faults(fault, tiny_recipe, tiny_model_dir, tmp_path, capsys):
    import transformers

    if fault == "tokenizer larger than the embeddings" and int(transformers.__version__.split(".")[0]) >= 5:
        pytest.skip("under transformers 5 the enlarged tokenizer saved this way does not load larger; not yet "
                    "understood (the check itself is tested under the locked transformers 4.57)")
    edit, fragment = TRAIN_MODEL_FAULTS[fault]
    broken = _broken_copy(tiny_model_dir, tmp_path, edit)
    out = tmp_path / "out"
    _refused(capsys, ["train", str(tiny_recipe), "--output-dir", str(out), "--set", f"model.name_or_path={broken}"],
             "model.name_or_path", fragment)
    assert not out.exists()


def _tokenizer_only(tiny_model_dir: Path, folder: Path) -> Path:
    folder.mkdir()
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (tiny_model_dir / name).is_file():  # transformers 5 writes no special_tokens_map.json
            shutil.copy2(tiny_model_dir / name, folder / name)
    return folder


def test_train_broken_tokenizer_folder_is_blamed_on_model_tokenizer(tiny_recipe, tiny_model_dir, tmp_path, capsys):
    from hf_pins.data.tasks import get_task
    from hf_pins.modeling import check_model_source

    tokenizer = _tokenizer_only(tiny_model_dir, tmp_path / "tokenizer")
    check_model_source({"name_or_path": str(tiny_model_dir), "tokenizer": str(tokenizer)}, get_task("rte"))
    _truncate(tokenizer / "tokenizer.json")
    out = tmp_path / "out"
    _refused(capsys, ["train", str(tiny_recipe), "--output-dir", str(out), "--set", f"model.tokenizer={tokenizer}"],
             "model.tokenizer", "tokenizer.json")
    assert not out.exists()


def test_train_teacher_with_truncated_weights(tiny_recipe, tiny_model_dir, tmp_path, capsys):
    broken = _broken_copy(tiny_model_dir, tmp_path, lambda d: _truncate(d / "model.safetensors"))
    out = tmp_path / "out"
    _refused(capsys, ["train", str(tiny_recipe), "--output-dir", str(out),
                      "--set", f"pruning.self_regularization_teacher={broken}"],
             "pruning.self_regularization_teacher", "model.safetensors")
    assert not out.exists()


# --------------------------------------------------------------------------------------------------------------------
# Flags that name something impossible


@pytest.mark.parametrize("opset", ["9", "99"])
@pytest.mark.export
def test_unsupported_opset(opset, source, tmp_path, capsys):
    out = tmp_path / "out"
    stdout = _refused(capsys, ["export", str(source), "--output", str(out), "--sequence-length", str(SEQ), "--opset",
                               opset], f"--opset {opset}")
    assert stdout == ""  # no graph dump, no progress: refused before the exporter ran
    assert not out.exists()


@pytest.mark.export
def test_benchmark_sequence_longer_than_the_model(source, exported, capsys):
    for folder in (source, exported):
        _refused(capsys, ["benchmark", str(folder), "--sequence-length", "4096", "--iterations", "1"],
                 "--sequence-length 4096", "max_position_embeddings")


@pytest.mark.export
def test_export_names_its_own_glue_flag(source, tmp_path, capsys):
    _refused(capsys, ["export", str(source), "--output", str(tmp_path / "out"), "--sequence-length", str(SEQ),
                      "--int8", "--calibration-task", "rte", "--glue-dir", str(tmp_path / "no-glue")], "--glue-dir")


@pytest.mark.parametrize("argv", [
    ["train", "recipe.yaml", "--resume", "--overwrite"],
    ["export", "model"],
    ["benchmark", "model", "--seconds", "1", "--iterations", "2"],
    ["push", "model"],
    ["no-such-command"],
])
def test_command_line_mistakes_are_one_line(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: "), err


# --------------------------------------------------------------------------------------------------------------------
# Unwritable destinations: refused before any heavy work (root ignores permission bits, so a file stands in the way)


@pytest.fixture
def blocked(tmp_path) -> Path:
    """A path under a regular file: no user, root included, can create it."""
    (tmp_path / "a-file").write_text("in the way\n")
    return tmp_path / "a-file" / "out"


@pytest.mark.export
def test_export_into_an_unwritable_output(source, blocked, capsys):
    stdout = _refused(capsys, ["export", str(source), "--output", str(blocked), "--sequence-length", str(SEQ)],
                      "--output", "a-file")
    assert "exporting" not in stdout


@pytest.mark.export
def test_benchmark_json_into_an_unwritable_path(exported, blocked, capsys):
    stdout = _refused(capsys, ["benchmark", str(exported), "--runtime", "onnxruntime", "--iterations", "1",
                               "--warmup", "0", "--json", str(blocked / "bench.json")], "--json", "a-file")
    assert "machine:" not in stdout  # refused before measuring


@pytest.mark.export
def test_benchmark_json_that_is_a_folder(exported, tmp_path, capsys):
    stdout = _refused(capsys, ["benchmark", str(exported), "--runtime", "onnxruntime", "--iterations", "1",
                               "--warmup", "0", "--json", str(tmp_path)], "--json", "is a folder")
    assert "machine:" not in stdout


def test_push_dry_run_into_an_unwritable_folder(tiny_trained, blocked, capsys):
    _refused(capsys, ["push", str(tiny_trained), "--repo-id", "someone/model", "--dry-run", str(blocked)],
             "--dry-run", "a-file")


@pytest.fixture(scope="module")
def tiny_trained(tmp_path_factory, tiny_model_dir) -> Path:
    """A folder as `hf-pins train` leaves it, for `push`; trained by the real command on the demo data."""
    import yaml

    folder = tmp_path_factory.mktemp("trained")
    recipe = folder / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({
        "model": {"name_or_path": str(tiny_model_dir)}, "task": "rte",
        "data": {"glue_dir": "pkg:hf_pins/demo_data", "max_length": 32, "max_train_samples": 16,
                 "max_eval_samples": 8},
        "pruning": {"method": "magnitude", "target_sparsity": 0.5, "mask_update_interval": 1},
        "training": {"num_train_epochs": 1, "per_device_train_batch_size": 8, "learning_rate": 1e-3,
                     "eval_steps": 2, "save_steps": 2, "logging_steps": 1, "use_cpu": True, "disable_tqdm": True,
                     "seed": 1}}))
    assert main(["train", str(recipe), "--output-dir", str(folder / "model")]) == 0
    return folder / "model"


def _can_mount() -> str | None:
    """None when this process may mount a tmpfs (root in a container that allows it), else why not."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        return "mounting a small file system needs root"
    probe = Path("/tmp") / f"hf-pins-mount-probe-{os.getpid()}"
    probe.mkdir(exist_ok=True)
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)], capture_output=True)
        if done.returncode != 0:
            return f"mount refused: {done.stderr.decode().strip()}"
        subprocess.run(["umount", str(probe)], check=True)
        return None
    finally:
        probe.rmdir()


MOUNT_REFUSED = _can_mount()
needs_mount = pytest.mark.skipif(MOUNT_REFUSED is not None, reason=f"{MOUNT_REFUSED}; the ENOSPC tests that patch "
                                 "io.py's write still run")


@pytest.fixture
def small_disk(tmp_path):
    """Mount tmpfs file systems of a given size (bytes) under tmp_path; unmounted afterwards."""
    mounts = []

    def make(size: int, name: str = "disk") -> Path:
        point = tmp_path / name
        point.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)], check=True)
        mounts.append(point)
        return point

    yield make
    for point in mounts:
        subprocess.run(["umount", str(point)], check=False)


@needs_mount
@pytest.mark.export
def test_export_into_a_read_only_mount(source, small_disk, capsys):
    disk = small_disk(1 << 20)
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    stdout = _refused(capsys, ["export", str(source), "--output", str(disk / "out"), "--sequence-length", str(SEQ)],
                      "--output", "read-only")
    assert "exporting" not in stdout


# --------------------------------------------------------------------------------------------------------------------
# A full disk


def _export_size(exported: Path) -> int:
    return sum(p.stat().st_size for p in exported.iterdir())


@needs_mount
@pytest.mark.export
def test_export_onto_a_full_disk_leaves_nothing(source, exported, small_disk, capsys):
    disk = small_disk(_export_size(exported) // 2)  # room for half an export
    out = disk / "onnx"
    _refused(capsys, ["export", str(source), "--output", str(out), "--sequence-length", str(SEQ)],
             "--output", "no space left")
    assert _listing(disk) == {}
    _no_staging_left(disk)


@needs_mount
@pytest.mark.export
def test_export_overwrite_on_a_full_disk_keeps_the_previous_export(source, exported, small_disk, capsys):
    disk = small_disk(_export_size(exported) * 3 // 2)  # the old export fits, old and new together do not
    out = disk / "onnx"
    shutil.copytree(exported, out)
    before = _listing(out)
    _refused(capsys, ["export", str(source), "--output", str(out), "--sequence-length", str(SEQ), "--overwrite"],
             "no space left")
    assert _listing(out) == before
    _no_staging_left(disk)


@needs_mount
@pytest.mark.export
def test_benchmark_json_onto_a_full_disk_keeps_the_previous_file(exported, small_disk, capsys):
    disk = small_disk(64 << 10)
    previous = disk / "bench.json"
    previous.write_text('{"previous": true}\n')
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
    try:  # fill the disk to the last block
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    _refused(capsys, ["benchmark", str(exported), "--runtime", "onnxruntime", "--iterations", "1", "--warmup", "0",
                      "--rounds", "1", "--json", str(previous)], "--json", "no space left")
    assert previous.read_text() == '{"previous": true}\n'
    _no_staging_left(disk)


@needs_mount
def test_push_dry_run_onto_a_full_disk_leaves_nothing(tiny_trained, small_disk, capsys):
    disk = small_disk(128 << 10)
    out = disk / "upload"
    _refused(capsys, ["push", str(tiny_trained), "--repo-id", "someone/model", "--dry-run", str(out)],
             "--dry-run", "no space left")
    assert _listing(disk) == {}
    _no_staging_left(disk)


def _enospc_after(monkeypatch, budget: int) -> None:
    """os.write as the helpers in hf_pins.io see it: it writes `budget` bytes, then the disk is full."""
    from hf_pins import io

    real = os.write
    left = {"bytes": budget}

    def write(fd, data):
        if left["bytes"] <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = real(fd, bytes(data[: left["bytes"]]))
        left["bytes"] -= n
        return n

    monkeypatch.setattr(io.os, "write", write)


def test_atomic_write_on_a_full_disk_keeps_the_previous_file(tmp_path, monkeypatch):
    from hf_pins import io
    from hf_pins.errors import OutputError

    target = tmp_path / "report.json"
    target.write_text('{"old": 1}\n')
    _enospc_after(monkeypatch, 10)
    with pytest.raises(OutputError, match="no space left"):
        io.write_json(target, {"new": list(range(1000))})
    assert target.read_text() == '{"old": 1}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


@pytest.mark.export
def test_benchmark_json_on_a_full_disk_via_patched_write(exported, tmp_path, monkeypatch, capsys):
    target = tmp_path / "bench.json"
    target.write_text('{"previous": true}\n')
    _enospc_after(monkeypatch, 100)
    _refused(capsys, ["benchmark", str(exported), "--runtime", "onnxruntime", "--iterations", "1", "--warmup", "0",
                      "--rounds", "1", "--json", str(target)], "--json", "no space left")
    assert target.read_text() == '{"previous": true}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["bench.json"]


def test_staged_folder_that_fails_leaves_the_previous_one(tmp_path):
    from hf_pins import io

    final = tmp_path / "out"
    final.mkdir()
    (final / "old.txt").write_text("old")
    with pytest.raises(OSError):
        with io.staged_dir(final) as staging:
            (staging / "new.txt").write_text("half")
            raise OSError(errno.EIO, "the disk went away")
    assert _listing(final) == {"old.txt": b"old"}
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    with io.staged_dir(final) as staging:
        (staging / "new.txt").write_text("whole")
    assert _listing(final) == {"new.txt": b"whole"}
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_staged_outputs_get_the_usual_permissions(tmp_path):
    """Staging places are private while built (mkdtemp, mkstemp); what lands in place is as mkdir/open make it."""
    from hf_pins import io

    mask = os.umask(0o022)
    try:
        with io.staged_dir(tmp_path / "out"):
            pass
        io.write_text(tmp_path / "new.txt", "x")
    finally:
        os.umask(mask)
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "new.txt").stat().st_mode & 0o777 == 0o644


# --------------------------------------------------------------------------------------------------------------------
# Signals during export


def _export_process(source: Path, out: Path, *extra) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    argv = [sys.executable, "-m", "hf_pins.cli", "export", str(source), "--output", str(out), "--sequence-length",
            str(SEQ), "--int8", *extra]
    return subprocess.Popen(argv, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _signal_once_exporting(process: subprocess.Popen, parent: Path, sig: int) -> str:
    """Wait until the exporter has written model.onnx into its staging folder under `parent`, then send `sig`;
    return stderr."""
    deadline = time.time() + 300
    while not any(parent.glob(".*.hf-pins-staging-*/model.onnx")):
        assert process.poll() is None, process.stderr.read()[-3000:]
        assert time.time() < deadline
        time.sleep(0.01)
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=120)
    return stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.export
def test_signal_during_export_stops_cleanly(sig, source, tmp_path):
    out = tmp_path / "onnx"
    process = _export_process(source, out)
    stderr = _signal_once_exporting(process, tmp_path, sig)
    assert process.returncode == 128 + sig, stderr[-3000:]
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"stopped: {signal.Signals(sig).name} during export"), stderr
    assert not out.exists()
    _no_staging_left(tmp_path)
    rerun = _export_process(source, out)  # nothing blocks the next run
    assert rerun.wait(timeout=300) == 0, rerun.stderr.read()[-3000:]


@pytest.mark.export
def test_sigterm_during_overwrite_keeps_the_previous_export(source, exported, tmp_path):
    out = tmp_path / "onnx"
    shutil.copytree(exported, out)
    before = _listing(out)
    process = _export_process(source, out, "--overwrite")
    stderr = _signal_once_exporting(process, tmp_path, signal.SIGTERM)
    assert process.returncode == 128 + signal.SIGTERM, stderr[-3000:]
    assert _listing(out) == before
    _no_staging_left(tmp_path)


# --------------------------------------------------------------------------------------------------------------------
# The count the documentation quotes: `python tests/test_faults.py` prints it from pytest's own collection

FAULT_CLASSES = {
    "test_export_source_faults": "broken model folder given to export (weights, config, tokenizer)",
    "test_benchmark_of_a_broken_pytorch_folder": "broken model folder given to export (weights, config, tokenizer)",
    "test_benchmark_of_a_broken_export": "broken export given to benchmark or hf_pins.runtime (ONNX, report)",
    "test_runtime_load_of_a_broken_export": "broken export given to benchmark or hf_pins.runtime (ONNX, report)",
    "test_train_model_faults": "broken or incompatible model, tokenizer or teacher given to train",
    "test_train_broken_tokenizer_folder_is_blamed_on_model_tokenizer": "broken or incompatible model, tokenizer or "
                                                                        "teacher given to train",
    "test_train_teacher_with_truncated_weights": "broken or incompatible model, tokenizer or teacher given to train",
    "test_unsupported_opset": "impossible flag (opset, sequence length, GLUE folder, argparse)",
    "test_benchmark_sequence_longer_than_the_model": "impossible flag (opset, sequence length, GLUE folder, argparse)",
    "test_export_names_its_own_glue_flag": "impossible flag (opset, sequence length, GLUE folder, argparse)",
    "test_command_line_mistakes_are_one_line": "impossible flag (opset, sequence length, GLUE folder, argparse)",
    "test_export_into_an_unwritable_output": "unwritable destination (export, benchmark --json, push --dry-run)",
    "test_benchmark_json_into_an_unwritable_path": "unwritable destination (export, benchmark --json, push --dry-run)",
    "test_benchmark_json_that_is_a_folder": "unwritable destination (export, benchmark --json, push --dry-run)",
    "test_push_dry_run_into_an_unwritable_folder": "unwritable destination (export, benchmark --json, push --dry-run)",
    "test_export_into_a_read_only_mount": "unwritable destination (export, benchmark --json, push --dry-run)",
    "test_export_onto_a_full_disk_leaves_nothing": "full disk (a small tmpfs, or a write that raises ENOSPC)",
    "test_export_overwrite_on_a_full_disk_keeps_the_previous_export": "full disk (a small tmpfs, or a write that "
                                                                      "raises ENOSPC)",
    "test_benchmark_json_onto_a_full_disk_keeps_the_previous_file": "full disk (a small tmpfs, or a write that "
                                                                    "raises ENOSPC)",
    "test_push_dry_run_onto_a_full_disk_leaves_nothing": "full disk (a small tmpfs, or a write that raises ENOSPC)",
    "test_atomic_write_on_a_full_disk_keeps_the_previous_file": "full disk (a small tmpfs, or a write that raises "
                                                                "ENOSPC)",
    "test_benchmark_json_on_a_full_disk_via_patched_write": "full disk (a small tmpfs, or a write that raises ENOSPC)",
    "test_staged_folder_that_fails_leaves_the_previous_one": "full disk (a small tmpfs, or a write that raises "
                                                             "ENOSPC)",
    "test_signal_during_export_stops_cleanly": "signal during export (SIGTERM, SIGINT)",
    "test_sigterm_during_overwrite_keeps_the_previous_export": "signal during export (SIGTERM, SIGINT)",
}


NOT_FAULTS = {"test_every_case_is_counted", "test_staged_outputs_get_the_usual_permissions"}


def test_every_case_is_counted():
    tests = {name for name in globals() if name.startswith("test_")}
    assert tests - NOT_FAULTS == set(FAULT_CLASSES)


if __name__ == "__main__":
    from collections import Counter

    class _Collect:
        items: list = []

        def pytest_collection_modifyitems(self, items):
            self.items = list(items)

    collector = _Collect()
    pytest.main(["--collect-only", "-q", "-p", "no:warnings", __file__], plugins=[collector])
    counts = Counter(FAULT_CLASSES[item.originalname] for item in collector.items if item.originalname in FAULT_CLASSES)
    print("\n| class of bad input or fault | cases |\n| --- | --- |")
    for name, count in counts.items():
        print(f"| {name} | {count} |")
    print(f"| total | {sum(counts.values())} |")
