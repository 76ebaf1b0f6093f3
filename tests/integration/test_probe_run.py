"""`dlbench probe` for real: worker processes, real frameworks on the CPU, known truths per framework, the findings
stored as a run, and the report section built from them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dlbench import cli
from dlbench.probe import api as probe_api
from dlbench.probe import section as probe_section
from dlbench.store import Store

pytestmark = pytest.mark.slow
FAST = {"min_iters": 10, "min_time_s": 0.2, "max_time_s": 1.0}  # enough fp32 steps for one undisturbed one


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return {flag for line in text.splitlines() if line.startswith("flags") for flag in line.split(":", 1)[1].split()}


def test_torch_fp32_is_native_and_fp16_conv_on_cpu_is_slow(store_path: Path) -> None:
    pytest.importorskip("torch")
    # One CPU: on a busy machine a 2-thread fp32 kernel stalls on its descheduled thread (fp32 then looks slow).
    cpu = min(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0
    run_id, findings = probe_api.run(["torch"], precisions=["fp16"], layers=["linear", "conv2d"], store=store_path,
                             timing=FAST, cpus=[cpu])  # fmt: skip
    by = {(f["precision"], f["layer"]): f for f in findings}
    assert sorted(by) == [("fp16", "conv2d"), ("fp16", "linear"), ("fp32", "conv2d"), ("fp32", "linear")]
    for direction in ("forward", "backward"):
        fp32 = by["fp32", "linear"][direction]
        assert fp32["verdict"] == "native" and fp32["dtype"] == "float32" and fp32["error"] < 1e-5
    conv = by["fp16", "conv2d"]["forward"]
    assert conv["dtype"] == "float16" and conv["error"] < 1e-2  # it computes right, in fp16 ...
    if not _cpu_flags() & {"avx512_fp16", "amx_fp16"}:  # ... but without fp16 units oneDNN has no fast kernel
        assert conv["verdict"] == "slow" and conv["ratio_to_fp32"] >= 10
    store = Store(store_path, create=False)
    try:
        assert set(store.findings(run_id, "probe")) == {f"torch-cpu-{p}-{layer}" for p in ("fp32", "fp16")
                                                         for layer in ("linear", "conv2d")}  # fmt: skip
        assert store.get_run(run_id)["status"] == "complete"
        section = probe_section.build(store, [])
        assert section is not None and section.source_runs == [run_id]
        forward = section.tables[0]
        row = next(i for i, r in enumerate(forward.rows) if r[:2] == ["torch", "fp32"])
        assert forward.rows[row][2] == "native" and forward.classes[row][2] == "good"
    finally:
        store.close()


def test_pytensor_bf16_is_unsupported_with_its_own_error(store_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Through the command line, as a user runs it: the markdown matrix quotes PyTensor's own error."""
    pytest.importorskip("pytensor")
    argv = ["probe", "--backends", "pytensor", "--precisions", "bf16", "--layers", "softmax", "--format", "markdown",
            "--store", str(store_path)]  # fmt: skip
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    for direction in ("forward", "backward"):
        table = out.split(f"### Precision support: {direction} on cpu")[1]
        assert "| pytensor | fp32 | native |" in table and "| pytensor | bf16 | unsupported [1] |" in table
        assert "[1] pytensor: unsupported: TypeError:" in table and "bfloat16" in table.split("[1] pytensor")[1]
    store = Store(store_path, create=False)
    try:
        (run_id,) = store.run_ids()
        assert set(store.findings(run_id, "probe")) == {"pytensor-cpu-fp32-softmax", "pytensor-cpu-bf16-softmax"}
    finally:
        store.close()
