"""`dlbench.probe.api.run(...)`: every backend × precision × layer on one device, each layer of each precision in a
worker process of its own (the `call` task, forked from a server that imported the framework once), stored as a run
whose findings (kind "probe") are written the moment each one is judged.

fp32 is probed first for every backend, whether asked or not: it is the baseline of `slow`. A backend that is not
installed gets `unsupported` cells with the command that installs it; one whose registry entry declares no layers
gets `unsupported` cells saying so (never a silent omission); a worker that crashes, runs out of memory or hangs
past the timeout gets `error` cells for that layer only.
Parent-side module: never imports a framework.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from dlbench.backends import BACKENDS, get_backend, layers_of
from dlbench.core.cases import DEVICES, Case
from dlbench.core.errors import UsageError, check_names, unknown
from dlbench.probe.verdict import DIRECTIONS, PRECISIONS, judge
from dlbench.runner.environments import find_env
from dlbench.runner.session import Session, open_run, placement
from dlbench.store import default_store_path
from dlbench.workloads.layers import LAYERS

KIND = "probe"
TARGET = "dlbench.probe.worker:probe_layer"
# Per step: at least MIN_ITERS synchronized calls and MIN_TIME_S, never past MAX_TIME_S (then one call suffices).
TIMING: dict[str, Any] = {"min_iters": 10, "min_time_s": 0.2, "max_time_s": 2.0}

OnFinding = Callable[[dict[str, Any]], None]


def compiled_variants() -> list[str]:
    """Backends that compile every layer × precision × direction afresh (minutes on a small CPU): probed when named."""
    return [name for name, info in BACKENDS.items() if info.recompiles]


def default_backends() -> list[str]:
    """Every framework backend, compiled variants left out (see compiled_variants); one that needs a managed env
    (theano, aesara) joins where an env of its name exists, as in a run. Those without layers are probed too:
    their cells say so."""
    return [name for name, info in BACKENDS.items()
            if not info.harness and not info.recompiles and (not info.needs_env or find_env(name))]  # fmt: skip


def _first_cpu() -> int:
    return min(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0


def finding_key(backend: str, device: str, precision: str, layer: str) -> str:
    return f"{backend}-{device}-{precision}-{layer}"


def _failed(status: str, message: str) -> dict[str, Any]:
    return {"status": status, "message": message}


def run(
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
    asked = check_names("precision", list(precisions or PRECISIONS), PRECISIONS)
    layer_names = check_names("layer", list(layers or LAYERS), tuple(LAYERS))
    if device not in DEVICES:
        raise unknown("device", device, DEVICES)
    if timeout_s <= 0:
        raise UsageError(f"bad timeout {timeout_s:g}: must be > 0 seconds")
    # One CPU unless asked: the probe asks whether a type has a fast kernel, and one thread answers that without
    # thread-scheduling noise. Measured on a busy 2-core machine: torch's bf16 LSTM took ~1 s a step with 2 threads
    # (each parallel region waiting on a descheduled thread) and 0.5 ms with one, a false `slow`.
    where = placement(list(cpus) if cpus else [_first_cpu()])
    order = ["fp32", *(p for p in asked if p != "fp32")]
    timing = {**TIMING, **(timing or {})}
    settings = {"probe": {"backends": backends, "precisions": order, "layers": layer_names, "device": device},
                "timeout_s": timeout_s, "timing": timing, "argv": sys.argv}  # fmt: skip
    # No plan of cases: a probe's findings are not a suite's results (an empty plan leaves nothing "missing").
    session = open_run(store or default_store_path(), KIND, [], settings, where)
    run_id = session.run_id
    assert run_id is not None
    findings: list[dict[str, Any]] = []
    with session:
        for backend in backends:
            findings += _probe_backend(session, backend, order, layer_names, device, timeout_s, timing, on_finding)
    return run_id, findings


def _probe_backend(
    session: Session, backend: str, precisions: list[str], layers: list[str], device: str, timeout_s: float,
    timing: dict[str, Any], on_finding: OnFinding | None,
) -> list[dict[str, Any]]:
    module, no_layers = layers_of(backend)
    baseline: dict[tuple[str, str], float | None] = {}  # (layer, direction) -> fp32 time
    found = []
    for precision in precisions:
        for layer in layers:
            case = Case("probe", {}, backend, precision, "forward", device)
            raw: dict[str, Any] = (
                {"status": "unsupported", "error": no_layers} if module is None
                else session.call(case, TARGET, {"layer": layer, "timing": timing}, timeout_s)
            )  # fmt: skip
            status = raw.get("status")
            if status != "ok":  # no layers, not installed, or the call failed as a whole: a crash, OOM or timeout
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
            session.add_finding(KIND, finding_key(backend, device, precision, layer), doc)
            found.append(doc)
            if on_finding:
                on_finding(doc)
    return found


__all__ = ["KIND", "TIMING", "compiled_variants", "default_backends", "finding_key", "run"]
