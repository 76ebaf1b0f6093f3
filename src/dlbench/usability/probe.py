"""One usability run: code metrics (in this process, from source: no framework is imported), then the debugging
and export probes of each backend (each in a worker process, as every measurement). The run is stored like any
other (fingerprint, settings, plan) and every finding the moment it is measured:

- kind "usability", key `code-BACKEND-WORKLOAD`, `bare-SCRIPT`, `debugging-BACKEND-WORKLOAD`,
  `shape_error-BACKEND-WORKLOAD` (documents carry "part": code | bare | debugging | shape_error);
- kind "export", key `BACKEND-WORKLOAD-PATH`.

A probe that crashes, hangs or fails is a finding with its status (error, timeout, oom), never a crash of the run.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from dlbench.backends import BACKENDS, framework_modules, get_backend
from dlbench.backends.usability import EXPORT_PATHS, PROBE_MODULES
from dlbench.core.cases import Case, MeasureConfig
from dlbench.core.errors import UsageError, unknown
from dlbench.measure.env import fingerprint
from dlbench.runner.client import WorkerClient
from dlbench.store import Store, default_store_path
from dlbench.usability import code_metrics
from dlbench.workloads import WORKLOADS

PARTS = ("code", "debugging", "export")
# Small on purpose: the probes ask "does it work, does it reproduce", not "how fast".
SIZES: dict[str, dict[str, int]] = {"lstm": {"seq_len": 5, "batch": 2, "hidden": 8}, "vgg16": {"batch": 1, "image": 32}}
TIMEOUT_S = 300.0
_TARGET = "dlbench.backends.usability"
_DROP = ("pid", "traceback", "isolation", "import_s")  # worker plumbing, not part of the finding

OnFinding = Callable[[str, str, dict[str, Any]], None]


def default_backends() -> list[str]:
    """Every framework backend that has probes (the numpy harness backend has none)."""
    return [name for name in BACKENDS if name in PROBE_MODULES]


def check(
    backends: Sequence[str] | None,
    workloads: Sequence[str] | None,
    parts: Sequence[str] | None,
    timeout_s: float,
    paths: Sequence[str] | None = None,
) -> tuple[list[str], list[str], list[str]]:
    """The validated (backends, workloads, parts); UsageError naming a bad value and what is allowed."""
    known_paths = sorted({p for ps in EXPORT_PATHS.values() for p in ps})
    for name in paths or []:
        if name not in known_paths:
            raise unknown("export path", name, known_paths)
    for name in backends or []:
        get_backend(name)
        if name not in PROBE_MODULES:
            raise UsageError(f"backend {name!r} has no usability probes (allowed: {', '.join(PROBE_MODULES)})")
    for name in workloads or []:
        if name not in SIZES:
            raise unknown("workload", name, [w for w in WORKLOADS if w in SIZES])
    for name in parts or []:
        if name not in PARTS:
            raise unknown("usability part", name, PARTS)
    if timeout_s <= 0:
        raise UsageError(f"bad timeout {timeout_s:g}: must be > 0 seconds")
    return list(backends or default_backends()), list(workloads or SIZES), list(parts or PARTS)


def run_usability(
    backends: Sequence[str] | None = None,
    workloads: Sequence[str] | None = None,
    parts: Sequence[str] | None = None,
    store: str | Path | None = None,
    timeout_s: float = TIMEOUT_S,
    on_finding: OnFinding | None = None,
    paths: Sequence[str] | None = None,
) -> str:
    """Measure, store, and return the run id; `paths` limits the export paths probed (default: all). Everything
    is validated before anything is written."""
    backends, workloads, parts = check(backends, workloads, parts, timeout_s, paths)
    from dlbench.api import new_run_id  # here: api imports the runner, which this module's users may not need

    plan = [Case(w, SIZES[w], b, "fp32", "forward", "cpu") for b in backends for w in workloads]
    settings = {
        "parts": parts,
        "paths": list(paths or []),
        "timeout_s": timeout_s,
        "sizes": {w: SIZES[w] for w in workloads},
        "argv": sys.argv,
        "description": "dlbench usability: code metrics, debugging and export probes",
    }
    db = Store(store or default_store_path())
    run_id = new_run_id()
    db.create_run(run_id, "usability", plan, settings, fingerprint(framework_modules()))

    def emit(kind: str, key: str, document: dict[str, Any]) -> None:
        db.add_finding(run_id, kind, key, document)
        if on_finding is not None:
            on_finding(kind, key, document)

    status = "interrupted"
    try:
        if "code" in parts:
            _code(backends, workloads, emit)
        if "debugging" in parts or "export" in parts:
            with tempfile.TemporaryDirectory(prefix="dlbench-usability-") as scratch:
                for backend in backends:
                    _probe_backend(
                        backend, [c for c in plan if c.backend == backend], parts, timeout_s, Path(scratch), emit, paths
                    )
        status = "complete"
    finally:
        db.set_run_status(run_id, status)
        db.close()
    return run_id


def _code(backends: list[str], workloads: list[str], emit: OnFinding) -> None:
    for backend in backends:
        for workload, document in code_metrics.backend_metrics(backend, workloads).items():
            emit(
                "usability",
                f"code-{backend}-{workload}",
                {"part": "code", "backend": backend, "workload": workload, **document},
            )
    for script, document in code_metrics.bare_metrics().items():
        emit("usability", f"bare-{script}", {"part": "bare", **document})


def _finding(part: str, case: Case, raw: dict[str, Any]) -> dict[str, Any]:
    document = {"part": part, "backend": case.backend, "workload": case.workload, "size": case.size}
    document.update({k: v for k, v in raw.items() if k not in _DROP})
    if raw.get("status") != "ok" and raw.get("log_tail"):
        document["log_tail"] = str(raw["log_tail"])[-1500:]
    else:
        document.pop("log_tail", None)
    return document


def _probe_backend(
    backend: str,
    cases: list[Case],
    parts: list[str],
    timeout_s: float,
    scratch: Path,
    emit: OnFinding,
    paths: Sequence[str] | None = None,
) -> None:
    info = get_backend(backend)
    ok, reason = info.available()
    keys: list[tuple[str, str, str, Case, str, dict[str, Any]]] = []  # (kind, key, part, case, target, args)
    for case in cases:
        name = f"{backend}-{case.workload}"
        if "debugging" in parts:
            keys.append(("usability", f"debugging-{name}", "debugging", case, "debugging", {}))
            keys.append(("usability", f"shape_error-{name}", "shape_error", case, "shape_error", {}))
        if "export" in parts:
            for path in [p for p in EXPORT_PATHS.get(backend, ()) if not paths or p in paths]:
                folder = scratch / f"{name}-{path}"
                keys.append(
                    ("export", f"{name}-{path}", "export", case, "export", {"path": path, "directory": str(folder)})
                )
    if not ok:
        for kind, key, part, case, _, args in keys:
            where = {"path": args["path"]} if "path" in args else {}
            emit(kind, key, _finding(part, case, {"status": "unsupported", "error": reason, **where}))
        return
    logs = scratch / "logs"
    logs.mkdir(exist_ok=True)
    client = WorkerClient(backend, logs, isolation="fork" if info.fork_safe else "spawn")
    try:
        for kind, key, part, case, function, args in keys:
            raw = client.run(case, MeasureConfig(), timeout_s, task="call", target=f"{_TARGET}:{function}", args=args)
            if part == "export":
                raw.pop("directory", None)
                raw.setdefault("path", args["path"])
            emit(kind, key, _finding(part, case, raw))
    finally:
        client.close()
