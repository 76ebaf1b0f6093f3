"""Disturbance: the window watch reads what else used the case's CPUs, the verdict applies named thresholds, and
the sweep re-measures disturbed windows later, in rounds, storing every attempt (a fake session: no workers)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace
from typing import Any

import pytest

from dlbench.core.cases import Case, MeasureConfig
from dlbench.measure.disturbance import OUTSIDE_FLOOR_S, Watch, allowed_cpus, judge
from dlbench.runner import sweep as sweep_module
from dlbench.runner.sweep import sweep

CASES = [Case("lstm", {"seq_len": 5, "batch": 4, "hidden": 8}, "numpy", "fp32", m) for m in ("forward", "train")]


def window(share: float, cpu_share: float = 1.0) -> dict[str, Any]:
    return {"wall_s": 1.0, "cpus": [0], "threads": 1, "own_cpu_s": cpu_share, "outside_cpu_s": share,
            "steal_s": 0.0, "outside_share": share, "cpu_share": cpu_share}  # fmt: skip


def test_the_verdict_names_its_thresholds_and_reasons() -> None:
    assert judge(window(0.05), 0.10)["verdict"] == "clean"
    verdict = judge(window(0.5), 0.10)
    assert verdict["verdict"] == "disturbed" and "50%" in verdict["reasons"][0]
    assert verdict["thresholds"] == {"max_outside_share": 0.10, "min_cpu_share": 0.0}
    assert judge(window(0.5), 0.6)["verdict"] == "clean"  # the user sets the threshold
    assert judge(window(0.0, cpu_share=0.4), 0.10, min_cpu_share=0.8)["verdict"] == "disturbed"
    assert judge({"error": "psutil is not installed"}, 0.10)["verdict"] == "unwatched"
    tiny = {**window(0.5), "outside_cpu_s": OUTSIDE_FLOOR_S / 2}  # below the kernel's tick resolution
    assert judge(tiny, 0.10)["verdict"] == "clean"
    gpu = {**window(0.0), "device_other_pids": [4242]}
    assert judge(gpu, 0.10)["verdict"] == "disturbed"


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def start_neighbour(cpu: int, seconds: float = 3600.0) -> int:
    """A busy process pinned to `cpu` for `seconds`, not in this process's tree (its parent, a shell, has exited):
    a neighbour, as another user's job would be. Its pid."""
    code = f"import os, time; os.sched_setaffinity(0, {{{cpu}}})\nend = time.time() + {seconds}\n" \
           "while time.time() < end: pass"
    shell = subprocess.run(["sh", "-c", f"{sys.executable} -c '{code}' >/dev/null 2>&1 & echo $!"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    return int(shell.stdout.strip())


def test_a_watch_sees_a_neighbour_on_its_cpu() -> None:
    """A busy process pinned to the watched CPU takes about half of it; alone, others take almost nothing."""
    cpu = allowed_cpus()[0]
    saved = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        quiet = Watch(cpus=[cpu])
        quiet.start()
        _spin(0.6)
        alone = quiet.stop()
        pid = start_neighbour(cpu)
        try:
            time.sleep(0.3)
            busy = Watch(cpus=[cpu])
            busy.start()
            _spin(1.0)
            shared = busy.stop()
        finally:
            os.kill(pid, signal.SIGKILL)
    finally:
        os.sched_setaffinity(0, saved)
    assert alone["cpu_share"] > 0.8 and judge(alone, 0.10)["verdict"] == "clean", alone
    assert shared["outside_share"] > 0.25 and judge(shared, 0.10)["verdict"] == "disturbed", shared
    assert shared["cpu_share"] < 0.75


class FakeSession:
    """Answers measure() with windows from a script: `plan[(case key, call number)]` = outside share."""

    def __init__(self, shares: dict[tuple[str, int], float] | None = None, status: str = "ok") -> None:
        self.shares, self.status = shares or {}, status
        self.calls: list[str] = []
        self.stored: dict[str, list[dict[str, Any]]] = {}
        self.results: dict[str, dict[str, Any]] = {}

    def verifications(self) -> dict[str, Any]:
        return {}

    def attempts(self) -> dict[str, list[dict[str, Any]]]:
        return {k: list(v) for k, v in self.stored.items()}

    def available(self, case: Case) -> tuple[bool, str]:
        return True, ""

    def interpreter(self, spec: str) -> None:
        return None

    def measure(self, case: Case, config: MeasureConfig, timeout_s: float) -> dict[str, Any]:
        self.calls.append(case.mode)
        n = sum(1 for c in self.calls if c == case.mode)
        if self.status != "ok":
            return {"status": self.status, "error": "boom"}
        share = self.shares.get((case.mode, n), 0.0)
        return {"status": "ok", "pid": 100 + len(self.calls), "samples_s": [0.01 * (1 + share)] * 6,
                "first_step_s": 0.1, "window": window(share)}  # fmt: skip

    def wait_quiet(self, case: Case, config: MeasureConfig) -> float:
        return 0.0

    def add_attempt(self, case: Case, repetition: int, attempt: int, document: dict[str, Any]) -> bool:
        self.stored.setdefault(case.key, []).append(document)
        return True

    def add_result(self, case: Case, seq: int, document: dict[str, Any]) -> bool:
        self.results[case.key] = document
        return True


def run(session: FakeSession, **measure: Any) -> None:
    sweep(session, CASES, MeasureConfig(**{"min_iters": 5, **measure}), 60.0)  # type: ignore[arg-type]


def test_a_disturbed_window_is_measured_again_later_and_the_clean_one_shown() -> None:
    session = FakeSession({("forward", 1): 0.5})
    run(session, retries=2)
    assert session.calls == ["forward", "train", "forward"]  # again at the end of the sweep, not at once
    forward = session.results[CASES[0].key]
    assert [a["verdict"] for a in forward["attempts"]] == ["disturbed", "clean"]
    assert forward["flags"] == [] and forward["stats"]["median_s"] == pytest.approx(0.01)
    assert len(session.stored[CASES[0].key]) == 2  # nothing discarded


def test_a_case_never_clean_ends_flagged_and_the_sweep_goes_on() -> None:
    session = FakeSession({("forward", n): 0.5 for n in range(1, 10)})
    run(session, retries=2)
    assert session.calls.count("forward") == 3 and session.calls.count("train") == 1
    forward = session.results[CASES[0].key]
    assert forward["flags"] == ["disturbed"] and forward["disturbed"]
    assert "disturbed in every attempt (3)" in forward["stats"]["warnings"][0]
    assert session.results[CASES[1].key]["flags"] == []


def test_repetitions_run_in_rounds_in_processes_of_their_own() -> None:
    session = FakeSession()
    run(session, repeat=3)
    assert session.calls == ["forward", "train"] * 3
    forward = session.results[CASES[0].key]
    assert len(forward["repetitions"]) == 3 and len({r["pid"] for r in forward["repetitions"]}) == 3
    assert len(forward["samples_s"]) == 18 and forward["stats"]["ci_from"] == "between repetitions"


def test_a_failed_attempt_settles_the_case() -> None:
    session = FakeSession(status="error")
    run(session, repeat=3)
    assert session.calls == ["forward", "train"]
    assert session.results[CASES[0].key]["status"] == "error"


def test_fewer_iterations_than_min_iters_is_flagged() -> None:
    session = FakeSession()
    run(session, min_iters=10)
    assert "few-iterations" in session.results[CASES[0].key]["flags"]


def test_a_resumed_sweep_goes_on_from_the_stored_attempts() -> None:
    first = FakeSession({("forward", 1): 0.5})
    sweep(first, CASES[:1], MeasureConfig(repeat=2, retries=1), 60.0)
    stored = {k: v[:1] for k, v in first.stored.items()}  # interrupted after its first (disturbed) attempt
    second = FakeSession()
    second.stored = {k: list(v) for k, v in stored.items()}
    sweep(second, CASES[:1], MeasureConfig(repeat=2, retries=1), 60.0)
    assert second.calls == ["forward", "forward"]  # repetition 2, then repetition 1's retry
    result = second.results[CASES[0].key]
    assert [(a["repetition"], a["attempt"]) for a in result["attempts"]] == [(1, 1), (1, 2), (2, 1)]


class ClockedSession(FakeSession):
    """A FakeSession whose every measurement takes 10 s of the sweep's clock."""

    clock = 0.0

    def measure(self, case: Case, config: MeasureConfig, timeout_s: float) -> dict[str, Any]:
        self.clock += 10.0
        return super().measure(case, config, timeout_s)


@pytest.mark.parametrize(("budget", "calls", "kept"), [(0, 8, 4), (50, 4, 2), (60, 6, 3), (80, 8, 4)])
def test_rounds_beyond_the_second_run_only_within_the_budget(
    monkeypatch: pytest.MonkeyPatch, budget: float, calls: int, kept: int
) -> None:
    """Two cases, 10 s each per process: rounds 1-2 take 40 s; a third ends at 60 s, a fourth at 80 s."""
    session = ClockedSession()
    monkeypatch.setattr(sweep_module, "time", SimpleNamespace(monotonic=lambda: session.clock))
    run(session, repeat=4, budget_s=budget)
    assert len(session.calls) == calls
    for result in session.results.values():
        assert len(result["repetitions"]) == kept and len(result["stats"]["repetition_medians_s"]) == kept


def test_a_retry_still_runs_when_the_budget_leaves_a_round_out(monkeypatch: pytest.MonkeyPatch) -> None:
    session = ClockedSession({("forward", 1): 0.5})
    monkeypatch.setattr(sweep_module, "time", SimpleNamespace(monotonic=lambda: session.clock))
    run(session, repeat=3, retries=1, budget_s=50)
    assert session.calls == ["forward", "train", "forward", "train", "forward"]  # round 3 left out, the retry kept
    forward = session.results[CASES[0].key]
    assert len(forward["repetitions"]) == 2 and len(forward["attempts"]) == 3 and forward["flags"] == []


def test_the_legend_says_when_rounds_were_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    from dlbench.core.results import Result, Run
    from dlbench.runs.tables import legend

    session = ClockedSession()
    monkeypatch.setattr(sweep_module, "time", SimpleNamespace(monotonic=lambda: session.clock))
    measure = MeasureConfig(min_iters=5, repeat=3, budget_s=50)
    sweep(session, CASES, measure, 60.0)  # type: ignore[arg-type]
    results = [Result.from_document(d) for d in session.results.values()]
    run_ = Run("r", "test", "complete", CASES, results, {"measure": measure.to_dict()}, {}, "")
    lines = legend(run_)
    assert any(line.startswith("each figure: the geometric mean of 2 independent") for line in lines), lines
    assert any("--repeat 3 asked; rounds beyond 2 were left out" in line and "budget of 50 s" in line
               for line in lines), lines  # fmt: skip
