"""A new framework is one folder, its name in the registry's FOLDERS, and its pyproject extra (which a test cannot
install): written here into a copy of dlbench's source, nothing else changed, then used by every command. It
declares no layers and no usability probes, and the probe and usability commands say so, as `unsupported`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import dlbench

PACKAGE = Path(dlbench.__file__).parent
PYPROJECT = PACKAGE.parents[1] / "pyproject.toml"

# backends/tiny/__init__.py: the registry entry.
TINY_ENTRY = '''"""Tiny: a framework for dlbench's own tests, the workloads' NumPy math in fp32."""

from __future__ import annotations

from dlbench.backends.registry import BackendInfo, Framework

FRAMEWORK = Framework(
    name="tiny", label="Tiny", requires=("numpy",), install="pip install numpy",
    backends=(BackendInfo("tiny", "dlbench.backends.tiny.backend:TinyBackend", "Tiny", description="a test's"),),
)
'''
# backends/tiny/backend.py: the backend.
TINY_BACKEND = '''"""The tiny backend: fp32 NumPy."""

from __future__ import annotations

from typing import Any

import numpy as np

from dlbench.backends.base import Backend, Step, Unsupported
from dlbench.workloads import numpy_math


class TinyBackend(Backend):
    name = "tiny"

    def prepare(self, case: Any, workload: Any, weights: Any, inputs: Any) -> Step:
        if case.precision != "fp32":
            raise Unsupported(f"tiny computes in fp32 only, not {case.precision}")
        weights = {k: np.asarray(v, np.float32) for k, v in weights.items()}
        if case.mode == "train":
            return lambda: numpy_math.loss_and_grads(workload.name, weights, inputs)
        return lambda: numpy_math.forward(workload.name, weights, inputs)
'''


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("house")
    package = root / "src" / "dlbench"
    shutil.copytree(PACKAGE, package, ignore=shutil.ignore_patterns("__pycache__"))
    (package / "backends" / "tiny").mkdir()
    (package / "backends" / "tiny" / "__init__.py").write_text(TINY_ENTRY)
    (package / "backends" / "tiny" / "backend.py").write_text(TINY_BACKEND)
    registry = package / "backends" / "__init__.py"
    text = registry.read_text()
    assert text.count('    "keras",\n') == 1
    registry.write_text(text.replace('    "keras",\n', '    "keras",\n    "tiny",\n'))  # the one registry line
    shutil.copy(PYPROJECT, root / "pyproject.toml")  # the layer contracts
    return root


def dlbench_cli(tree: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}  # the copy, before the installed dlbench
    return subprocess.run([sys.executable, "-m", "dlbench.cli", *args], capture_output=True, text=True, env=env,
                          timeout=600)  # fmt: skip


@pytest.mark.slow
def test_every_command_takes_the_new_framework(tree: Path, tmp_path: Path) -> None:
    store = str(tmp_path / "s.sqlite")
    listed = dlbench_cli(tree, "list")
    rows = [[cell.strip() for cell in line.split("│")[1:4]] for line in listed.stdout.splitlines()]
    assert listed.returncode == 0 and ["tiny", "Tiny", "yes"] in rows

    verified = dlbench_cli(tree, "verify", "--backends", "tiny", "--workloads", "lstm,vgg16", "--precisions",
                           "fp32,fp16", "--format", "json")
    assert verified.returncode == 0, verified.stderr
    records = {r["precision"]: r for r in json.loads(verified.stdout)}
    assert records["fp32"]["passed"] and records["fp16"]["status"] == "unsupported"

    size = ["--set", "seq_len=3", "--set", "batch=2", "--set", "hidden=8"]
    ran = dlbench_cli(tree, "run", "lstm", *size, "--backends", "tiny", "--precisions", "fp32", "--min-time", "0.1",
                      "--max-time", "0.2", "--store", store, "--format", "json")  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert [r["status"] for r in json.loads(ran.stdout)["results"]] == ["ok", "ok"]

    probed = dlbench_cli(tree, "probe", "--backends", "tiny", "--layers", "linear", "--precisions", "fp32",
                         "--store", store, "--format", "json")  # fmt: skip
    assert probed.returncode == 0, probed.stderr
    (finding,) = json.loads(probed.stdout)["findings"]
    assert finding["forward"]["verdict"] == "unsupported"
    assert "the tiny backend declares no layers for dlbench probe" in finding["forward"]["message"]

    used = dlbench_cli(tree, "usability", "--backends", "tiny", "--workloads", "lstm", "--parts", "debugging",
                       "--store", store, "--format", "json")  # fmt: skip
    assert used.returncode == 0, used.stderr
    debugging = [d for d in json.loads(used.stdout)["usability"] if d.get("part") == "debugging"]
    assert debugging and debugging[0]["status"] == "unsupported"
    assert "the tiny backend declares no usability probes" in debugging[0]["error"]


@pytest.mark.slow
def test_the_layer_contracts_hold_for_it(tree: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    lint = subprocess.run([str(Path(sys.executable).parent / "lint-imports")], cwd=tree, capture_output=True,
                          text=True, env=env, timeout=300)  # fmt: skip
    assert lint.returncode == 0 and "0 broken" in lint.stdout, lint.stdout[-3000:]
