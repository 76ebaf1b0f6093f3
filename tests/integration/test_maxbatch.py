"""--memory-limit and `dlbench maxbatch` with real worker processes (the numpy backend's hold_mib_per_sample
option really fills batch × that many MiB): a worker past the limit is killed and recorded as oom, and the
search finds the batch that runs while the next does not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dlbench.cli import main
from dlbench.core.cases import Case, MeasureConfig
from dlbench.maxbatch import api as maxbatch
from dlbench.runner import client
from dlbench.store import Store

SIZE = {"seq_len": 2, "batch": 4, "hidden": 8}
MIB = 2**20
LIMIT = 640 * MIB
PER_SAMPLE_MIB = 64


@pytest.mark.parametrize("isolation", ["fork", "spawn"])
def test_a_worker_past_the_memory_limit_is_killed_and_recorded_as_oom(sweep_cases: Any, isolation: str) -> None:
    fits = Case("lstm", SIZE, "numpy", "fp32", "forward", options={"hold_mib_per_sample": 16})  # 64 MiB
    too_big = Case("lstm", SIZE, "numpy", "fp32", "forward", options={"hold_mib_per_sample": 256})  # 1 GiB
    plan = [too_big, fits]
    config = MeasureConfig(min_time_s=0.0, min_iters=2, max_time_s=0.5, warmup_iters=0)
    killed, ran = sweep_cases(plan, config, timeout_s=60, isolation=isolation, memory_limit=LIMIT)
    assert killed["status"] == "oom", killed["error"]
    assert killed["error"].startswith("killed by dlbench at the --memory-limit of 640 MiB (RSS reached ")
    assert killed["memory_watch"]["peak_rss_bytes"] >= LIMIT and killed["memory_watch"]["limit_bytes"] == LIMIT
    assert ran["status"] == "ok"  # the next case runs, under the same cap
    # The watcher samples every 25 ms and may miss a short case's peak; the case's own high-water mark is exact.
    assert ran["memory_watch"]["peak_rss_bytes"] < LIMIT and 64 * MIB < ran["memory"]["rss_peak_bytes"] < LIMIT


def test_a_case_that_crosses_the_limit_between_the_watchers_samples_is_still_oom(
    sweep_cases: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The watcher samples (every POLL_S); a case can cross the cap and finish between two samples, the more so on
    a loaded machine. Its own exact high-water mark then decides: over the cap is oom, not a fit."""
    monkeypatch.setattr(client, "POLL_S", 3600.0)  # one sample at the start, none after: the race, made certain
    too_big = Case("lstm", SIZE, "numpy", "fp32", "forward", options={"hold_mib_per_sample": 256})  # 1 GiB
    config = MeasureConfig(min_time_s=0.0, min_iters=1, max_time_s=0.5, warmup_iters=0)
    (doc,) = sweep_cases([too_big], config, timeout_s=60, isolation="fork", memory_limit=LIMIT)
    assert doc["status"] == "oom", doc
    assert doc["error"].startswith("exceeded the --memory-limit of 640 MiB between the watcher's samples")
    assert doc["memory"]["rss_peak_bytes"] >= 1024 * MIB > doc["memory_watch"]["peak_rss_bytes"]


def test_maxbatch_finds_the_batch_that_runs_while_the_next_is_killed(store_path: Path) -> None:
    found = maxbatch.run(
        "lstm", ["numpy"], precisions=["fp32"], modes=["forward"], sets={"seq_len": 2, "hidden": 8},
        memory_limit="640MiB", store=store_path, timeout_s=60, within=0.0, steps=1,
        options={"hold_mib_per_sample": PER_SAMPLE_MIB},
    )  # fmt: skip
    (doc,) = found.findings.values()
    n = doc["largest_ok"]
    assert doc["verdict"] == "found" and doc["smallest_oom"] == n + 1
    probes = {p["batch"]: p for p in doc["probes"]}
    assert probes[n]["status"] == "ok" and probes[n + 1]["status"] == "oom"
    assert "the --memory-limit of 640 MiB" in probes[n + 1]["error"]  # killed at a sample, or caught after it
    # The answer is the arithmetic of what really ran: the fixed part (interpreter, NumPy, the case) measured
    # at batch 1, plus 64 MiB a sample, under the cap; one more sample crosses it.
    base = probes[1]["memory_bytes"] - PER_SAMPLE_MIB * MIB
    assert 0 < base < 300 * MIB
    assert base + n * PER_SAMPLE_MIB * MIB < LIMIT <= base + (n + 2) * PER_SAMPLE_MIB * MIB
    assert doc["memory_at_largest"]["bytes"] == probes[n]["memory_bytes"] < LIMIT
    stored = Store(store_path)
    assert stored.findings(found.run_id, "maxbatch") == {"lstm-seq_len=2,hidden=8-numpy-fp32-forward-cpu": doc}
    assert stored.get_run(found.run_id)["settings"]["memory_limit_bytes"] == LIMIT


def test_maxbatch_stops_on_an_error_and_the_cli_and_report_show_it(
    store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["maxbatch", "lstm", "--backends", "numpy", "--precisions", "fp32,fp16", "--mode", "forward",
            "--set", "seq_len=2", "--set", "hidden=8", "--option", "fault=raise", "--memory-limit", "1GiB",
            "--store", str(store_path), "--format", "markdown"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "stopped: error at batch 1" in out and "RuntimeError: injected failure" in out
    assert "no answer: the fp16 search stopped with error at batch 1" in out
    assert main(["report", "--store", str(store_path), "--format", "markdown"]) == 0
    report = capsys.readouterr().out
    assert "## Largest batch that fits" in report and "stopped: error at batch 1" in report
