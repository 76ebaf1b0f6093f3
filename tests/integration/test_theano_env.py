"""The seed's own Theano, for real: `dlbench envs create theano` builds a legacy environment from nothing (Theano 1.0.5,
NumPy 1.23.5, SciPy 1.11.4, from PyPI), then Theano's worker runs in it: verified against the float64 reference,
a deliberately wrong variant caught, and measured beside PyTensor in one run whose tables say "Theano 1.0.5".

Slow: pip downloads and installs ~60 MB into a fresh venv, and Theano compiles its C modules on first use (into
dlbench's compile cache, ~/.cache/dlbench/theano, reused by later runs). Timings are printed (pytest -s).
The env is based on a Python 3.9 or 3.10 where one is found (Theano's compiled scan loop, Cython 0.28 output,
builds there), else on this interpreter (scan then loops in Python: settings say so).
"""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dlbench.cli import main
from dlbench.envs import api as envs
from dlbench.runner.environments import Env
from dlbench.runner.interpreters import resolve
from dlbench.runs import api
from dlbench.runs.tables import lstm_table

pytestmark = pytest.mark.slow
HERE = Path(__file__).parent
SIZE = ["--set", "seq_len=5", "--set", "batch=2", "--set", "hidden=8"]
HAS_PYTENSOR = importlib.util.find_spec("pytensor") is not None


def _older_python() -> str | None:
    """A Python 3.9 or 3.10 that runs (a pyenv shim on PATH may exist and refuse), else None."""
    candidates = [f"python3.{minor}" for minor in (9, 10)]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.9*/bin/python")))
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.10*/bin/python")))
    for candidate in candidates:
        try:
            done = subprocess.run([candidate, "-c", "import venv, sys; print(sys.version_info[:2] < (3, 11))"],
                                  capture_output=True, text=True, timeout=30)  # fmt: skip
        except OSError:
            continue
        if done.returncode == 0 and done.stdout.strip() == "True":
            return candidate
    return None


def _timed(label: str, args: list[str]) -> int:
    started = time.monotonic()
    code = main(args)
    print(f"\n`dlbench {' '.join(args)}` ({label}) took {time.monotonic() - started:.1f} s", file=sys.stderr)
    return code


@pytest.fixture(scope="module")
def theano_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    patch = pytest.MonkeyPatch()
    patch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("data")))
    base = _older_python()
    assert _timed("from nothing", ["envs", "create", "theano", *(["--python", base] if base else [])]) == 0
    yield envs.get_env("theano")
    patch.undo()


def test_theano_passes_verification_in_its_env(theano_env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    code = _timed("verify", ["verify", "--backends", "theano", "--env", "theano=theano", "--workloads", "lstm",
                             "--precisions", "fp32,bf16", "--format", "json"])  # fmt: skip
    records = {r["precision"]: r for r in json.loads(capsys.readouterr().out)}
    assert code == 0, records
    fp32 = records["fp32"]
    assert fp32["passed"] and fp32["forward_error"] < 1e-5 and fp32["worst_grad_error"] < 1e-5, fp32
    assert fp32["versions"]["theano"] == "1.0.5" and fp32["versions"]["numpy"] == "1.23.5"
    # Theano has no bfloat16: its own TypeError, recorded as unsupported (not a failed check).
    assert records["bf16"]["status"] == "unsupported"
    assert "Theano 1.0.5: Unsupported dtype for TensorType: bfloat16" in records["bf16"]["error"]


@pytest.mark.parametrize(("corruption", "workload"), [("gate_order", "lstm"), ("padding", "vgg16")])
def test_a_wrong_theano_variant_fails_verification(theano_env: Env, corruption: str, workload: str) -> None:
    """tests/integration/_wrong.py (swapped LSTM gates, VGG padding shifted by a pixel) run by the env's own
    interpreter, as its worker would be."""
    interpreter = resolve(["theano"])[0]["theano"]
    out = subprocess.run([interpreter.python, str(HERE / "_wrong.py"), "theano", corruption, workload],
                         env={**os.environ, **interpreter.worker_env()}, capture_output=True, text=True,
                         timeout=600)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    record = json.loads(out.stdout.strip().splitlines()[-1])
    assert not record["passed"] and record["forward_error"] > 1e-2


def test_theano_1_0_5_and_pytensor_side_by_side(theano_env: Env, tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite"
    backends = "theano,pytensor" if HAS_PYTENSOR else "theano"
    code = _timed("run", ["run", "lstm", *SIZE, "--backends", backends, "--env", "theano=theano", "--precisions",
                          "fp32", "--min-time", "0.05", "--max-time", "0.5", "--store", str(store)])  # fmt: skip
    assert code == 0
    run = api.load_run(store=store)
    statuses = {(r.case.backend, r.case.mode): (r.status, r.error) for r in run.results}
    assert len(statuses) == 2 * len(backends.split(",")), statuses
    assert all(status == "ok" for status, _ in statuses.values()), statuses
    theano = next(r for r in run.results if r.case.backend == "theano" and r.case.mode == "train")
    settings = theano.document["settings"]
    assert settings["linker"] == "cvm" and settings["blas.ldflags"] == ""
    assert {"Scan", "Gemm"} <= set(settings["ops"])
    older = theano_env.python_version.split(".")[:2] in (["3", "9"], ["3", "10"])
    assert settings["scan_loop"] == ("C (scan_perform)" if older else "Python (Scan.execute)")
    assert theano.first_step_s is not None and theano.first_step_s > 0
    table = lstm_table(run)
    assert table is not None
    labels = {row[0] for row in table.rows}
    assert "Theano 1.0.5" in labels
    if HAS_PYTENSOR:
        assert any(label.startswith("Theano (PyTensor ") for label in labels), labels
