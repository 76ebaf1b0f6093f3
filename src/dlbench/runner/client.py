"""Parent side of the worker protocol: start workers, send cases, enforce the timeout, classify deaths.

Two isolations, both one process per case:
- "fork": one serving worker per backend imports the framework once and forks a child per case;
- "spawn": a fresh interpreter per case (pays the framework import every time; for backends not fork-safe).
With a memory limit, the parent also watches the case's RSS while it waits and kills it at the cap (`oom`):
see runner/memory_limit.py.

A serving worker can die under a case (the kernel's OOM killer sends SIGKILL to the biggest process, which may be
the server rather than its child): the parent notices within POLL_S, kills the orphaned case, records it as an error
naming the signal, and starts a new server for the next case. After MAX_SERVER_RESTARTS restarts it gives up on
the backend: its remaining cases are errors, and `fault` says why (the session marks the run failed). Workers die
with their parent (runner/worker.py), so a `kill -9` of dlbench leaves none behind.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from dlbench.core.cases import Case, MeasureConfig
from dlbench.core.units import format_size
from dlbench.runner.memory_limit import POLL_S, MemoryWatch, kernel_oom_kills
from dlbench.runner.protocol import PROTOCOL_VERSION, ProtocolError, decode, kill_group

START_TIMEOUT_S = 600.0  # importing a framework on a cold disk can take minutes
GRACE_S = 10.0  # how long a killed worker may take to be reported dead
MAX_SERVER_RESTARTS = 3  # a backend whose serving worker dies more often than this gets no more cases


class _Reader:
    """Newline-delimited messages from a pipe, with deadlines."""

    def __init__(self, fd: int) -> None:
        self.fd, self.buffer, self.eof = fd, b"", False

    def read(self, deadline: float) -> dict[str, Any] | None:
        """The next message; None at end of file; TimeoutError past the deadline."""
        while b"\n" not in self.buffer:
            if self.eof:
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            ready, _, _ = select.select([self.fd], [], [], min(remaining, 1.0))
            if ready:
                chunk = os.read(self.fd, 1 << 20)
                if not chunk:
                    self.eof = True
                self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return decode(line)


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def _log_tail(path: Path, limit: int = 3000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return text[-limit:]


def _death(
    exit_status: int | None, log: Path, killed_by_us: bool, oom_kills: tuple[int | None, int | None] = (None, None)
) -> dict[str, Any]:
    """The result of a worker that ended without reporting one. `oom_kills` is the kernel's count of
    out-of-memory kills (/proc/vmstat oom_kill) before and after the case: a SIGKILL that dlbench did not send,
    while that count rose, is the kernel's OOM killer (counted machine-wide, so this is strong evidence, not
    proof; where the count cannot be read the death stays an error)."""
    tail = _log_tail(log)
    if exit_status is not None and exit_status < 0:
        name = _signal_name(exit_status)
        error = f"worker crashed: killed by {name}"
        if name == "SIGKILL" and not killed_by_us:
            before, after = oom_kills
            if before is not None and after is not None and after > before:
                return {"status": "oom", "log_tail": tail, "error": "worker killed by SIGKILL from the kernel's "
                        f"out-of-memory killer (/proc/vmstat oom_kill rose from {before} to {after} during the case)"}
            error += " (not sent by dlbench: the kernel's out-of-memory killer is the usual sender)"
    else:
        error = f"worker exited with status {exit_status} without reporting a result"
    return {"status": "error", "error": error, "log_tail": tail}


class WorkerClient:
    """Runs the cases of one backend, each in its own worker process."""

    def __init__(
        self,
        backend: str,
        log_dir: Path,
        cpus: list[int] | None = None,
        isolation: str = "fork",
        python: str = sys.executable,
        memory_limit: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.backend, self.log_dir, self.cpus, self.isolation, self.python = backend, log_dir, cpus, isolation, python
        self.env = dict(env or {})  # extra variables for its workers (another interpreter's: see dlbench.envs)
        self.memory_limit = memory_limit  # bytes of RSS a case may hold (runner/memory_limit.py); None: no cap
        self.server: subprocess.Popen[bytes] | None = None
        self.reader: _Reader | None = None
        self.import_s: float | None = None
        self.counter = 0
        self.server_deaths: list[str] = []  # why each serving worker died under us (not killed by us)
        self.fault: str | None = None  # set once this backend is given up: why; its remaining cases are errors

    # -- process plumbing ---------------------------------------------------------------------------------

    def _popen(self, extra: list[str], log: Path) -> tuple[subprocess.Popen[bytes], _Reader]:
        read_fd, write_fd = os.pipe()
        command = [self.python, "-m", "dlbench.runner.worker", "--result-fd", str(write_fd),
                   "--parent-pid", str(os.getpid()), *extra]  # fmt: skip
        if self.cpus:
            command += ["--cpus", ",".join(map(str, self.cpus))]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1", **self.env}
        with open(log, "ab") as out:
            process = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT,
                pass_fds=(write_fd,), start_new_session=True, env=env, cwd=self.log_dir,
            )  # fmt: skip
            # cwd: `python -m` puts the working folder first on sys.path, so a numpy.py planted where dlbench was
            # started would be imported by every worker; the session's log folder is private (mkdtemp, 0700).
        os.close(write_fd)
        return process, _Reader(read_fd)

    def _start_server(self) -> bool:
        log = self.log_dir / f"{self.backend}-server.log"
        self.server, self.reader = self._popen(["--serve", self.backend], log)
        try:
            ready = self.reader.read(time.monotonic() + START_TIMEOUT_S)
        except (TimeoutError, ProtocolError):
            ready = None
        if not ready or ready.get("kind") != "ready" or not ready.get("ok"):
            # Importing the framework failed or hung: each case will then run (and fail) on its own.
            self.close()
            self.isolation = "spawn"
            return False
        self.import_s = ready.get("import_s")
        return True

    def close(self) -> None:
        """Kill the serving worker (its process group) and free its pipes. Never raises: the worker may be dead
        already, and closing its stdin then fails to flush a request it never read (BrokenPipeError)."""
        if self.server is not None:
            kill_group(self.server.pid)
            try:
                self.server.wait(GRACE_S)
            except subprocess.TimeoutExpired:
                pass
            if self.server.stdin:
                try:
                    self.server.stdin.close()
                except OSError:
                    pass
        if self.reader is not None:
            try:
                os.close(self.reader.fd)
            except OSError:
                pass
        self.server, self.reader = None, None

    def _server_lost(self) -> str:
        """The serving worker ended without being asked: reap it, count it (giving up on the backend after
        MAX_SERVER_RESTARTS restarts) and say how it died."""
        assert self.server is not None
        try:
            code: int | None = self.server.wait(GRACE_S)
        except subprocess.TimeoutExpired:
            code = None
        if code is None:
            what = "serving worker stopped answering"
        elif code < 0:
            what = f"serving worker killed by {_signal_name(code)}"
            if code == -signal.SIGKILL:
                what += " (not sent by dlbench: the kernel's out-of-memory killer is the usual sender)"
        else:
            what = f"serving worker exited with status {code}"
        self.close()
        self.server_deaths.append(what)
        if len(self.server_deaths) > MAX_SERVER_RESTARTS:
            self.fault = (f"the {self.backend} serving worker died {len(self.server_deaths)} times (last: {what}); "
                          f"its remaining cases were recorded as errors, not run")  # fmt: skip
        return what

    # -- running one case ---------------------------------------------------------------------------------

    def run(
        self, case: Case, config: MeasureConfig, timeout_s: float, task: str = "measure", target: str = "",
        args: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The case's result document. Never raises for a failing case; KeyboardInterrupt passes through.
        `task` is "measure", "verify" or "call" (run the worker-side function `target` with `args`)."""
        self.counter += 1
        log = self.log_dir / f"{self.counter:05d}-{case.backend}.log"
        request: dict[str, Any] = {
            "protocol": PROTOCOL_VERSION, "task": task, "case": case.to_dict(), "measure": config.to_dict(),
            "log_path": str(log),
        }  # fmt: skip
        if task == "call":
            request.update(target=target, args=args or {})
        started = time.monotonic()
        if self.isolation == "fork" and self.server is not None and self.server.poll() is not None:
            self._server_lost()  # it died between cases: no case lost, a new one starts below
        if self.fault is not None:
            return {"status": "error", "error": f"not run: {self.fault}", "wall_s": 0.0, "isolation": self.isolation}
        if self.isolation == "fork" and (self.server is not None or self._start_server()):
            result = self._run_forked(request, log, timeout_s)
        else:
            result = self._run_spawned(request, log, timeout_s)
        result.setdefault("wall_s", time.monotonic() - started)
        result.setdefault("isolation", self.isolation)
        return result

    def _run_forked(self, request: dict[str, Any], log: Path, timeout_s: float) -> dict[str, Any]:
        assert self.server is not None and self.server.stdin is not None and self.reader is not None
        try:
            self.server.stdin.write((json.dumps(request) + "\n").encode())
            self.server.stdin.flush()
            started = self.reader.read(time.monotonic() + 60)
            if not started or started.get("kind") != "started":
                raise ProtocolError(f"serving worker did not start the case: {started!r}")
        except (OSError, TimeoutError, ProtocolError) as exc:  # it died (or hangs: then it is killed) as it forked
            what = self._server_lost()
            return {"status": "error", "error": f"{what} as the case started ({exc})", "log_tail": _log_tail(log)}
        return self._collect(self.reader, started["pid"], log, timeout_s, forked=True)

    def _run_spawned(self, request: dict[str, Any], log: Path, timeout_s: float) -> dict[str, Any]:
        process, reader = self._popen([], log)
        try:
            assert process.stdin is not None
            process.stdin.write((json.dumps(request) + "\n").encode())
            process.stdin.close()
            return self._collect(reader, process.pid, log, timeout_s, forked=False, process=process)
        finally:
            if process.poll() is None:
                kill_group(process.pid)
                process.wait()
            os.close(reader.fd)

    def _collect(
        self,
        reader: _Reader,
        pid: int,
        log: Path,
        timeout_s: float,
        forked: bool,
        process: subprocess.Popen[bytes] | None = None,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        watch = MemoryWatch(pid, self.memory_limit) if self.memory_limit else None
        oom_kills_before = kernel_oom_kills()
        result: dict[str, Any] | None = None
        exit_status: int | None = None
        killed = capped = server_lost = False
        server = self.server if forked else None
        try:
            while True:
                try:
                    if killed:
                        message = reader.read(time.monotonic() + GRACE_S)
                    else:  # the cap is watched until the case has reported, the serving worker until it finishes
                        message = _read_watched(reader, deadline, watch if result is None else None, server)
                except _ServerDied:
                    server_lost = True
                    break
                except TimeoutError:
                    if killed:  # the serving worker itself is stuck
                        self.close()
                        break
                    kill_group(pid)
                    killed = True
                    continue
                except _CapReached:
                    kill_group(pid)
                    killed = capped = True
                    continue
                if message is None:  # end of file: a spawned worker has exited, or the serving worker died
                    server_lost = forked and self.server is not None
                    break
                kind = message.get("kind")
                if kind == "started" and not forked:
                    continue
                if kind == "result":
                    result = message["result"]
                    if not forked:
                        break
                elif kind == "finished":
                    exit_status = message["exit_status"]
                    break
        except ProtocolError as exc:
            kill_group(pid)
            if forked:
                self.close()  # a torn message leaves the shared pipe unusable: start a fresh server
            return {"status": "error", "error": str(exc), "log_tail": _log_tail(log)}
        except BaseException:
            kill_group(pid)  # Ctrl-C: leave no worker behind
            raise
        if server_lost:  # the case, orphaned, may still run (where it could not die with its parent)
            kill_group(pid)
            what = self._server_lost()
            if result is None:  # a result it reported before the server died stands: the case was complete
                result = {"status": "error", "error": f"{what} while the case ran; the next case starts a new one"}
        if process is not None:
            try:
                exit_status = process.wait(GRACE_S)
            except subprocess.TimeoutExpired:
                kill_group(pid)
                exit_status = process.wait()
        if capped and result is None:
            assert watch is not None
            result = {"status": "oom", "error": watch.error()}
        elif killed and result is None:
            result = {"status": "timeout", "error": f"no result within the {timeout_s:g} s timeout; worker killed"}
        elif result is None:
            result = _death(exit_status, log, killed_by_us=killed, oom_kills=(oom_kills_before, kernel_oom_kills()))
        if watch is not None:
            result["memory_watch"] = watch.document()
            own_peak = (result.get("memory") or {}).get("rss_peak_bytes") or 0
            if result.get("status") == "ok" and own_peak >= watch.limit_bytes:
                # The watcher samples; a case can cross the cap and end between two samples (a loaded machine
                # delays the watcher). Its own high-water mark is exact: over the cap is out of memory all the same.
                result.update(status="oom", error=f"exceeded the --memory-limit of {format_size(watch.limit_bytes)} "
                              f"between the watcher's samples (the case's own peak RSS: {format_size(own_peak)})")
        if result.get("status") != "ok":
            result.setdefault("log_tail", _log_tail(log))
        return result


class _CapReached(Exception):
    """The watched case's RSS reached the --memory-limit."""


class _ServerDied(Exception):
    """The serving worker that forked the case has exited."""


SERVER_POLL_S = 0.2  # how often a forked case's serving worker is checked for life while the case runs


def _read_watched(
    reader: _Reader, deadline: float, watch: MemoryWatch | None, server: subprocess.Popen[bytes] | None = None
) -> dict[str, Any] | None:
    """The reader's next message; while none comes, the case's RSS is sampled every POLL_S (_CapReached) and the
    serving worker checked every SERVER_POLL_S (_ServerDied)."""
    if watch is None and server is None:
        return reader.read(deadline)
    poll_s = POLL_S if watch is not None else SERVER_POLL_S
    while True:
        try:
            return reader.read(min(deadline, time.monotonic() + poll_s))
        except TimeoutError:
            if time.monotonic() >= deadline:
                raise
            if server is not None and server.poll() is not None:
                raise _ServerDied from None
            if watch is not None:
                watch.sample()
                if watch.over:
                    raise _CapReached from None
