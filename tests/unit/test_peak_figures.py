"""dlbench peak's parent side: which peak a result is held against (same machine: CPU model, cores, CPUs given, or
GPU names; the newest complete peak run), its % of peak in the run tables, the legend when there is none, the
report's section and plot, the worker's timing arithmetic on a fake clock and a fake asynchronous device, and the
command's usage errors."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dlbench.cli import main  # noqa: E402
from dlbench.core.cases import Case  # noqa: E402
from dlbench.core.results import Result, Run  # noqa: E402
from dlbench.peak import api, worker  # noqa: E402
from dlbench.peak import section as peak_section  # noqa: E402
from dlbench.peak.figures import NO_PEAK, Machine, Peak, best, machine, percent, result_machine  # noqa: E402
from dlbench.peak.lookup import lookup  # noqa: E402
from dlbench.report.plots import peak_figure  # noqa: E402
from dlbench.runs.tables import legend, lstm_table  # noqa: E402
from dlbench.store import Store  # noqa: E402
from synthetic import fingerprint, make_run  # noqa: E402

LSTM = {"seq_len": 2, "batch": 4, "hidden": 8}
PLAN = [Case("lstm", LSTM, "numpy", "fp32", mode) for mode in ("forward", "train")]
COLUMN = "GFLOP/s (% of peak), fwd / fwd+bwd"


def matmul(framework: str, precision: str, flops: float | None, status: str = "ok") -> dict[str, Any]:
    return {"framework": framework, "quantity": "matmul", "precision": precision, "status": status,
            "flops_per_s": flops, "n": 512, "error": None if status == "ok" else "no kernel"}  # fmt: skip


def copy(framework: str, rate: float) -> dict[str, Any]:
    return {"framework": framework, "quantity": "copy", "precision": None, "status": "ok", "bytes_per_s": rate,
            "nbytes": 2**28}  # fmt: skip


def store_peak(
    path: Path,
    run_id: str,
    findings: list[dict[str, Any]],
    *,
    cpus: list[int] | None = None,
    fp: dict[str, Any] | None = None,
    status: str = "complete",
    device: str = "cpu",
) -> None:
    """A peak run as `dlbench peak` stores it: suite `peak`, its device and CPUs in the settings, findings `peak`."""
    store = Store(path)
    try:
        store.create_run(run_id, "peak", [], {"peak": {"device": device}, "cpus": cpus}, fp or fingerprint())
        for i, doc in enumerate(findings):
            store.add_finding(run_id, "peak", f"{i}", doc)
        store.set_run_status(run_id, status)
    finally:
        store.close()


def table_cells(run: Run) -> list[str]:
    table = lstm_table(run)
    assert table is not None
    return [row[table.columns.index(COLUMN)] for row in table.rows]


# -- what a peak is, and which results it applies to ----------------------------------------------------------------


def test_best_keeps_the_highest_figure_per_precision_and_names_its_framework() -> None:
    flops, bandwidth = best(
        [
            matmul("numpy", "fp32", 9e10),
            matmul("torch", "fp32", 8e10),
            matmul("jax", "fp32", 1.7e11),
            matmul("torch", "bf16", 3e11),
            matmul("numpy", "bf16", None, "unsupported"),
            copy("jax", 3e9),
            copy("torch", 1.1e10),
        ]
    )
    assert flops == {"fp32": (1.7e11, "jax"), "bf16": (3e11, "torch")}
    assert bandwidth == (1.1e10, "torch")


def test_a_machine_is_the_cpu_model_its_cores_and_the_cpus_given_or_the_gpu_names() -> None:
    fp = fingerprint(cpu={"model": "Chip A", "arch": "x86_64", "logical_cores": 8, "allowed_cpus": 8},
                     gpus=[{"name": "NVIDIA H200"}], hostname="one")  # fmt: skip
    assert machine(fp, "cpu", None) == Machine("cpu", "Chip A", "x86_64", 8, 8)
    assert machine(fp, "cpu", 1) != machine(fp, "cpu", None)  # one CPU's peak is not the chip's
    assert machine(fingerprint(**{**fp, "hostname": "two"}), "cpu", 1) == machine(fp, "cpu", 1)  # hosts alike
    other = fingerprint(cpu={"model": "Chip B", "arch": "x86_64", "logical_cores": 8, "allowed_cpus": 8})
    assert machine(other, "cpu", 1) != machine(fp, "cpu", 1)
    # On a GPU only the GPUs decide: the CPUs given do not.
    assert machine(fp, "cuda", 1) == machine({**other, "gpus": [{"name": "NVIDIA H200"}]}, "cuda", 8)
    assert machine(fp, "cuda", None) != machine({**fp, "gpus": [{"name": "NVIDIA A100"}]}, "cuda", None)


def test_a_result_is_held_against_the_cpus_its_worker_ran_on(tmp_path: Path) -> None:
    run = make_run(tmp_path / "s.sqlite", PLAN)
    result = run.results[0]
    assert result_machine(run, result).cpus == 2  # the synthetic machine's two CPUs
    pinned = Result(result.case, result.status, {**result.document, "cpus": [1]})
    assert result_machine(run, pinned).cpus == 1


@pytest.mark.parametrize(("precision", "against"), [("fp32", "fp32"), ("tf32", "tf32"), ("fp16", "fp16"),
                                                    ("amp-fp16", "fp16"), ("amp-bf16", "bf16")])  # fmt: skip
def test_percent_of_peak_is_achieved_over_the_peak_of_its_precision(tmp_path: Path, precision: str,
                                                                    against: str) -> None:  # fmt: skip
    run = make_run(tmp_path / "s.sqlite", PLAN)
    result = run.results[0]
    result = Result(dataclasses.replace(result.case, precision=precision), "ok", result.document)
    achieved = result.document["achieved_flops_per_s"]
    figures = {p: (achieved * (i + 2), "x") for i, p in enumerate(("fp32", "tf32", "fp16", "bf16"))}
    peak = Peak("p", Machine("cpu"), figures)
    assert percent(result, peak) == pytest.approx(100 / figures[against][0] * achieved)
    assert percent(result, Peak("p", Machine("cpu"), {p: v for p, v in figures.items() if p != against})) is None


# -- lookup in the store, and the tables ----------------------------------------------------------------------------


def test_no_peak_in_the_store_shows_flops_and_says_so_once(tmp_path: Path) -> None:
    run = make_run(tmp_path / "s.sqlite", PLAN)
    assert lookup(run).found == {}
    cells = table_cells(run)
    assert cells and all("%" not in c and c != "—" for c in cells)  # achieved FLOP/s, no percentage
    lines = legend(run)
    assert sum(NO_PEAK in line for line in lines) == 1
    assert any("2 per multiply-add" in line and "Winograd" in line for line in lines)  # the FLOP convention
    assert peak_figure(run) is None


def test_a_matching_peak_gives_each_row_its_percentage(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    run = make_run(path, PLAN)
    forward, train = (r.document["achieved_flops_per_s"] for r in run.results)
    store_peak(path, "peak-1", [matmul("numpy", "fp32", forward * 4), copy("numpy", 1e10)])
    [cell] = table_cells(run)
    forward_cell, train_cell = cell.split(" / ")
    assert forward_cell == f"{forward / 1e9:.3g} (25%)"
    figure_text, share = train_cell.rstrip("%)").split(" (")
    assert figure_text == f"{train / 1e9:.3g}" and float(share) == pytest.approx(100 * train / (4 * forward), abs=0.5)
    lines = legend(run)
    assert not any(NO_PEAK in line for line in lines)
    assert any("run peak-1" in line and "(numpy)" in line for line in lines)
    figure = peak_figure(run)
    assert figure is not None and figure.panels[0].series[0].points[0].y == pytest.approx(25.0)


def test_the_newest_complete_peak_of_the_same_machine_wins(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    run = make_run(path, PLAN)
    achieved = run.results[0].document["achieved_flops_per_s"]
    store_peak(path, "old", [matmul("numpy", "fp32", achieved * 2)])
    store_peak(path, "one-cpu", [matmul("numpy", "fp32", achieved * 10)], cpus=[0])  # another CPU count
    store_peak(
        path,
        "other-chip",
        [matmul("numpy", "fp32", achieved * 10)],
        fp=fingerprint(cpu={"model": "Other", "arch": "x86_64", "logical_cores": 2, "allowed_cpus": 2}),
    )
    store_peak(path, "cut-short", [matmul("numpy", "fp32", achieved * 10)], status="interrupted")
    store_peak(path, "nothing-measured", [matmul("numpy", "fp32", None, "error")])
    found = lookup(run).found
    assert [p.run_id for p in found.values()] == ["old"]
    assert table_cells(run)[0].split(" / ")[0].endswith("(50%)")
    store_peak(path, "new", [matmul("torch", "fp32", achieved * 4)])
    assert [p.run_id for p in lookup(run).found.values()] == ["new"]


def test_a_peak_timed_while_others_used_the_machine_is_marked(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    run = make_run(path, PLAN)
    busy = {**matmul("numpy", "fp32", 1e11), "disturbance": {"verdict": "disturbed", "reasons": ["others"]}}
    store_peak(path, "busy", [busy, {**matmul("torch", "fp32", 5e10), "disturbance": {"verdict": "clean"}}])
    [line] = [line for line in legend(run) if "run busy" in line]
    assert "fp32 100 GFLOP/s (numpy) [disturbed: too low]" in line


def test_a_peak_without_the_results_precision_says_so(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    run = make_run(path, PLAN)
    store_peak(path, "bf16-only", [matmul("torch", "bf16", 1e12)])
    assert "%" not in table_cells(run)[0]
    assert any("bf16-only has no figure for fp32" in line for line in legend(run))


def test_the_report_section_shows_the_peak_the_tables_use(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    run = make_run(path, PLAN)
    store = Store(path, readonly=True)
    try:
        assert peak_section.build(store, [run]) is None
    finally:
        store.close()
    store_peak(path, "peak-1", [matmul("numpy", "fp32", 5e10), matmul("numpy", "fp16", None, "unsupported"),
                                copy("numpy", 1e10)])  # fmt: skip
    store = Store(path, readonly=True)
    try:
        section = peak_section.build(store, [run])
    finally:
        store.close()
    assert section is not None and section.source_runs == ["peak-1"]
    rows = section.tables[0].rows
    assert rows[0][:4] == ["matrix multiply", "fp32", "50 GFLOP/s", "numpy"]
    assert rows[1][2] == "none" and rows[1][4] == "unsupported [1]"
    assert "[1] numpy fp16: unsupported: no kernel" in section.tables[0].notes
    assert rows[2][2] == "10 GB/s"


# -- the worker's timing, on a fake clock -------------------------------------------------------------------------


class _Device:
    """A fake asynchronous device: a call only queues work; the clock advances when synchronize waits for it."""

    def __init__(self, rate: float) -> None:
        self.now, self.queued, self.rate, self.synced = 0.0, 0.0, rate, 0

    def clock(self) -> float:
        return self.now

    def synchronize(self, result: Any = None) -> None:
        self.now += self.queued
        self.queued = 0.0
        self.synced += 1


class _Module:
    def __init__(self, device: _Device) -> None:
        self.device = device

    def matmul(self, precision: str, device: str, n: int) -> tuple[Any, dict[str, Any]]:
        def step() -> int:
            self.device.queued += 2.0 * n**3 / self.device.rate
            self.device.now += 1e-6  # the launch itself is almost free
            return n

        return step, {"n": n}

    def copy(self, device: str, nbytes: int) -> tuple[Any, dict[str, Any]]:
        def step() -> int:
            self.device.queued += 2.0 * nbytes / self.device.rate
            return nbytes

        return step, {}


def test_the_worker_times_the_work_not_its_launch(monkeypatch: pytest.MonkeyPatch) -> None:
    device = _Device(rate=1e12)
    monkeypatch.setattr(worker.time, "perf_counter", device.clock)
    found = worker._matmul(_Module(device), device, "fp32", "cuda", 10.0, [1024, 2048])
    measured = [r for r in found["sizes"] if "flops_per_s" in r]
    assert [r["n"] for r in measured] == [1024, 2048]
    # Within the launches' 1 µs each: the device's rate, not the rate of queueing calls.
    assert all(r["flops_per_s"] == pytest.approx(1e12, rel=1e-3) for r in measured)
    assert found["flops_per_s"] == max(r["flops_per_s"] for r in measured)
    assert all(r["calls_per_sample"] >= 1 and len(r["samples_s"]) >= worker.MIN_SAMPLES for r in measured)
    copied = worker._copy(_Module(device), device, "cuda", 1.0, 2**30)
    assert copied["bytes_per_s"] == pytest.approx(1e12)


def test_sizes_that_would_not_fit_the_budget_are_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    device = _Device(rate=1e9)  # a 1024² product takes 2.1 s here, a 4096² one 137 s
    monkeypatch.setattr(worker.time, "perf_counter", device.clock)
    found = worker._matmul(_Module(device), device, "fp32", "cpu", 10.0, [256, 1024, 4096])
    assert [r["n"] for r in found["sizes"] if "flops_per_s" in r] == [256]
    assert [r["n"] for r in found["sizes"] if "skipped" in r] == [1024, 4096]


# -- the command's mistakes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("argv", "needle"), [
    (["--seconds", "0"], "--seconds"), (["--seconds", "nan"], "nan"), (["--device", "tpu"], "tpu"),
    (["--frameworks", "tensorflow"], "tensorflow"), (["--cpus", "9999"], "9999"), (["--format", "csv"], "csv"),
])  # fmt: skip
def test_usage_errors_exit_2_and_write_nothing(argv: list[str], needle: str, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    store = tmp_path / "s.sqlite"
    assert main(["peak", *argv, "--store", str(store)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dlbench: error:") and needle in err[0]
    assert not store.exists()


def test_cuda_without_a_gpu_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    monkeypatch.setattr(api, "cuda_available", lambda: False)
    store = tmp_path / "s.sqlite"
    assert main(["peak", "--device", "cuda", "--store", str(store)]) == 2
    assert "no NVIDIA GPU" in capsys.readouterr().err and not store.exists()


def test_the_api_refuses_bad_sizes_before_writing(tmp_path: Path) -> None:
    from dlbench.core.errors import UsageError

    for sizes in ([], [8], [2**20], [True]):
        with pytest.raises(UsageError, match="matrix sizes"):
            api.run(store=tmp_path / "s.sqlite", sizes=sizes)
    assert not (tmp_path / "s.sqlite").exists()
