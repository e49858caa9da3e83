"""The package: a wheel builds from pyproject.toml, holds every module of builder/, and its
console script `resnext-builder` runs where the checkout is not on the path."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import builder

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = None

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The wheel, built from a copy of what pyproject.toml names (setuptools builds in the
    source tree), without build isolation (the venv's setuptools: nothing is downloaded), then
    installed without dependencies into a folder of its own."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    shutil.copytree(ROOT / "builder", source / "builder",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp / "dist"), str(source)], check=True, timeout=300,
                   cwd=tmp)
    wheels = list((tmp / "dist").glob("resnext_block_builder-*.whl"))
    assert [w.name for w in wheels] == [
        f"resnext_block_builder-{builder.__version__}-py3-none-any.whl"]
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(tmp / "site"), str(wheels[0])], check=True, timeout=300, cwd=tmp)
    return tmp / "site"


def test_the_wheel_holds_every_module_of_builder(installed):
    ours = {p.relative_to(ROOT).as_posix() for p in (ROOT / "builder").rglob("*.py")}
    theirs = {p.relative_to(installed).as_posix() for p in (installed / "builder").rglob("*.py")}
    assert theirs == ours
    assert (installed / "builder" / "py.typed").exists()
    assert not (installed / "ui").exists() and not (installed / "assets").exists()


def test_the_console_script_runs_from_the_wheel(installed, tmp_path):
    script = installed / "bin" / "resnext-builder"
    env = {**os.environ, "PYTHONPATH": str(installed)}
    out = subprocess.run([str(script), "info", "--preset", "resnext50_32x4d", "--json"],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert (data["name"], data["params"], data["macs"]) == (
        "ResNeXt-50 (32x4d)", 25_028_904, 4_230_549_096)
    # the wheel's own copy ran, not the checkout's
    where = subprocess.run([sys.executable, "-c", "import builder; print(builder.__file__)"],
                           capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert where.stdout.strip() == str(installed / "builder" / "__init__.py")


def test_version_everywhere():
    out = subprocess.run([sys.executable, "-m", "builder", "--version"], capture_output=True,
                         text=True, timeout=120, cwd=ROOT)
    assert out.stdout.strip() == f"python -m builder {builder.__version__}"
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert re.search(rf"^## {re.escape(builder.__version__)}\b", changelog, re.M)
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("BSD 3-Clause License")


def _names(requirements: list[str]) -> dict[str, str]:
    pairs = {}
    for line in requirements:
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            name = re.match(r"[A-Za-z0-9_.\-]+", line).group(0).lower().replace("_", "-")
            pairs[name] = line.replace(" ", "").lower().replace("_", "-")
    return pairs


@pytest.mark.skipif(tomllib is None, reason="tomllib needs Python 3.11; this is 3.10")
def test_pyproject_and_the_requirements_files_agree():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    declared = _names(project["dependencies"] + extras["app"] + extras["onnx"])
    runtime = _names((ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines())
    assert declared == runtime
    dev = _names((ROOT / "requirements-dev.txt").read_text(encoding="utf-8").splitlines())
    assert _names(extras["dev"]) == dev
