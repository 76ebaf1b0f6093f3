"""Fault handling with real worker processes (the numpy backend's fault injection): a crash, an exit, a hang,
an exception and a real MemoryError are each recorded as that case's result, and the sweep goes on."""

from __future__ import annotations

from typing import Any

import pytest

from dlbench.core.cases import Case, MeasureConfig

FAST = MeasureConfig(min_time_s=0.0, min_iters=2, max_time_s=0.5, warmup_iters=0)
SIZE = {"seq_len": 2, "batch": 2, "hidden": 8}


def case(**options: Any) -> Case:
    return Case("lstm", SIZE, "numpy", "fp32", "forward", options=options)


@pytest.mark.parametrize("isolation", ["fork", "spawn"])
def test_every_fault_is_that_cases_result_and_the_sweep_goes_on(sweep_cases: Any, isolation: str) -> None:
    plan = [case(), case(fault="crash"), case(fault="exit"), case(fault="hang"), case(fault="raise"),
            case(fault="oom"), case(sleep_s=0.001)]  # fmt: skip
    seen: list[str] = []
    docs = sweep_cases(plan, FAST, timeout_s=5.0, isolation=isolation, on_event=lambda kind, c, doc: seen.append(kind))
    results = {doc["case_key"]: doc for doc in docs}
    assert len(results) == len(plan) and seen.count("result") == len(plan)
    by_fault = {c.options.get("fault", "none"): results[c.key] for c in plan if "sleep_s" not in c.options}

    assert by_fault["none"]["status"] == "ok"
    assert by_fault["crash"]["status"] == "error" and "SIGSEGV" in by_fault["crash"]["error"]
    assert "Segmentation fault" in by_fault["crash"]["log_tail"]  # faulthandler's report, from the case's log
    assert by_fault["exit"]["status"] == "error" and "status 3" in by_fault["exit"]["error"]
    assert by_fault["hang"]["status"] == "timeout" and "5 s timeout" in by_fault["hang"]["error"]
    assert by_fault["raise"]["status"] == "error" and "RuntimeError: injected failure" in by_fault["raise"]["error"]
    assert by_fault["oom"]["status"] == "oom" and "MemoryError" in by_fault["oom"]["error"]
    last = results[plan[-1].key]
    assert last["status"] == "ok" and last["stats"]["n"] >= 2  # the sweep went on after every fault
    assert all(doc["isolation"] == isolation for doc in results.values() if "isolation" in doc)


def test_ok_result_carries_raw_samples_stats_first_step_and_memory(sweep_cases: Any) -> None:
    (doc,) = sweep_cases([case()], FAST, timeout_s=60)
    assert doc["status"] == "ok"
    assert len(doc["samples_s"]) == doc["stats"]["n"] >= 2 and all(s > 0 for s in doc["samples_s"])
    assert doc["first_step_s"] > 0
    assert doc["stats"]["samples_per_s"] == pytest.approx(2 / doc["stats"]["median_s"])
    memory = doc["memory"]
    assert memory["rss_peak_bytes"] >= memory["rss_import_baseline_bytes"] > 10 * 2**20
    assert memory["rss_peak_delta_bytes"] == memory["rss_peak_bytes"] - memory["rss_import_baseline_bytes"]
    assert doc["versions"]["numpy"]
    assert doc["flops_per_sample"] == 2 * 2 * 2 * 8 * 32


def test_a_forked_worker_reports_per_case_peak_memory(sweep_cases: Any) -> None:
    """The proof that serving cases from one imported process keeps peak memory per case: a small case run
    right after a big one in the same serving process peaks where it peaks alone in a fresh interpreter."""
    big = Case("lstm", {"seq_len": 20, "batch": 256, "hidden": 512}, "numpy", "fp32", "forward")
    small = case()
    one_iter = MeasureConfig(min_time_s=0.0, min_iters=1, max_time_s=0.0, warmup_iters=0)
    big_doc, small_forked = sweep_cases([big, small], one_iter, timeout_s=120, isolation="fork")
    (small_alone,) = sweep_cases([small], one_iter, timeout_s=120, isolation="spawn")
    big_delta = big_doc["memory"]["rss_peak_delta_bytes"]
    forked, alone = small_forked["memory"]["rss_peak_delta_bytes"], small_alone["memory"]["rss_peak_delta_bytes"]
    assert big_delta > 100 * 2**20  # the big case really used memory ...
    assert forked < 20 * 2**20 and abs(forked - alone) < 20 * 2**20  # ... and none of it shows in the next


def test_forked_and_fresh_workers_report_the_same_peak_memory(sweep_cases: Any) -> None:
    """A forked child re-maps the library pages its parent had resident (measure/memory.py), so a framework
    with hundreds of MB of shared libraries shows the same peak RSS whether the case was forked or spawned."""
    pytest.importorskip("torch")
    one = Case("lstm", {"seq_len": 5, "batch": 4, "hidden": 32}, "torch", "fp32", "forward")
    config = MeasureConfig(min_time_s=0.0, min_iters=3, max_time_s=1.0, warmup_iters=0)
    peaks = {}
    for isolation in ("fork", "spawn"):
        (doc,) = sweep_cases([one], config, timeout_s=300, isolation=isolation)
        assert doc["status"] == "ok", doc.get("error")
        assert doc["memory"]["rss_peak_delta_bytes"] >= 0
        peaks[isolation] = doc["memory"]["rss_peak_bytes"]
    assert peaks["spawn"] > 200 * 2**20  # torch's libraries are resident in both ...
    assert abs(peaks["fork"] - peaks["spawn"]) < 0.1 * peaks["spawn"]  # ... and counted alike
