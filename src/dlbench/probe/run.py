"""Run the probe: every backend × precision × layer on one device, each layer of each precision in a worker process
of its own (the `call` task, forked from a server that imported the framework once), stored as a run whose
findings (kind "probe") are written the moment each one is judged.

fp32 is probed first for every backend, whether asked or not: it is the baseline of `slow`. A backend that is not
installed gets `unsupported` cells with the command that installs it; a worker that crashes, runs out of memory or
hangs past the timeout gets `error` cells for that layer only.
Parent-side module: never imports a framework.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from dlbench.api import _parse_cpus as check_cpus
from dlbench.api import new_run_id
from dlbench.backends import BACKENDS, framework_modules, get_backend
from dlbench.backends.layers import COMPILED_VARIANTS, LAYER_MODULES, layer_module
from dlbench.core.cases import DEVICES, Case, MeasureConfig
from dlbench.core.errors import UsageError, unknown
from dlbench.measure.env import fingerprint
from dlbench.probe.verdict import DIRECTIONS, PRECISIONS, judge
from dlbench.runner.client import WorkerClient
from dlbench.store import Store, default_store_path
from dlbench.suites import check_names
from dlbench.workloads.layers import LAYERS

KIND = "probe"
TARGET = "dlbench.probe.worker:probe_layer"
COMPILED = COMPILED_VARIANTS  # recompile every layer × precision × direction: asked for by name
# Per step: at least MIN_ITERS synchronized calls and MIN_TIME_S, never past MAX_TIME_S (then one call suffices).
TIMING: dict[str, Any] = {"min_iters": 10, "min_time_s": 0.2, "max_time_s": 2.0}

OnFinding = Callable[[dict[str, Any]], None]


def default_backends() -> list[str]:
    """Every framework backend that has layers, compiled variants left out (see COMPILED)."""
    return [name for name, info in BACKENDS.items() if not info.harness and name in LAYER_MODULES
            and name not in COMPILED]  # fmt: skip


def _first_cpu() -> int:
    return min(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0


def finding_key(backend: str, device: str, precision: str, layer: str) -> str:
    return f"{backend}-{device}-{precision}-{layer}"


def _failed(status: str, message: str) -> dict[str, Any]:
    return {"status": status, "message": message}


def probe(
    backends: Sequence[str] | None = None,
    *,
    precisions: Sequence[str] | None = None,
    layers: Sequence[str] | None = None,
    device: str = "cpu",
    store: str | Path | None = None,
    timeout_s: float = 300.0,
    timing: dict[str, Any] | None = None,
    cpus: Sequence[int] | None = None,
    on_finding: OnFinding | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """Probe and store; returns (run id, findings in the order measured). Validates everything before writing.
    `cpus`: pin every worker to these CPUs (the frameworks' thread knobs follow), as `dlbench run --cpus`; default:
    the first CPU this process may use."""
    backends = list(backends) if backends else default_backends()
    for name in backends:
        get_backend(name)
        layer_module(name)
    asked = check_names("precision", list(precisions or PRECISIONS), PRECISIONS)
    layer_names = check_names("layer", list(layers or LAYERS), tuple(LAYERS))
    if device not in DEVICES:
        raise unknown("device", device, DEVICES)
    if timeout_s <= 0:
        raise UsageError(f"bad timeout {timeout_s:g}: must be > 0 seconds")
    # One CPU unless asked: the probe asks whether a type has a fast kernel, and one thread answers that without
    # thread-scheduling noise. Measured on a busy 2-core machine: torch's bf16 LSTM took ~1 s a step with 2 threads
    # (each parallel region waiting on a descheduled thread) and 0.5 ms with one, a false `slow`.
    cpus_used = check_cpus(cpus) if cpus else [_first_cpu()]
    order = ["fp32", *(p for p in asked if p != "fp32")]
    timing = {**TIMING, **(timing or {})}
    settings = {"probe": {"backends": backends, "precisions": order, "layers": layer_names, "device": device},
                "timeout_s": timeout_s, "timing": timing, "cpus": cpus_used, "argv": sys.argv}  # fmt: skip
    db = Store(store or default_store_path())
    run_id = new_run_id()
    # No plan of cases: a probe's findings are not a suite's results (an empty plan leaves nothing "missing").
    db.create_run(run_id, "probe", [], settings, fingerprint(framework_modules()))
    findings: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="dlbench-probe-") as logs:
            for backend in backends:
                findings += _probe_backend(db, run_id, backend, order, layer_names, device, timeout_s, timing,
                                           cpus_used, Path(logs), on_finding)  # fmt: skip
        db.set_run_status(run_id, "complete")
    except KeyboardInterrupt:
        db.set_run_status(run_id, "interrupted")
        raise
    finally:
        db.close()
    return run_id, findings


def _probe_backend(db: Store, run_id: str, backend: str, precisions: list[str], layers: list[str], device: str,
                   timeout_s: float, timing: dict[str, Any], cpus: list[int] | None, logs: Path,
                   on_finding: OnFinding | None) -> list[dict[str, Any]]:  # fmt: skip
    info = get_backend(backend)
    available, reason = info.available()
    isolation = "fork" if info.fork_safe else "spawn"
    client = WorkerClient(backend, logs, cpus, isolation=isolation) if available else None
    baseline: dict[tuple[str, str], float | None] = {}  # (layer, direction) -> fp32 time
    found = []
    try:
        for precision in precisions:
            for layer in layers:
                raw: dict[str, Any]
                if client is None:
                    raw = {d: _failed("unsupported", reason) for d in DIRECTIONS}
                else:
                    case = Case("probe", {}, backend, precision, "forward", device)
                    raw = client.run(case, MeasureConfig(), timeout_s, task="call", target=TARGET,
                                     args={"layer": layer, "timing": timing})  # fmt: skip
                    status = raw.get("status")
                    if status != "ok":  # the call failed as a whole: a crash, OOM or timeout, or Unsupported
                        text = f"{status}: {raw.get('error') or ''}".strip()
                        verdict = "unsupported" if status == "unsupported" else "error"
                        raw = {**raw, **{d: _failed(verdict, text) for d in DIRECTIONS}}
                doc: dict[str, Any] = {"backend": backend, "device": device, "precision": precision, "layer": layer}
                for direction in DIRECTIONS:
                    measured = raw[direction]
                    doc[direction] = judge(measured, precision, direction, baseline.get((layer, direction)))
                    if precision == "fp32":
                        ok = doc[direction]["verdict"] == "native"
                        baseline[(layer, direction)] = measured.get("best_s") if ok else None
                doc["versions"] = raw.get("versions", {})
                doc["wall_s"] = raw.get("wall_s")
                db.add_finding(run_id, KIND, finding_key(backend, device, precision, layer), doc)
                found.append(doc)
                if on_finding:
                    on_finding(doc)
    finally:
        if client is not None:
            client.close()
    return found
