"""The one runner session every command drives its workers through.

A session owns the worker processes of one command and, when the command records a run, that run in the store:

    placement = Placement(cpus=[0], memory_limit=4 << 30)
    with open_run(store, "probe", [], settings, placement) as session:
        document = session.call(case, "dlbench.probe.worker:probe_layer", {"layer": "conv2d"}, timeout_s)
        session.add_finding("probe", key, document)

- Placement: how a backend spec's workers run, chosen here once for every command: the interpreter (dlbench's
  own, a managed env, or a --python path), the isolation (a forked child of a serving worker per case, or a
  fresh interpreter per case; spawn for backends that are not fork-safe), the CPUs they are pinned to and the
  memory cap the parent enforces.
- Workers: one serving worker at a time (plans group cases by backend), closed when the next spec starts and
  when the session ends; every case, verification or call runs in a process of its own. A backend that is not
  installed (here or in its interpreter) is answered `unsupported` with the reason, and no worker starts.
- The run: open_run() is the only function that creates one (run id, fingerprint, plan, settings); resume_run()
  reopens one. Its status is "running" while the session is open, "complete" when the session closes normally,
  "interrupted" when Ctrl-C or SIGTERM closes it, and "failed" when a fault does: the store became unwritable
  (disk full, an I/O error) or its file was truncated, replaced or removed under the run, a backend's serving
  worker kept dying, or an unexpected exception. What was stored stays stored; a fault of the store or the workers
  ends the session with RunFailed (one line: what happened, how many cases are stored, how to resume).
- Ownership: the process running a run records itself in the store (host, pid, process start time) for as long as
  its session is open, so `--resume` of a run that is still running elsewhere is refused (both would time the
  same cases on the same cores), while a run whose process died (`kill -9`, a reboot) can be resumed.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import psutil

from dlbench.backends import env_vars, framework_modules, get_backend
from dlbench.core.cases import Case, MeasureConfig
from dlbench.core.errors import UsageError, unknown
from dlbench.core.units import parse_size
from dlbench.measure.device_memory import DEVICE_MEMORY_ENV, PRESETS
from dlbench.measure.disturbance import allowed_cpus, outside_share_now
from dlbench.measure.env import fingerprint
from dlbench.runner.client import WorkerClient
from dlbench.runner.faults import RunFailed
from dlbench.runner.interpreters import Interpreter, environments_fingerprint
from dlbench.runner.verification import verification_record
from dlbench.store import Store

ISOLATIONS = ("fork", "spawn")
QUIET_PROBE_S = 0.25  # how long --wait-quiet looks at the CPUs before each judgement
SQLITE_MAGIC = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite file


@dataclass(frozen=True)
class Placement:
    """Where and how a command's workers run. `placement()` validates what a user gives."""

    cpus: list[int] | None = None  # pin every worker to these CPUs (None: all this process may use)
    isolation: str = "fork"  # fork: a serving worker forks a child per case; spawn: a fresh interpreter per case
    memory_limit: int | None = None  # bytes of RSS a case may hold (runner/memory_limit.py); None: no cap
    interpreters: Mapping[str, Interpreter] = field(default_factory=dict)  # backend spec -> another interpreter
    device_memory: int | None = None  # bytes of GPU memory a case may use (measure/device_memory.py); None: all
    emulate: str = ""  # the preset that gave device_memory (`titanx-pascal`), if one did

    def settings(self) -> dict[str, Any]:
        """How a run's settings record it."""
        return {"cpus": self.cpus, "isolation": self.isolation, "memory_limit_bytes": self.memory_limit,
                "interpreters": {spec: i.to_dict() for spec, i in self.interpreters.items()},
                "device_memory_bytes": self.device_memory, "emulate": self.emulate}  # fmt: skip

    def worker_env(self) -> dict[str, str]:
        """What every worker's environment carries for this placement."""
        return {DEVICE_MEMORY_ENV: str(self.device_memory)} if self.device_memory else {}


def check_cpus(cpus: list[int] | tuple[int, ...] | None) -> list[int] | None:
    """CPU ids to pin workers to, each one this process may use; sorted, once each. UsageError naming the bad ids."""
    if cpus is None:
        return None
    allowed = allowed_cpus()
    bad = [c for c in cpus if c not in allowed]
    if bad or not cpus:
        raise UsageError(f"bad --cpus {','.join(map(str, cpus))}: allowed CPU ids are {sorted(allowed)}")
    return sorted(set(cpus))


CUDA_MEMORY_LIMIT = ("--memory-limit caps a case's host memory (its process's RSS), not a GPU's: on cuda it would "
                     "pass for a device limit it is not; run on cpu, or leave it out")  # fmt: skip


def memory_limit_bytes(limit: int | str | None) -> int | None:
    """A --memory-limit as bytes: "4GiB", "512MiB", "8G" or a number of bytes; None for no cap."""
    if limit is None:
        return None
    if isinstance(limit, str):
        return parse_size(limit)
    if isinstance(limit, bool) or limit < 2**20:
        raise UsageError(f"bad --memory-limit {limit!r}: must be at least 1MiB (1048576 bytes)")
    return int(limit)


CPU_DEVICE_MEMORY = ("{option} caps a GPU's memory, and this run's device is cpu: on the CPU --memory-limit stands "
                     "for a smaller device")  # fmt: skip


def device_memory_bytes(size: int | str | None, emulate: str | None) -> tuple[int | None, str]:
    """(bytes, preset) of --device-memory SIZE or --emulate NAME (at most one of them); (None, "") for neither."""
    if size is not None and emulate:
        raise UsageError("give --device-memory or --emulate, not both: --emulate names a card, and so its memory")
    if emulate:
        if emulate not in PRESETS:
            raise unknown("--emulate card", emulate, sorted(PRESETS))
        return PRESETS[emulate][0], emulate
    if size is None:
        return None, ""
    value = parse_size(size, "--device-memory") if isinstance(size, str) else size
    if isinstance(value, bool) or not isinstance(value, int) or value < 2**28:
        raise UsageError(f"bad --device-memory {size!r}: must be at least 256MiB")
    return value, ""


def placement(
    cpus: list[int] | tuple[int, ...] | None = None,
    isolation: str = "fork",
    memory_limit: int | str | None = None,
    interpreters: Mapping[str, Interpreter] | None = None,
    device_memory: int | str | None = None,
    emulate: str | None = None,
) -> Placement:
    """A validated Placement: the same rules for --cpus, --isolation, --memory-limit, --device-memory and
    --emulate in every command."""
    if isolation not in ISOLATIONS:
        raise unknown("isolation", isolation, ISOLATIONS)
    cap, preset = device_memory_bytes(device_memory, emulate)
    return Placement(check_cpus(cpus), isolation, memory_limit_bytes(memory_limit), dict(interpreters or {}),
                     cap, preset)  # fmt: skip


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


class Session:
    """The workers of one command, and the run they record (if any). Use as a context manager."""

    def __init__(
        self, placement: Placement, store: Store | None = None, run_id: str | None = None, owns_run: bool = True
    ) -> None:
        self.placement, self.store, self.run_id = placement, store, run_id
        self.owns_run = owns_run  # False: one of several sessions writing a run whose status its driver keeps
        self._clients: dict[str, WorkerClient] = {}
        self._logs: Path | None = None
        self.faults: list[str] = []  # why a backend was given up (its serving worker kept dying): the run failed
        self._store_fd: int | None = None  # the store's file, held open to check it is still there (_check_store)
        self._store_checked = False  # whether it began as an SQLite file (else there is nothing to compare with)

    # -- lifetime -----------------------------------------------------------------------------------------

    def __enter__(self) -> Session:
        self._logs = Path(tempfile.mkdtemp(prefix="dlbench-logs-"))
        if self.store is not None:
            try:
                self._store_fd = os.open(self.store.path, os.O_RDONLY)
                self._store_checked = os.pread(self._store_fd, len(SQLITE_MAGIC), 0) == SQLITE_MAGIC
            except OSError:
                pass
        if self.store is not None and self.run_id is not None and self.owns_run:
            self.store.set_run_status(self.run_id, "running")
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        failure: str | None = None
        try:
            self.close_workers()
            if self._logs is not None:
                shutil.rmtree(self._logs, ignore_errors=True)
            if self.store is not None and self.run_id is not None and self.owns_run:
                if isinstance(exc, (sqlite3.Error, _StoreLost)):
                    failure = self._store_failure(exc)
                elif kind is None and self.faults:
                    failure = f"run {self.run_id} failed: {'; '.join(self.faults)}{self._count()}"
                status = "interrupted" if kind is KeyboardInterrupt else "failed" if kind or failure else "complete"
                try:
                    self.store.set_run_status(self.run_id, status)
                    self.store.release_run(self.run_id)
                except sqlite3.Error:
                    if failure is None:
                        raise
                    # the store is what failed: it stays "running", owned by a process that is gone (resumable)
        finally:
            if self.store is not None:
                try:
                    self.store.close()
                except sqlite3.Error:
                    pass
            if self._store_fd is not None:  # only now: closing any descriptor of a file drops the process's locks
                os.close(self._store_fd)
                self._store_fd = None
        if failure is not None:
            raise RunFailed(failure, self.run_id, str(self.store.path) if self.store else None) from exc

    def close_workers(self) -> None:
        for client in self._clients.values():
            client.close()
            if client.fault is not None:
                self.faults.append(client.fault)
        self._clients.clear()

    # -- workers ------------------------------------------------------------------------------------------

    def interpreter(self, spec: str) -> Interpreter | None:
        """The other interpreter a backend spec runs in; None: dlbench's own."""
        return self.placement.interpreters.get(spec)

    def available(self, case: Case) -> tuple[bool, str]:
        """Whether the case's backend is installed where its workers run (never imports a framework)."""
        info, interpreter = get_backend(case.backend), self.interpreter(case.backend_spec)
        return interpreter.available(info) if interpreter is not None else info.available()

    def _client(self, case: Case) -> WorkerClient:
        spec = case.backend_spec
        if spec not in self._clients:
            self.close_workers()  # plans group cases by backend: free the idle serving worker first
            assert self._logs is not None, "a Session is used inside `with`"
            logs = self._logs / spec
            logs.mkdir(exist_ok=True)
            info, interpreter = get_backend(case.backend), self.interpreter(spec)
            isolation = self.placement.isolation if info.fork_safe else "spawn"
            self._clients[spec] = WorkerClient(
                case.backend, logs, self.placement.cpus, isolation,
                python=interpreter.python if interpreter is not None else sys.executable,
                memory_limit=self.placement.memory_limit,
                env={**(interpreter.worker_env() if interpreter is not None else {}), **self.placement.worker_env()},
            )  # fmt: skip
        return self._clients[spec]

    def _unsupported(self, case: Case) -> dict[str, Any] | None:
        ok, reason = self.available(case)
        return None if ok else {"status": "unsupported", "error": reason}

    def _with_interpreter(self, case: Case, document: dict[str, Any]) -> dict[str, Any]:
        interpreter = self.interpreter(case.backend_spec)
        if interpreter is not None:  # which interpreter measured it, with the document
            document.setdefault("interpreter", interpreter.to_dict())
        return document

    def measure(self, case: Case, config: MeasureConfig, timeout_s: float) -> dict[str, Any]:
        """Time one case in a worker process of its own: the worker's raw result document."""
        document = self._unsupported(case) or self._client(case).run(case, config, timeout_s)
        return self._with_interpreter(case, document)

    def wait_quiet(self, case: Case, config: MeasureConfig) -> float:
        """Wait until the CPUs the case will run on are quiet (others use at most config.max_outside_share of
        them over a quarter second), at most config.wait_quiet_s: the seconds waited."""
        cpus = self.placement.cpus or allowed_cpus()
        own = [os.getpid(), *(c.server.pid for c in self._clients.values() if c.server is not None)]
        start = time.monotonic()
        while time.monotonic() - start < config.wait_quiet_s:
            share = outside_share_now(cpus, QUIET_PROBE_S, own)
            if share is None or share <= config.max_outside_share:
                break
        return time.monotonic() - start

    def verify(self, case: Case, timeout_s: float) -> dict[str, Any]:
        """Verify the case's backend × workload × precision against the float64 reference at the case's size: a
        verification record (status, errors, tolerances, passed)."""
        document = self._unsupported(case) or self._client(case).run(case, MeasureConfig(), timeout_s, task="verify")
        return self._with_interpreter(case, verification_record(case, document))

    def call(self, case: Case, target: str, args: Mapping[str, Any], timeout_s: float) -> dict[str, Any]:
        """Run the worker-side function `target` ("dlbench.module:function") on the case's backend in a worker
        process of its own: function(case, backend, **args) -> its document (see runner/worker.py)."""
        unsupported = self._unsupported(case)
        if unsupported is not None:
            return unsupported
        return self._client(case).run(case, MeasureConfig(), timeout_s, task="call", target=target, args=dict(args))

    # -- the run ------------------------------------------------------------------------------------------

    def _run(self) -> tuple[Store, str]:
        if self.store is None or self.run_id is None:
            raise RuntimeError("this session records no run")
        return self.store, self.run_id

    def _check_store(self) -> None:
        """_StoreLost when the store's file is no longer the one this session opened: removed, replaced, truncated
        or overwritten. SQLite may not notice (in WAL mode it appends to the -wal file and reads its page cache),
        so without this check a run would go on "storing" results nobody can read back. The file is read through a
        descriptor held open for the session's life: opening and closing the file here would drop SQLite's POSIX
        locks on it (they belong to the process), letting another connection delete the live -wal file."""
        store, _ = self._run()
        if self._store_fd is None or not self._store_checked:
            return
        try:
            now = os.stat(store.path)
        except OSError:
            raise _StoreLost("was removed") from None
        held = os.fstat(self._store_fd)
        if (now.st_dev, now.st_ino) != (held.st_dev, held.st_ino):
            raise _StoreLost("was replaced by another file")
        if os.pread(self._store_fd, len(SQLITE_MAGIC), 0) != SQLITE_MAGIC:
            raise _StoreLost("was truncated or overwritten (it is no longer an SQLite file)")

    def _count(self) -> str:
        """The message's "; N of M cases stored", as far as the store can still say it."""
        store, run_id = self._run()
        try:
            return f"; {len(store.done_keys(run_id))} of {len(store.get_run(run_id)['plan'])} cases stored"
        except (sqlite3.Error, UsageError, ValueError):
            return ""

    def _store_failure(self, exc: BaseException) -> str:
        store, run_id = self._run()
        where = f"store {str(store.path)!r}"
        if isinstance(exc, _StoreLost):
            return f"run {run_id} failed: {where} {exc} during the run; what it held is lost, and so is this run"
        resume = f"; finish with: dlbench run --resume {run_id} --store {store.path}"
        return f"run {run_id} failed: cannot write {where}: {exc}{self._count()}{resume}"

    def add_result(self, case: Case, seq: int, document: dict[str, Any]) -> bool:
        store, run_id = self._run()
        added = store.add_result(run_id, case, seq, document)
        self._check_store()
        return added

    def add_attempt(self, case: Case, repetition: int, attempt: int, document: dict[str, Any]) -> bool:
        store, run_id = self._run()
        added = store.add_attempt(run_id, case, repetition, attempt, document)
        self._check_store()
        return added

    def attempts(self) -> dict[str, list[dict[str, Any]]]:
        """The run's stored attempts, case key -> documents (a resumed run goes on from them)."""
        store, run_id = self._run()
        return store.attempts(run_id)

    def add_verification(self, key: str, record: dict[str, Any]) -> None:
        store, run_id = self._run()
        store.add_verification(run_id, key, record)
        self._check_store()

    def verifications(self) -> dict[str, dict[str, Any]]:
        store, run_id = self._run()
        return store.verifications(run_id)

    def add_finding(self, kind: str, key: str, document: dict[str, Any]) -> bool:
        store, run_id = self._run()
        added = store.add_finding(run_id, kind, key, document)
        self._check_store()
        return added


class _StoreLost(Exception):
    """The store's file changed under a live session (see Session._check_store)."""


def _this_process() -> dict[str, Any]:
    """Who runs a run: host, pid and the process's start time (a pid alone may be reused after a reboot)."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "create_time": psutil.Process().create_time()}


def _alive(owner: dict[str, Any]) -> bool:
    """Whether the process an owner record names still runs: same host, same pid, same start time. An owner on
    another host cannot be checked from here, and counts as gone."""
    if owner.get("host") != socket.gethostname():
        return False
    try:
        return bool(abs(psutil.Process(int(owner["pid"])).create_time() - float(owner["create_time"])) < 0.01)
    except (psutil.Error, KeyError, TypeError, ValueError):
        return False


def _claim(store: Store, run_id: str) -> None:
    """Record this process as the run's owner; UsageError naming the owner if another live process holds it."""
    for _ in range(3):  # another process may claim or release between our read and our write: read again
        current = store.owner(run_id)
        if current is not None and _alive(current):
            raise UsageError(
                f"run {run_id} is still running in process {current['pid']} on this host: wait for it to end, or "
                f"stop it (kill {current['pid']}), before --resume"
            )
        if store.claim_run(run_id, _this_process(), replacing=current):
            return
    raise UsageError(f"run {run_id} is being resumed by another process")


def open_run(
    store_path: str | Path,
    suite: str,
    plan: list[Case],
    settings: dict[str, Any],
    placement: Placement,
    environment: dict[str, Any] | None = None,
) -> Session:
    """Create a run in the store (a new id, the fingerprint of the machine its cases run on: this one's unless
    `environment` gives another's, the plan and the settings, the placement's among them) and return the session
    that runs it. Call it only once everything is validated: it writes."""
    Store.check(store_path)  # a wrong store is the user's mistake, told before the fingerprint's work
    if environment is None:  # else measured where the cases run (a cluster's node: dlbench.cluster)
        environment = fingerprint(framework_modules(), env_vars())
        if placement.interpreters:  # each other interpreter: its path, Python version and packages, asked of it
            environment["environments"] = environments_fingerprint(placement.interpreters)
    store = Store(store_path)
    run_id = new_run_id()
    with _closed_on_failure(store):
        store.create_run(run_id, suite, plan, {**settings, **placement.settings()}, environment)
        _claim(store, run_id)
    return Session(placement, store, run_id)


def resume_run(store_path: str | Path, run_id: str, placement: Placement) -> Session:
    """The session that finishes a stored run (its cases with no result yet are the caller's to run). UsageError if
    the run is still running in another live process."""
    store = Store(store_path, create=False)
    with _closed_on_failure(store):
        _claim(store, run_id)
    return Session(placement, store, run_id)


@contextlib.contextmanager
def _closed_on_failure(store: Store) -> Iterator[None]:
    """Before a session owns the store: on any failure close it, and an SQLite error is RunFailed (nothing ran)."""
    try:
        yield
    except sqlite3.Error as exc:
        store.close()
        raise RunFailed(f"cannot write store {str(store.path)!r}: {exc}; nothing was run") from exc
    except BaseException:
        store.close()
        raise


__all__ = ["CUDA_MEMORY_LIMIT", "ISOLATIONS", "Placement", "Session", "check_cpus", "memory_limit_bytes",
           "new_run_id", "open_run", "placement", "resume_run"]  # fmt: skip
