"""The package metadata in pyproject.toml: which Pythons it installs on, how its dependencies are bounded, where
DeepSparse may come in, and that the lock (constraints.txt) is one point inside the ranges."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the test extra installs tomli
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = REPO / "pyproject.toml"
PROJECT = tomllib.loads(PYPROJECT.read_text())["project"]
DEPENDENCIES = [Requirement(line) for line in PROJECT["dependencies"]]
EXTRAS = {name: [Requirement(line) for line in lines] for name, lines in PROJECT["optional-dependencies"].items()}
# What DeepSparse and the versions it forces (onnx 1.14, hence numpy 1.x, hence pyarrow < 26) may only come with.
DEEPSPARSE_STACK = {"deepsparse"}
PLATFORMS = {
    "linux-x86_64": {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64"},
    "linux-aarch64": {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "aarch64"},
    "macos-arm64": {"sys_platform": "darwin", "platform_system": "Darwin", "platform_machine": "arm64"},
    "windows-amd64": {"sys_platform": "win32", "platform_system": "Windows", "platform_machine": "AMD64"},
}


def environment(python: str, platform: str, extra: str = "") -> dict[str, str]:
    return {**default_environment(), **PLATFORMS[platform], "python_version": python,
            "python_full_version": f"{python}.0", "extra": extra}


def applies(requirement: Requirement, env: dict[str, str]) -> bool:
    return requirement.marker is None or requirement.marker.evaluate(env)


def dependency_lines() -> list[str]:
    """The lines of the `dependencies = [...]` array as written, comments included."""
    text = PYPROJECT.read_text()
    block = re.search(r"^dependencies = \[\n(.*?)^\]", text, flags=re.S | re.M)
    assert block, "pyproject.toml has no multi-line `dependencies = [` array"
    return block.group(1).splitlines()


@pytest.mark.parametrize("python", ["3.10", "3.11", "3.12", "3.13"])
def test_every_supported_python_may_install(python):
    assert SpecifierSet(PROJECT["requires-python"]).contains(f"{python}.0"), PROJECT["requires-python"]
    assert f"Programming Language :: Python :: {python}" in PROJECT["classifiers"]


def test_a_single_version_pin_in_the_core_says_why():
    lines = dependency_lines()
    for requirement in DEPENDENCIES:
        pinned = any(spec.operator in ("==", "===") for spec in requirement.specifier)
        if not pinned:
            continue
        (line,) = [line for line in lines if line.strip().startswith(f'"{requirement.name}')]
        reason = line.split("#", 1)[1].strip() if "#" in line else ""
        assert reason, f"{requirement} is pinned to one version in [project.dependencies] without a reason"


def test_the_core_leaves_transformers_5_and_numpy_2_open():
    """The export and DeepSparse parts cap transformers and numpy; the core must not."""
    names = {canonicalize_name(r.name) for r in DEPENDENCIES}
    assert not names & {"deepsparse", "optimum", "optimum-onnx", "onnx"}, names
    for requirement in DEPENDENCIES:
        if canonicalize_name(requirement.name) == "transformers":
            assert requirement.specifier.contains("5.25.0"), requirement
        if canonicalize_name(requirement.name) == "numpy":
            assert requirement.specifier.contains("2.4.6"), requirement


@pytest.mark.parametrize("python, platform, expected", [
    ("3.10", "linux-x86_64", True), ("3.11", "linux-x86_64", True),
    ("3.12", "linux-x86_64", False), ("3.13", "linux-x86_64", False),
    ("3.11", "linux-aarch64", False), ("3.11", "macos-arm64", False), ("3.11", "windows-amd64", False),
])
def test_deepsparse_only_where_its_wheels_exist(python, platform, expected):
    """DeepSparse 1.8 has wheels for Linux x86-64 and Python <= 3.11; elsewhere neither it nor the old onnx/numpy it
    forces may be requested, by the core or by any extra."""
    for extra, requirements in [("", DEPENDENCIES), *EXTRAS.items()]:
        env = environment(python, platform, extra)
        chosen = {canonicalize_name(r.name) for r in requirements if applies(r, env)}
        if extra == "deepsparse":
            assert ("deepsparse" in chosen) == expected, (python, platform, chosen)
        else:
            assert "deepsparse" not in chosen, (extra, python, platform)
        capped = [r for r in requirements if applies(r, env) and canonicalize_name(r.name) in ("onnx", "numpy")
                  and not r.specifier.contains("2.4.6") and not r.specifier.contains("1.23.0")]
        assert not capped or (extra == "deepsparse" and expected), (extra, python, platform, capped)


def test_the_lock_lies_inside_the_ranges():
    """constraints.txt is the tested point `make install` uses: every version in it satisfies pyproject's ranges."""
    lock = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            requirement = Requirement(line)
            (spec,) = requirement.specifier
            assert spec.operator == "==", line
            lock[canonicalize_name(requirement.name)] = spec.version
    env_requirements = [("", DEPENDENCIES)] + [(extra, EXTRAS[extra]) for extra in ("export", "deepsparse", "test")]
    for extra, requirements in env_requirements:
        env = environment("3.11", "linux-x86_64", extra)
        for requirement in requirements:
            name = canonicalize_name(requirement.name)
            if name == "hf-pins" or not applies(requirement, env):
                continue
            assert name in lock, f"{requirement} is not in constraints.txt"
            assert requirement.specifier.contains(lock[name], prereleases=True), (requirement, lock[name])
