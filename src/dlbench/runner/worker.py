"""The worker: runs one case and reports it over the protocol pipe. Started by the runner, never by users.

    python -m dlbench.runner.worker --result-fd N                  one case, read as a request line on stdin
    python -m dlbench.runner.worker --result-fd N --serve BACKEND  import BACKEND once, then fork one child
                                                                   process per case (a "zygote")

Either way each case runs in a process of its own, so a crash, a hang or an OOM ends that case only, and its
peak RSS is its own: a forked child starts from the parent's post-import state, which is exactly the
framework's import baseline. Serving saves the framework's import time (seconds) on every case.

A request's `task` is "measure" (time the case), "verify" (compare with the float64 reference) or "call": run
the worker-side function `target` ("dlbench.module:function") as `function(case, backend, **args)`, with the case's
backend instantiated and configured, which returns the result document — how the probe's layers and the usability
probes run in a worker without a task of their own here. Every task loads, instantiates and configures the
backend the same way (`_run`), and a failure in any task is that request's result (status error/oom/unsupported).

A worker dies with its parent, even a `kill -9` of dlbench (which leaves no chance to clean up): on Linux the
kernel sends it SIGKILL when its parent exits (prctl PR_SET_PDEATHSIG, set again in each forked case, pointing at
the server); everywhere, a watchdog thread that sees its parent change or the request pipe close kills the case
and itself. Without both, a hanging case and its server would run forever, adopted by PID 1.
Worker-side module: standard library, NumPy, and the backend's own framework only.
"""

from __future__ import annotations

import argparse
import faulthandler
import gc
import importlib
import os
import select
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from dlbench.backends import BACKENDS
from dlbench.backends.base import Backend, Unsupported
from dlbench.core.cases import Case, MeasureConfig
from dlbench.measure import device_memory
from dlbench.measure.disturbance import Watch
from dlbench.measure.memory import (
    NvmlPeak,
    current_rss_bytes,
    peak_rss_bytes,
    populate,
    reset_peak_rss,
    resident_file_pages,
)
from dlbench.measure.timing import measure
from dlbench.runner.protocol import decode, kill_group, write_message
from dlbench.runner.verification import verify_case
from dlbench.workloads import get_workload


def _error_text(exc: BaseException, backend: Backend | None = None) -> str:
    text = backend.describe_error(exc) if backend is not None else f"{type(exc).__name__}: {exc}".strip()
    return text if len(text) <= 2000 else text[:2000] + " …"


def _cpus() -> list[int]:
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def new_backend(case: Case, backend_cls: type[Backend]) -> Backend:
    """The case's backend, instantiated and configured for the CPUs this process is pinned to."""
    backend = backend_cls(case.device, case.options)
    backend.configure(len(_cpus()) or (os.cpu_count() or 1))
    return backend


Task = Callable[[Backend], dict[str, Any]]
Readers = Callable[[Backend], dict[str, Callable[[], Any]]]


def _run(case: Case, backend_cls: type[Backend] | None, result: dict[str, Any], task: Task,
         readers: Readers | None = None, loaded: Callable[[], None] | None = None) -> dict[str, Any]:  # fmt: skip
    """Load the case's backend class (unless the serving worker has: then `loaded` is not called), instantiate and
    configure it, run `task` on it, and classify whatever it raises: every failure is this request's result
    (status unsupported, oom, error), never this process's crash. Then `readers` (settings, versions, ...), each
    of which may fail on its own."""
    backend: Backend | None = None
    try:
        if backend_cls is None:
            start = time.perf_counter()
            backend_cls = BACKENDS[case.backend].load()
            result["import_s"] = time.perf_counter() - start
            if loaded is not None:
                loaded()
        backend = new_backend(case, backend_cls)
        result.update(task(backend))
        result.setdefault("status", "ok")
    except Unsupported as exc:
        result.update(status="unsupported", error=str(exc))
    except BaseException as exc:  # noqa: BLE001 — every failure of a request is that request's result
        status = backend.classify(exc) if backend is not None else None
        if status is None and isinstance(exc, MemoryError):
            status = "oom"
        result.update(status=status or "error", error=_error_text(exc, backend),
                      traceback=traceback.format_exc()[-4000:])  # fmt: skip
    if backend is not None and readers is not None:
        for name, reader in readers(backend).items():
            try:
                result[name] = reader()
            except Exception as exc:  # noqa: BLE001 — a settings reader must not hide the request's own result
                result[name] = {"error": _error_text(exc)}
    return result


def run_case(
    case: Case,
    config: MeasureConfig,
    backend_cls: type[Backend] | None = None,
    import_s: float | None = None,
    baseline_rss: int | None = None,
) -> dict[str, Any]:
    """Run one case in this process and return its result document (the parent derives the statistics)."""
    cpus = _cpus()
    result: dict[str, Any] = {"pid": os.getpid(), "cpus": cpus, "threads": len(cpus) or (os.cpu_count() or 1),
                              "import_s": import_s}  # fmt: skip
    baseline = baseline_rss

    def imported() -> None:  # this process imported the framework itself: its baseline is now
        nonlocal baseline
        baseline = current_rss_bytes()

    def timed(backend: Backend) -> dict[str, Any]:
        workload = get_workload(case.workload)
        size = workload.size(case.size)
        start = time.perf_counter()
        weights, inputs = workload.make_weights(size, case.seed), workload.make_inputs(size, case.seed)
        step = backend.prepare(case, workload, weights, inputs)
        del weights, inputs  # the backend holds its own copies now
        gc.collect()
        result["setup_s"] = time.perf_counter() - start

        backend.reset_peak_memory()
        peak_reset = reset_peak_rss()
        rss_before = current_rss_bytes()
        nvml = NvmlPeak() if case.device.startswith("cuda") else None
        if nvml is not None:
            nvml.start()
        timing = measure(step, backend.synchronize, config, window=Watch(case.device, cpus or None, result["threads"]))
        peak = peak_rss_bytes()
        document = {
            "status": "ok", "first_step_s": timing.first_step_s, "warmup_s": timing.warmup_s,
            "samples_s": timing.samples_s, "stopped_by": timing.stopped_by, "measure_total_s": timing.total_s,
            "block_steps": timing.block_steps,
            "window": timing.window,
            "memory": {
                "rss_peak_bytes": peak,
                "rss_import_baseline_bytes": baseline,
                "rss_peak_delta_bytes": peak - baseline if baseline is not None else None,
                "rss_before_steps_bytes": rss_before,
                "rss_peak_covers": "measured steps" if peak_reset else "whole worker life",
                **backend.peak_memory(),
                **(nvml.stop() if nvml is not None else {}),
            },
        }  # fmt: skip
        return held_to_device_memory(document) if nvml is not None else document

    def readers(backend: Backend) -> dict[str, Callable[[], Any]]:
        return {"first_step_phases": backend.first_step_phases, "compile_cache": backend.compile_cache,
                "settings": backend.settings, "versions": backend.versions}  # fmt: skip

    return _run(case, backend_cls, result, timed, readers, imported)


def held_to_device_memory(document: dict[str, Any]) -> dict[str, Any]:
    """Under --device-memory, the case's process is held to SIZE as nvidia-smi shows it: past it, the case is
    `oom` (on the emulated card it would not fit), its timings kept apart as not a figure of that card."""
    cap = device_memory.cap_bytes()
    if cap is None:
        return document
    memory = document["memory"]
    memory["device_memory_cap_bytes"] = cap
    if "device_process_peak_bytes" not in memory:
        memory["device_memory_cap_note"] = "no per-process figure from NVML: only the framework's allocator cap held it"
    error = device_memory.process_verdict(memory, cap)
    if error is None:
        return document
    document.update(status="oom", error=error, samples_on_the_real_card_s=document.pop("samples_s"))
    return document


def verify(case: Case, backend_cls: type[Backend] | None = None) -> dict[str, Any]:
    """Verify one backend × workload × precision (case.mode is ignored) and return its result document."""
    return _run(case, backend_cls, {"pid": os.getpid()}, lambda backend: {"verification": verify_case(case, backend)},
                lambda backend: {"versions": backend.versions})  # fmt: skip


def call(case: Case, target: str, args: dict[str, Any], backend_cls: type[Backend] | None = None) -> dict[str, Any]:
    """Run a worker-side function of dlbench's, `function(case, backend, **args)` with the case's backend
    instantiated and configured, and return its document (see the module docstring)."""
    module, _, name = target.partition(":")
    if not module.startswith("dlbench.") or not name:
        error = f"ValueError: worker call target must be 'dlbench.module:function', got {target!r}"
        return {"pid": os.getpid(), "status": "error", "error": error}
    return _run(case, backend_cls, {"pid": os.getpid()},
                lambda backend: getattr(importlib.import_module(module), name)(case, backend, **args))  # fmt: skip


def _dispatch(
    request: dict[str, Any], backend_cls: type[Backend] | None = None, import_s: float | None = None,
    baseline_rss: int | None = None,
) -> dict[str, Any]:
    case = Case.from_dict(request["case"])
    if case.options.get("cache_dir"):
        # Some frameworks fix their cache folder when imported (PyTensor's compiledir): a spawned worker exports
        # the case's folder before it loads the backend, whose module reads it (see backends/base.py).
        os.environ["DLBENCH_CACHE_DIR"] = str(case.options["cache_dir"])
    task = request.get("task", "measure")
    if task == "verify":
        return verify(case, backend_cls)
    if task == "call":
        return call(case, str(request.get("target")), dict(request.get("args") or {}), backend_cls)
    return run_case(case, MeasureConfig.from_dict(request["measure"]), backend_cls, import_s, baseline_rss)


def _redirect_output(log_path: str | None) -> None:
    if log_path:
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
    faulthandler.enable()  # a segfault leaves a Python traceback in the case's log


PR_SET_PDEATHSIG = 1  # linux/prctl.h
WATCH_S = 0.5  # how often the watchdog looks for its parent


def _die_with_parent(parent: int) -> None:
    """Ask the kernel (Linux) for SIGKILL when the thread that started this process exits; if `parent` is gone
    already (it died before the request took effect), die now. (`parent` may be a grandparent: an interpreter
    started through a wrapper that does not exec.)"""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the watchdog still covers it
    if os.getppid() != parent and not _exists(parent):
        os._exit(70)


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        pass  # it exists, owned by another user
    return True


def _watch_parent(parent: int, requests_fd: int | None, case: list[int]) -> None:
    """Start the watchdog thread: once the parent is gone (its pid is no longer our parent's) or the request pipe
    is closed (POLLHUP: its writer is gone), kill the running case's process group, then this process's group."""

    def watch() -> None:
        poller = None
        if requests_fd is not None and hasattr(select, "poll"):
            poller = select.poll()
            poller.register(requests_fd, 0)  # no events asked: only hang-up and errors are reported
        while os.getppid() == parent:
            if poller is None:
                time.sleep(WATCH_S)
            elif poller.poll(WATCH_S * 1000):
                break
        for pid in list(case):
            kill_group(pid)
        kill_group(os.getpid())

    threading.Thread(target=watch, name="dlbench-parent-watch", daemon=True).start()


def _serve(backend_name: str, result_fd: int) -> int:
    """Import the backend once, then fork a child per request line on stdin."""
    server = os.getpid()
    running: list[int] = []  # the case running now: what the watchdog kills first
    _watch_parent(os.getppid(), sys.stdin.fileno(), running)
    start = time.perf_counter()
    try:
        backend_cls = BACKENDS[backend_name].load()
    except BaseException as exc:  # noqa: BLE001
        write_message(result_fd, "ready", ok=False, error=_error_text(exc))
        return 1
    import_s = time.perf_counter() - start
    baseline = current_rss_bytes()
    library_pages = resident_file_pages()  # what each child maps again, so its RSS starts where ours is
    write_message(result_fd, "ready", ok=True, import_s=import_s, rss_bytes=baseline)
    for line in sys.stdin.buffer:
        request = decode(line)
        pid = os.fork()
        if pid == 0:  # the case's own process
            code = 0
            try:
                _die_with_parent(server)  # its parent is the server's main thread, which waits for it
                populate(library_pages)  # see measure/memory.py: comparable with a fresh interpreter's RSS
                os.setpgid(0, 0)  # its own process group: a timeout kills it and anything it started
                _redirect_output(request.get("log_path"))
                result = _dispatch(request, backend_cls, import_s, baseline)
                write_message(result_fd, "result", result=result)
            except BaseException:  # noqa: BLE001
                code = 70
            finally:
                os._exit(code)  # never return into the server loop, never run its atexit handlers
        running[:] = [pid]
        write_message(result_fd, "started", pid=pid)
        _, status = os.waitpid(pid, 0)
        running.clear()
        write_message(result_fd, "finished", pid=pid, exit_status=os.waitstatus_to_exitcode(status))
    return 0


def _single(result_fd: int) -> int:
    _watch_parent(os.getppid(), None, [])  # its stdin is closed once the request is sent: only the parent counts
    request = decode(sys.stdin.buffer.readline())
    faulthandler.enable()
    write_message(result_fd, "started", pid=os.getpid())
    result = _dispatch(request)
    write_message(result_fd, "result", result=result)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dlbench.runner.worker", description=__doc__)
    parser.add_argument("--result-fd", type=int, required=True, help="pipe for protocol messages")
    parser.add_argument("--serve", metavar="BACKEND", help="import BACKEND once and fork a process per case")
    parser.add_argument("--cpus", help="comma-separated CPU ids to pin to (default: all allowed)")
    parser.add_argument("--parent-pid", type=int, help="the runner's pid: die with it (default: our parent's)")
    args = parser.parse_args(argv)
    _die_with_parent(args.parent_pid or os.getppid())
    if args.cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(c) for c in args.cpus.split(",")})
    return _serve(args.serve, args.result_fd) if args.serve else _single(args.result_fd)


if __name__ == "__main__":
    sys.exit(main())
