"""Ctrl-C stops a real `dlbench run` cleanly, keeps what was measured; --resume finishes only what is missing."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

import dlbench

CLI = [sys.executable, "-m", "dlbench.cli"]


def _stored(store: Path) -> list[tuple[str, float]]:
    if not store.exists():
        return []
    db = sqlite3.connect(store)
    try:
        return db.execute("SELECT case_key, recorded_at FROM results ORDER BY seq").fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        db.close()


def test_ctrl_c_then_resume(store_path: Path) -> None:
    # quick has 4 numpy cases; each step sleeps 0.3 s, so a case takes ~1.5 s: time to interrupt mid-run. No
    # retries: on a busy machine a disturbed case would be measured again at the end of the sweep, so every result
    # would arrive at the end together and there would be no "mid-run" to interrupt (this test is about Ctrl-C).
    argv = [*CLI, "run", "quick", "--backends", "numpy", "--option", "sleep_s=0.3", "--retries", "0",
            "--store", str(store_path)]  # fmt: skip
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not _stored(store_path) and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)  # what Ctrl-C sends to the foreground process
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    before = _stored(store_path)
    assert 1 <= len(before) < 4
    run = dlbench.load_run(store=store_path)
    assert run.status == "interrupted" and len(run.missing) == 4 - len(before)
    assert f"dlbench run --resume {run.run_id}" in err
    assert "Traceback" not in err

    resumed = subprocess.run([*CLI, "run", "--resume", run.run_id, "--store", str(store_path), "--format", "csv"],
                             capture_output=True, text=True, timeout=120)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    after = _stored(store_path)
    assert len(after) == 4 and len({key for key, _ in after}) == 4  # nothing duplicated
    assert after[: len(before)] == before or set(before) <= set(after)  # nothing measured before was redone
    final = dlbench.load_run(run.run_id, store_path)
    assert final.status == "complete" and not final.missing
    assert all(r.status == "ok" for r in final.results)
    assert resumed.stdout.count("\n") == 5  # CSV: header + 4 cases


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_no_orphan_workers_after_interrupt(store_path: Path, signum: int) -> None:
    argv = [*CLI, "run", "quick", "--backends", "numpy", "--option", "fault=hang", "--timeout", "60",
            "--store", str(store_path)]  # fmt: skip
    marker = f"DLBENCH_TEST_MARK={uuid.uuid4()}"  # inherited by every worker this run starts
    env = dict(os.environ, DLBENCH_TEST_MARK=marker.partition("=")[2])
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    time.sleep(3)  # the first case is hanging inside its worker now
    assert _marked(marker), "expected the run's workers to be alive before the interrupt"
    process.send_signal(signum)  # Ctrl-C, or `kill PID`
    process.communicate(timeout=30)
    assert process.returncode == 130
    time.sleep(0.5)
    assert _marked(marker) == []


def _marked(marker: str) -> list[int]:
    """Live processes whose environment carries `marker`."""
    pids = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker.encode() in environ.read_bytes().split(b"\0"):
                pids.append(int(environ.parent.name))
        except OSError:
            continue
    return pids
