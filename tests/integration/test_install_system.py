"""`make run SYSTEM=1` (issue 13): on a GPU node with its own torch and JAX and no network, dlbench installs into a
venv that sees the system's packages, downloads nothing (pip --no-index, no build isolation) and installs no second
framework; a machine that lacks one of dlbench's own dependencies is told so in one line.

Here the "system" is this test run's base interpreter with the test venv's site-packages on PYTHONPATH: every
framework and dependency is already installed there, as on the GPU node."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BASE = getattr(sys, "_base_executable", sys.executable)


def _make(venv: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "-C", str(ROOT), "install", "SYSTEM=1", f"VENV={venv}", f"PYTHON={BASE}"],
                          capture_output=True, text=True, env=env, timeout=300)  # fmt: skip


def test_system_install_uses_the_frameworks_already_there(tmp_path: Path) -> None:
    site = sysconfig.get_paths()["purelib"]  # this venv's: torch, jax, numpy, setuptools, ...
    env = {**os.environ, "PYTHONPATH": site, "PIP_NO_INDEX": "1"}
    venv = tmp_path / "venv"
    done = _make(venv, env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "--no-index --no-build-isolation" in done.stdout
    own = {p.name.split("-")[0].lower() for p in (venv / "lib").glob("python*/site-packages/*")}
    assert not own & {"torch", "jax", "jaxlib", "numpy", "tensorflow", "keras"}, own  # no second framework
    listed = subprocess.run([str(venv / "bin" / "dlbench"), "list"], capture_output=True, text=True, env=env,
                            timeout=300).stdout  # fmt: skip
    assert "torch" in listed


def test_a_missing_dependency_is_named_in_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    probe = subprocess.run([BASE, "-c", "import rich, psutil, wheel"], capture_output=True, env=env)
    if probe.returncode == 0:
        pytest.skip("this machine's base Python has every dependency dlbench needs")
    done = _make(tmp_path / "venv", env)
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if "make SYSTEM=1: this Python lacks" in line]
    assert len(lines) == 1 and "or run make without SYSTEM=1" in lines[0]
