"""Faults outside a case, with real processes: a serving worker killed under a case (as the kernel's OOM killer does),
`kill -9` of dlbench itself, a second `--resume` of a live run, a disk that fills and a store file truncated,
overwritten or removed under a live sweep. Each must end in a completed run or a non-zero exit with one line (never
a traceback, never a silent exit 0), leave no worker behind, record what happened as the run's status where the
store can still say it, and let `--resume` finish the run with every case stored exactly once."""

from __future__ import annotations

import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

import dlbench

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "dlbench.cli"]
BATCHES = (1, 2, 3, 4)  # one tiny LSTM case per batch size; each step sleeps, so a case lasts ~0.5 s or more


def _argv(store: Path, sleep_s: float, batches: tuple[int, ...] = BATCHES, *extra: str) -> list[str]:
    return [*CLI, "run", "lstm", "--backends", "numpy", "--set", "seq_len=2", "--set",
            f"batch={','.join(map(str, batches))}", "--set", "hidden=4", "--modes", "forward", "--precisions", "fp32",
            "--no-verify", "--min-time", "0", "--max-time", "0.2", "--retries", "0", "--option", f"sleep_s={sleep_s}",
            "--store", str(store), *extra]  # fmt: skip


def _start(argv: list[str], **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def _results(store: Path) -> list[tuple[str, str, str]]:
    """(case key, status, error) of every stored result, duplicates included; [] while the store is unreadable."""
    if not store.exists():
        return []
    db = sqlite3.connect(store)
    try:
        rows = db.execute("SELECT case_key, status, document FROM results ORDER BY seq").fetchall()
    except sqlite3.DatabaseError:
        return []
    finally:
        db.close()
    return [(key, status, json.loads(doc).get("error") or "") for key, status, doc in rows]


def _wait(condition: Callable[[], Any], timeout_s: float = 30.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what or condition}")


def _serving_worker(parent: int) -> psutil.Process | None:
    """The parent's serving worker, once it has forked a case (a case is running)."""
    try:
        for child in psutil.Process(parent).children():
            if "--serve" in child.cmdline() and child.children():
                return child
    except psutil.Error:
        pass
    return None


def _case_running(parent: int) -> bool:
    """A case runs: a worker of `parent` has a child (fork), or a spawned worker has its request (spawn)."""
    try:
        workers = psutil.Process(parent).children()
        return any(w.children() for w in workers) or any("--serve" not in w.cmdline() for w in workers)
    except psutil.Error:
        return False


def _one_line_error(stderr: str) -> str:
    """The command's own last word: one line, `dlbench: error: ...`, and no traceback anywhere."""
    assert "Traceback" not in stderr, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("dlbench: error: "), stderr
    return last


def _resume(store: Path, run_id: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "run", "--resume", run_id, "--store", str(store), "--format", "csv", *extra],
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def _each_case_once(store: Path, run_id: str) -> dlbench.Run:
    keys = Counter(key for key, _, _ in _results(store))
    run = dlbench.load_run(run_id, store)
    assert set(keys) == {c.key for c in run.plan} and set(keys.values()) == {1}, keys  # none lost, none twice
    return run


def test_serving_worker_killed_under_a_case_is_that_cases_error_and_a_new_one_serves_the_rest(store_path: Path) -> None:
    process = _start(_argv(store_path, 0.3))
    server = _wait(lambda: _serving_worker(process.pid), what="a case running in the serving worker")
    server.kill()  # SIGKILL, as the OOM killer sends it: no chance to clean up
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "Traceback" not in err
    results = _results(store_path)
    killed = [r for r in results if r[1] != "ok"]
    assert len(killed) == 1 and "serving worker killed by SIGKILL" in killed[0][2], results
    assert len(results) == len(BATCHES)  # the cases after it ran, in a new serving worker
    run = dlbench.load_run(store=store_path)
    assert run.status == "complete" and not run.missing
    resumed = _resume(store_path, run.run_id)
    assert resumed.returncode == 0 and "no missing cases" in resumed.stderr
    _each_case_once(store_path, run.run_id)

    read, write = os.pipe()  # `dlbench show ... | head -0`: a reader that left is no failure
    os.close(read)
    shown = subprocess.run([*CLI, "show", run.run_id, "--store", str(store_path), "--format", "json"], stdout=write,
                           stderr=subprocess.PIPE, text=True, timeout=60)  # fmt: skip
    os.close(write)
    assert (shown.returncode, shown.stderr) == (0, "")


def test_a_broken_pipe_that_is_not_stdout_is_a_failure(
    store_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from dlbench import cli
    from dlbench.runs import api

    def broken(store: Any = None) -> list[str]:
        raise BrokenPipeError(32, "Broken pipe")  # as writing to a dead worker's stdin raises it

    monkeypatch.setattr(api, "list_runs", broken)
    assert cli.main(["runs", "--store", str(store_path)]) == 1  # was 0: a silent success
    line = _one_line_error(capsys.readouterr().err)
    assert line == "dlbench: error: [Errno 32] Broken pipe (a pipe other than stdout broke)"


def test_a_serving_worker_that_keeps_dying_gives_up_its_backend_and_fails_the_run(store_path: Path) -> None:
    batches = (1, 2, 3, 4, 5, 6)
    process = _start(_argv(store_path, 0.3, batches))
    killed: set[int] = set()
    while process.poll() is None and len(killed) < 4:  # the first death and three restarts
        server = _serving_worker(process.pid)
        if server is not None and server.pid not in killed:
            server.kill()
            killed.add(server.pid)
        time.sleep(0.02)
    out, err = process.communicate(timeout=60)
    assert len(killed) == 4
    assert process.returncode == 1, err
    line = _one_line_error(err)
    assert "serving worker died 4 times" in line and f"of {len(batches)} cases stored" in line
    results = _results(store_path)
    statuses = Counter("not run" if "not run:" in error else status for _, status, error in results)
    assert statuses == {"error": 4, "not run": 2}, results  # every case recorded: 4 killed under, 2 given up
    run = dlbench.load_run(store=store_path)
    assert run.status == "failed"
    _each_case_once(store_path, run.run_id)


@pytest.mark.parametrize("isolation", ["fork", "spawn"])
def test_kill_9_of_dlbench_kills_its_workers_and_a_live_run_cannot_be_resumed_twice(
    store_path: Path, isolation: str
) -> None:
    process = _start(_argv(store_path, 600, (1, 2), "--timeout", "600", "--isolation", isolation))
    _wait(lambda: _case_running(process.pid), what="a hanging case")
    workers = psutil.Process(process.pid).children(recursive=True)
    assert workers
    run_id = _wait(lambda: dlbench.list_runs(store_path), what="the run").pop()

    refused = _resume(store_path, run_id)  # while its process lives: both would time the same cases
    assert refused.returncode == 2, refused.stderr
    line = _one_line_error(refused.stderr)
    assert run_id in line and f"process {process.pid}" in line

    process.kill()
    process.communicate(timeout=30)
    gone, alive = psutil.wait_procs(workers, timeout=5)
    assert not alive, [(p.pid, p.cmdline()) for p in alive]  # none adopted by PID 1, hanging forever
    assert dlbench.load_run(run_id, store_path).status == "running"  # it had no chance to say otherwise

    resumed = _resume(store_path, run_id, "--timeout", "1")  # its owner is dead: this one may take it over
    assert resumed.returncode == 0, resumed.stderr
    run = _each_case_once(store_path, run_id)
    assert run.status == "complete" and {r.status for r in run.results} == {"timeout"}


def test_a_serving_worker_whose_request_pipe_closes_kills_its_case_and_itself(tmp_path: Path) -> None:
    """The portable half of dying with the parent (no PR_SET_PDEATHSIG involved: the parent, this test, lives): the
    serving worker's watchdog sees its request pipe hang up while a case hangs, and kills the case and itself."""
    from dlbench.core.cases import Case, MeasureConfig
    from dlbench.runner.protocol import PROTOCOL_VERSION

    read, write = os.pipe()
    server = subprocess.Popen([sys.executable, "-m", "dlbench.runner.worker", "--result-fd", str(write), "--serve",
                               "numpy"], stdin=subprocess.PIPE, pass_fds=(write,), start_new_session=True)  # fmt: skip
    os.close(write)
    try:
        assert b'"ready"' in os.read(read, 1 << 16)
        size = {"seq_len": 2, "batch": 2, "hidden": 4}
        case = Case("lstm", size, "numpy", "fp32", "forward", options={"sleep_s": 600})
        request = {"protocol": PROTOCOL_VERSION, "task": "measure", "case": case.to_dict(),
                   "measure": MeasureConfig().to_dict(), "log_path": str(tmp_path / "case.log")}  # fmt: skip
        assert server.stdin is not None
        server.stdin.write((json.dumps(request) + "\n").encode())
        server.stdin.flush()
        (child,) = _wait(lambda: psutil.Process(server.pid).children(), what="the forked case")
        server.stdin.close()
        assert server.wait(5) == -signal.SIGKILL
        psutil.wait_procs([child], timeout=5)
        assert not child.is_running()
    finally:
        if server.poll() is None:
            server.kill()
        os.close(read)


def _wal_size(store: Path) -> int:
    try:
        return os.path.getsize(f"{store}-wal")
    except OSError:
        return 0


def test_disk_full_mid_run_ends_with_one_line_and_resume_finishes_it(store_path: Path) -> None:
    # A file-size limit makes the store's writes fail with EFBIG past a size, as a full disk fails them: the
    # limit is set on the live process once its first case is stored, a little above what the store holds then
    # (its -wal file, where every commit goes), so the next case's results do not fit and a status update does.
    # SIGXFSZ ignored, so a write past the limit fails with EFBIG instead of killing the process: an ignored
    # disposition survives exec (restore_signals=False keeps it). Not a preexec_fn: that forks in Python, and a
    # test process that imported JAX earlier warns (an error under pytest) on every fork.
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        process = _start(_argv(store_path, 0.3), restore_signals=False)
    finally:
        signal.signal(signal.SIGXFSZ, previous)
    _wait(lambda: _results(store_path), what="the first result")
    limit = _wal_size(store_path) + 12 * 1024
    resource.prlimit(process.pid, resource.RLIMIT_FSIZE, (limit, limit))
    out, err = process.communicate(timeout=60)
    assert process.returncode == 1, err
    line = _one_line_error(err)
    assert str(store_path) in line and "cannot write" in line and "--resume" in line
    stored = len(_results(store_path))
    assert 1 <= stored < len(BATCHES) and f"{stored} of {len(BATCHES)} cases stored" in line
    run = dlbench.load_run(store=store_path)
    assert run.status == "failed"
    assert not [p for p in psutil.process_iter(["cmdline"]) if str(store_path) in " ".join(p.info["cmdline"] or [])]

    resumed = _resume(store_path, run.run_id)  # no limit now
    assert resumed.returncode == 0, resumed.stderr
    run = _each_case_once(store_path, run.run_id)
    assert run.status == "complete" and all(r.status == "ok" for r in run.results)


def _truncate(path: Path) -> None:
    with open(path, "r+b") as file:
        file.truncate(0)


def _overwrite(path: Path) -> None:
    path.write_bytes(b"not a database " * 1000)


@pytest.mark.parametrize("damage", [_truncate, _overwrite, os.remove], ids=["truncated", "overwritten", "removed"])
def test_store_damaged_under_a_live_sweep_ends_the_run_with_one_line(
    store_path: Path, damage: Callable[[Path], None]
) -> None:
    process = _start(_argv(store_path, 0.3))
    _wait(lambda: _results(store_path), what="the first result")
    damage(store_path)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 1, err  # not "stored as run ...", exit 0
    line = _one_line_error(err)
    assert str(store_path) in line and "during the run" in line
