"""`dlbench verify` proves agreement for every installed backend, and really fails a wrong implementation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dlbench.backends import BACKENDS
from dlbench.runner.environments import find_env
from dlbench.runner.interpreters import resolve

HERE = Path(__file__).parent
AVAILABLE = [name for name, info in BACKENDS.items() if info.available()[0]]
# Backends that live in a managed env of their name (theano, aesara: `dlbench envs create NAME`), where one exists.
IN_ENVS = [name for name, info in BACKENDS.items() if info.needs_env and name not in AVAILABLE and find_env(name)]
CORRUPTIONS = [("gate_order", "lstm"), ("padding", "vgg16"), ("branch_order", "googlenet"), ("no_residual", "resnet50"),
               ("no_residual", "transformer")]
# The layer stacks' wrong variants in CI: the backends that build a CNN in seconds (PyTensor compiles GoogLeNet's
# train step for minutes, XLA and the Keras engines tens of seconds each); the others were run by hand.
FAST_STACKS = {"numpy", "torch", "jax", "tensorflow"}


def _verify_variant(backend: str, corruption: str, workload: str) -> dict:
    out = subprocess.run([sys.executable, str(HERE / "_wrong.py"), backend, corruption, workload],
                         capture_output=True, text=True, timeout=900)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("backend", AVAILABLE)
@pytest.mark.parametrize(("corruption", "workload"), CORRUPTIONS)
def test_a_wrong_variant_fails_verification(backend: str, corruption: str, workload: str) -> None:
    if workload in ("googlenet", "resnet50") and backend not in FAST_STACKS:
        pytest.skip(f"{backend} builds {workload} too slowly for CI (run tests/integration/_wrong.py by hand)")
    record = _verify_variant(backend, corruption, workload)
    assert not record["passed"]
    assert record["forward_error"] > 1e-2  # far outside fp32's 1e-5: no tolerance could hide it


@pytest.mark.slow
@pytest.mark.parametrize("backend", [name for name, info in BACKENDS.items() if info.needs_env])
@pytest.mark.parametrize(("corruption", "workload"), CORRUPTIONS)
def test_a_wrong_variant_fails_verification_in_its_env(backend: str, corruption: str, workload: str) -> None:
    """The same, run by the interpreter of the backend's managed env, as its workers are."""
    if backend not in IN_ENVS:
        pytest.skip(f"no managed env {backend!r} (`dlbench envs create {backend}` makes it)")
    interpreter = resolve([backend])[0][backend]
    out = subprocess.run([interpreter.python, str(HERE / "_wrong.py"), backend, corruption, workload],
                         capture_output=True, text=True, timeout=900, env={**os.environ, **interpreter.worker_env()})
    if out.returncode and "dlbench.backends.base.Unsupported: " in out.stderr:  # aesara 2.9.4 has no CPU conv
        pytest.skip(out.stderr.strip().splitlines()[-1][:300])
    assert out.returncode == 0, out.stderr[-3000:]
    record = json.loads(out.stdout.strip().splitlines()[-1])
    assert not record["passed"]
    assert record["forward_error"] > 1e-2


# `dlbench verify` end to end (CLI, workers, records, exit status) over backends that verify in seconds. That every
# installed backend's correct code agrees with the float64 reference in fp32 (LSTM and VGG-16, forward and every
# gradient) is the backend contract's (test_backend_contract.py); that verification catches each backend's wrong
# code is test_a_wrong_variant_fails_verification's. All backends here took 170 s of CI's 30 minutes.
VERIFY_CLI = [b for b in ("numpy", "torch", "jax", *IN_ENVS) if b in AVAILABLE or b in IN_ENVS]


# And the transformer block, in fp32, on the builders the run above leaves out.
TRANSFORMER_CLI = [b for b in ("tensorflow", "tensorflow-xla", "keras-jax", "keras-torch", "keras-tensorflow",
                                "pytensor", "pytensor-jax") if b in AVAILABLE]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(("backends", "workloads"), [(VERIFY_CLI, "lstm,vgg16,alexnet,transformer"),
                                                     (TRANSFORMER_CLI, "transformer")], ids=["fast", "transformer"])
def test_dlbench_verify_passes_in_fp32(backends: list[str], workloads: str) -> None:
    argv = ["verify", "--precisions", "fp32", "--format", "json", "--backends", ",".join(backends),
            "--workloads", workloads]
    out = subprocess.run([sys.executable, "-m", "dlbench.cli", *argv], capture_output=True, text=True, timeout=1800)
    records = json.loads(out.stdout)
    assert {r["backend"] for r in records} == set(backends)
    failed = [(r["backend"], r["workload"], r["status"], r.get("error"), r.get("forward_error"),
               r.get("worst_grad_error")) for r in records
              if not r["passed"] and not (r["backend"] in IN_ENVS and r["status"] == "unsupported")]  # fmt: skip
    assert failed == []
    assert out.returncode == 0


def _cli_verify(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dlbench.cli", "verify", "--backends", "numpy", "--workloads", "lstm",
                           "--format", "json", *args], capture_output=True, text=True, timeout=300)  # fmt: skip


def test_verify_exit_status() -> None:
    ok = _cli_verify("--precisions", "fp32,bf16")
    assert ok.returncode == 0, ok.stderr
    by_precision = {r["precision"]: r for r in json.loads(ok.stdout)}
    assert by_precision["fp32"]["passed"] and by_precision["fp32"]["forward_error"] < 1e-5
    assert by_precision["bf16"]["status"] == "unsupported"  # reported, not counted as a failure
    assert "NumPy has no bfloat16" in by_precision["bf16"]["error"]

    failed = _cli_verify("--precisions", "fp32", "--option", "fault=raise")
    assert failed.returncode == 1
    (record,) = json.loads(failed.stdout)
    assert record["status"] == "error" and "injected failure" in record["error"]
    assert "1 of 1 checks failed" in failed.stderr
