"""Commands that need an optional part of hf_pins say what to install, in one line, when it is missing."""

from __future__ import annotations

import sys

import pytest

from hf_pins.cli import main


@pytest.mark.parametrize("command", ["export", "benchmark"])
def test_a_missing_export_part_is_one_line_naming_the_extra(command, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # as where the export part is not installed
    args = [command, str(tmp_path / "model")] + (["--output", str(tmp_path / "out")] if command == "export" else [])
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: "), err
    assert f"hf-pins {command} needs the export part" in err and "pip install 'hf_pins[export]'" in err
    assert not (tmp_path / "out").exists()
