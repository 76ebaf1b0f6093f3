"""A real managed environment with a legacy NumPy (1.23.5): `dlbench envs create` builds it with pip, then the numpy
backend's worker runs in it (verify + one measured case) beside the same backend in dlbench's own environment,
and the run's tables, fingerprint and comparison keep the two versions apart.

Slow: pip installs NumPy into a fresh venv (how long it took is printed; run pytest with -s to see it).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from dlbench.cli import main
from dlbench.envs import api as envs
from dlbench.runner.interpreters import interpreter_packages
from dlbench.runs import api
from dlbench.runs.tables import lstm_table

pytestmark = pytest.mark.slow
LEGACY_NUMPY = "1.23.5"
OLDEST_PYTHON = envs.find_python("3.9")
SIZE = ["--set", "seq_len=3", "--set", "batch=2", "--set", "hidden=8"]


@pytest.fixture(scope="module")
def legacy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    data = tmp_path_factory.mktemp("data")
    patch = pytest.MonkeyPatch()
    patch.setenv("XDG_DATA_HOME", str(data))
    started = time.monotonic()
    # On the oldest Python the worker side supports, where one is installed (pyenv's 3.9 on dlbench's CI machine).
    base = ["--python", OLDEST_PYTHON] if OLDEST_PYTHON else []
    code = main(["envs", "create", "legacy", "--requirements", f"numpy=={LEGACY_NUMPY}", *base])
    print(f"\n`dlbench envs create legacy --requirements numpy=={LEGACY_NUMPY} {' '.join(base)}` took "
          f"{time.monotonic() - started:.1f} s", file=sys.stderr)  # fmt: skip
    assert code == 0
    yield data
    patch.undo()


def test_env_holds_the_legacy_numpy(legacy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = envs.get_env("legacy")
    assert interpreter_packages(str(env.python))["numpy"] == LEGACY_NUMPY
    if OLDEST_PYTHON:  # the worker side then really runs on Python 3.9 in the tests below
        assert env.python_version.startswith("3.9."), env
    assert main(["envs", "list"]) == 0
    assert f"numpy {LEGACY_NUMPY}" in capsys.readouterr().out


@pytest.mark.parametrize("how", ["--env", "--python"])
def test_verify_in_the_env(how: str, legacy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    choice = "numpy=legacy" if how == "--env" else f"numpy={envs.get_env('legacy').python}"
    code = main(["verify", "--backends", "numpy", how, choice, "--workloads", "lstm", "--precisions", "fp32",
                 "--format", "json"])  # fmt: skip
    records = json.loads(capsys.readouterr().out)
    assert code == 0 and len(records) == 1 and records[0]["passed"], records
    assert records[0]["versions"] == {"numpy": LEGACY_NUMPY}  # reported by the worker itself, from that NumPy


def test_one_backend_at_two_versions_in_one_run(legacy: Path, tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite"
    assert main(["run", "lstm", *SIZE, "--backends", "numpy,numpy@legacy", "--precisions", "fp32", "--modes",
                 "forward", "--min-time", "0.05", "--max-time", "0.5", "--store", str(store)]) == 0  # fmt: skip
    run = api.load_run(store=store)
    versions = {r.case.backend_spec: (r.status, r.document["versions"]["numpy"]) for r in run.results}
    assert versions == {"numpy": ("ok", np.__version__), "numpy@legacy": ("ok", LEGACY_NUMPY)}
    legacy_env = run.fingerprint["environments"]["numpy@legacy"]
    assert legacy_env["packages"]["numpy"] == LEGACY_NUMPY and legacy_env["python"].endswith("legacy/bin/python")
    table = lstm_table(run)
    assert table is not None
    assert sorted(row[0] for row in table.rows) == sorted([f"NumPy {np.__version__}", f"NumPy {LEGACY_NUMPY} [legacy]"])
