"""`dlbench peak` for real on the CPU, as a user runs it: worker processes timing NumPy's (and torch's, where it is
installed) matrix products and array copy, the figures stored as a run of suite `peak`, and a later run on the same
CPUs showing its achieved FLOP/s as a % of that peak, while a run given other CPUs says it has none."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import dlbench
from dlbench.cli import main
from dlbench.peak.figures import NO_PEAK
from dlbench.runs.tables import legend, lstm_table
from dlbench.store import Store

pytestmark = pytest.mark.slow
SMALL = {"seq_len": [2], "batch": [4], "hidden": [32]}
QUICK = {"min_time_s": 0.05, "max_time_s": 0.5, "min_iters": 3, "repeat": 1, "retries": 0}


def _cpus() -> list[int]:
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]


def test_peak_is_stored_and_later_tables_show_percent_of_it(store_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    cpu = _cpus()[0]
    frameworks = "numpy,torch" if _installed("torch") else "numpy"
    argv = ["peak", "--cpus", str(cpu), "--frameworks", frameworks, "--seconds", "0.3", "--store", str(store_path),
            "--format", "markdown"]  # fmt: skip
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "| matrix multiply | fp32 |" in out and "numpy cpu fp32 matmul:" in err  # the table, and progress
    store = Store(store_path, readonly=True)
    try:
        [run_id] = store.run_ids()
        stored = store.get_run(run_id)
        findings = store.findings(run_id, "peak")
    finally:
        store.close()
    assert stored["suite"] == "peak" and stored["status"] == "complete" and stored["settings"]["cpus"] == [cpu]
    numpy_fp32 = findings["matmul-fp32-numpy"]
    assert numpy_fp32["status"] == "ok" and numpy_fp32["flops_per_s"] > 0
    measured = [r for r in numpy_fp32["sizes"] if "flops_per_s" in r]
    assert measured and all(len(r["samples_s"]) >= 3 for r in measured)
    assert numpy_fp32["flops_per_s"] == max(r["flops_per_s"] for r in measured)  # the best size's median
    assert numpy_fp32["settings"]["blas_threads"] in (1, None)  # pinned to one CPU
    assert findings["matmul-bf16-numpy"]["status"] == "unsupported"  # said, not left out
    assert findings["copy-numpy"]["status"] == "ok" and findings["copy-numpy"]["bytes_per_s"] > 0
    if "torch" in frameworks:
        assert findings["matmul-fp32-torch"]["status"] == "ok"
        assert findings["matmul-bf16-torch"]["status"] in ("ok", "unsupported")
    fp32_peak = max(d["flops_per_s"] for d in findings.values() if d.get("precision") == "fp32" and d["status"] == "ok")

    # A run on the same CPU: its FLOP/s column holds a percentage of that fp32 peak, and the legend names the run.
    same = dlbench.run("lstm", backends=["numpy"], precisions=["fp32"], sets=SMALL, cpus=[cpu], measure=QUICK,
                       store=store_path, verify=False)  # fmt: skip
    table = lstm_table(same)
    assert table is not None
    cell = table.rows[0][table.columns.index("GFLOP/s (% of peak), fwd / fwd+bwd")]
    forward = next(r for r in same.results if r.case.mode == "forward")
    expected = 100 * forward.document["achieved_flops_per_s"] / fp32_peak
    share = float(cell.split(" / ")[0].split("(")[1].rstrip("%)"))
    assert share == pytest.approx(expected, rel=0.06, abs=0.01)
    assert any(f"run {run_id}" in line for line in legend(same))
    assert main(["show", same.run_id, "--store", str(store_path), "--format", "markdown"]) == 0
    shown = capsys.readouterr().out
    assert "% of peak" in shown and f"run {run_id}" in shown and NO_PEAK not in shown

    if len(_cpus()) > 1:  # given two CPUs, a run is not held against one CPU's peak
        other = dlbench.run("lstm", backends=["numpy"], precisions=["fp32"], sets=SMALL, cpus=_cpus()[:2],
                            measure=QUICK, store=store_path, verify=False)  # fmt: skip
        assert any(NO_PEAK in line for line in legend(other))


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None
