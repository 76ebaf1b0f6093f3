"""Disturbance with real worker processes: a neighbour on the case's CPU is seen, the case is measured again later
and shows its clean attempt; a case that never gets a clean window ends flagged while the sweep goes on; --repeat
stores every process's samples. The neighbour is a busy process outside dlbench's process tree, pinned to the CPU
the cases are pinned to."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.unit.test_disturbance import start_neighbour

import dlbench
from dlbench.core.cases import Case
from dlbench.measure.disturbance import allowed_cpus

CPU = allowed_cpus()[-1]
MEASURE = {"min_time_s": 0.3, "max_time_s": 0.6, "min_iters": 5}
SIZES = {"seq_len": [5], "batch": [4], "hidden": [32]}


def _attempts(store: Path) -> list[dict[str, Any]]:
    db = sqlite3.connect(store)
    try:
        rows = db.execute("SELECT document FROM attempts ORDER BY case_key, repetition, attempt").fetchall()
    finally:
        db.close()
    return [json.loads(r[0]) for r in rows]


def test_a_neighbour_during_the_first_attempt_is_seen_and_the_case_measured_again(store_path: Path) -> None:
    neighbours: list[int] = []

    def on_event(kind: str, case: Case, document: dict[str, Any] | None) -> None:
        if kind == "start" and not neighbours:
            neighbours.append(start_neighbour(CPU))
        elif kind in ("attempt", "result") and neighbours:
            os.kill(neighbours[0], signal.SIGKILL)  # gone before the re-measurement

    try:
        run = dlbench.run("lstm", sets=SIZES, backends=["numpy"], modes=["forward"], cpus=[CPU], store=store_path,
                          measure={**MEASURE, "retries": 2}, verify=False, on_event=on_event)  # fmt: skip
    finally:
        for pid in neighbours:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    (result,) = run.results
    verdicts = [a["verdict"] for a in result.document["attempts"]]
    assert verdicts[0] == "disturbed" and verdicts[-1] == "clean", result.document["attempts"]
    assert result.flags == [] and result.rankable
    first = _attempts(store_path)[0]
    assert first["window"]["outside_share"] > 0.25 and first["window"]["cpus"] == [CPU]
    assert len(_attempts(store_path)) == len(verdicts)  # every attempt stored


def test_a_case_that_never_gets_a_clean_window_ends_flagged_and_nothing_is_lost(store_path: Path) -> None:
    pid = start_neighbour(CPU)
    try:
        run = dlbench.run("lstm", sets=SIZES, backends=["numpy"], cpus=[CPU], store=store_path,
                          measure={**MEASURE, "retries": 1}, verify=False)  # fmt: skip
    finally:
        os.kill(pid, signal.SIGKILL)
    assert run.status == "complete" and not run.missing and len(run.results) == 2
    for result in run.results:
        assert result.status == "ok" and result.flags == ["disturbed"] and not result.rankable
        assert result.untestable_reason() == "disturbed"
        assert len(result.document["attempts"]) == 2
    assert len(_attempts(store_path)) == 4
    shown = subprocess.run([sys.executable, "-m", "dlbench.cli", "show", "--store", str(store_path), "--format",
                            "markdown"], capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert "[disturbed]" in shown and "never ranked" in shown


def test_repeat_stores_every_process_samples(store_path: Path) -> None:
    argv = [sys.executable, "-m", "dlbench.cli", "run", "lstm", "--set", "seq_len=5", "--set", "batch=4", "--set",
            "hidden=32", "--backends", "numpy", "--modes", "forward", "--repeat", "2", "--min-time", "0.2",
            "--retries", "0", "--no-verify", "--store", str(store_path), "--format", "json"]  # fmt: skip
    # --retries 0: on a busy machine a disturbed process would be measured again (a third attempt row); this test
    # is about both repetitions' samples being stored, the retries have tests of their own above.
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    (result,) = json.loads(out)["results"]
    reps = result["repetitions"]
    assert len(reps) == 2 and reps[0]["pid"] != reps[1]["pid"] and all(r["samples_s"] for r in reps)
    assert result["samples_s"] == reps[0]["samples_s"] + reps[1]["samples_s"]
    stored = _attempts(store_path)
    assert [(a["repetition"], a["pid"]) for a in stored] == [(1, reps[0]["pid"]), (2, reps[1]["pid"])]
    attempts = subprocess.run([sys.executable, "-m", "dlbench.cli", "show", "--attempts", "--store", str(store_path),
                               "--format", "json"], capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert [a["samples_s"] for a in json.loads(attempts)] == [r["samples_s"] for r in reps]


def test_wait_quiet_waits_for_a_neighbour_to_leave_and_no_longer(store_path: Path) -> None:
    """A neighbour on the case's CPU for about a second: --wait-quiet 20 waits about that long, then the case is
    timed in a clean window; the seconds waited are stored with the attempt."""
    neighbour = start_neighbour(CPU, seconds=1.2)
    try:
        run = dlbench.run("lstm", sets=SIZES, backends=["numpy"], modes=["forward"], cpus=[CPU], store=store_path,
                          measure={**MEASURE, "wait_quiet_s": 20.0, "retries": 0}, verify=False)  # fmt: skip
    finally:
        try:
            os.kill(neighbour, signal.SIGKILL)
        except ProcessLookupError:
            pass
    (attempt,) = _attempts(store_path)
    assert 0.3 < attempt["waited_quiet_s"] < 10, attempt["waited_quiet_s"]
    assert attempt["disturbance"]["verdict"] == "clean" and run.results[0].flags == []
