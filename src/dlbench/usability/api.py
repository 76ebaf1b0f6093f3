"""`dlbench.usability.api.run(...)`, one usability run: code metrics (in this process, from source: no framework is
imported), then the debugging and export probes of each backend (each in a worker process, as every measurement).
The run is stored like any other (fingerprint, settings, plan) and every finding the moment it is measured:

- kind "usability", key `code-BACKEND-WORKLOAD`, `bare-SCRIPT`, `debugging-BACKEND-WORKLOAD`,
  `shape_error-BACKEND-WORKLOAD` (documents carry "part": code | bare | debugging | shape_error);
- kind "export", key `BACKEND-WORKLOAD-PATH`.

A probe that crashes, hangs or fails is a finding with its status (error, timeout, oom), never a crash of the run;
a backend whose registry entry declares no usability probes gets findings that say so, `unsupported`.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from dlbench.backends import BACKENDS, get_backend, usability_of
from dlbench.core.cases import Case
from dlbench.core.errors import UsageError, unknown
from dlbench.runner.environments import find_env
from dlbench.runner.session import Session, open_run, placement
from dlbench.store import default_store_path
from dlbench.usability import code_metrics
from dlbench.workloads import WORKLOADS

PARTS = ("code", "debugging", "export")
# Small on purpose: the probes ask "does it work, does it reproduce", not "how fast".
SIZES: dict[str, dict[str, int]] = {"lstm": {"seq_len": 5, "batch": 2, "hidden": 8}, "vgg16": {"batch": 1, "image": 32}}
TIMEOUT_S = 300.0
_TARGET = "dlbench.usability.worker"
_DROP = ("pid", "traceback", "isolation", "import_s")  # worker plumbing, not part of the finding

OnFinding = Callable[[str, str, dict[str, Any]], None]


def default_backends() -> list[str]:
    """Every framework backend (not the numpy harness); one that needs a managed env (theano, aesara) where an env of
    its name exists, as in a run. Those without usability probes are reported too: their findings say so."""
    return [name for name, info in BACKENDS.items() if not info.harness and (not info.needs_env or find_env(name))]


def export_paths() -> list[str]:
    """Every export path some backend declares."""
    return sorted({path for info in BACKENDS.values() for path in info.exports})


def check(
    backends: Sequence[str] | None,
    workloads: Sequence[str] | None,
    parts: Sequence[str] | None,
    timeout_s: float,
    paths: Sequence[str] | None = None,
) -> tuple[list[str], list[str], list[str]]:
    """The validated (backends, workloads, parts); UsageError naming a bad value and what is allowed."""
    for name in paths or []:
        if name not in export_paths():
            raise unknown("export path", name, export_paths())
    for name in backends or []:
        get_backend(name)
    for name in workloads or []:
        if name not in SIZES:
            raise unknown("workload", name, [w for w in WORKLOADS if w in SIZES])
    for name in parts or []:
        if name not in PARTS:
            raise unknown("usability part", name, PARTS)
    if timeout_s <= 0:
        raise UsageError(f"bad timeout {timeout_s:g}: must be > 0 seconds")
    return list(backends or default_backends()), list(workloads or SIZES), list(parts or PARTS)


def run(
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
    plan = [Case(w, SIZES[w], b, "fp32", "forward", "cpu") for b in backends for w in workloads]
    settings = {
        "parts": parts,
        "paths": list(paths or []),
        "timeout_s": timeout_s,
        "sizes": {w: SIZES[w] for w in workloads},
        "argv": sys.argv,
        "description": "dlbench usability: code metrics, debugging and export probes",
    }
    session = open_run(store or default_store_path(), "usability", plan, settings, placement())
    assert session.run_id is not None

    def emit(kind: str, key: str, document: dict[str, Any]) -> None:
        session.add_finding(kind, key, document)
        if on_finding is not None:
            on_finding(kind, key, document)

    with session:
        if "code" in parts:
            _code(backends, workloads, emit)
        if "debugging" in parts or "export" in parts:
            with tempfile.TemporaryDirectory(prefix="dlbench-usability-") as scratch:
                for backend in backends:
                    cases = [c for c in plan if c.backend == backend]
                    _probe_backend(session, backend, cases, parts, timeout_s, Path(scratch), emit, paths)
    return session.run_id


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
    session: Session,
    backend: str,
    cases: list[Case],
    parts: list[str],
    timeout_s: float,
    scratch: Path,
    emit: OnFinding,
    paths: Sequence[str] | None = None,
) -> None:
    keys: list[tuple[str, str, str, Case, str, dict[str, Any]]] = []  # (kind, key, part, case, target, args)
    for case in cases:
        name = f"{backend}-{case.workload}"
        if "debugging" in parts:
            keys.append(("usability", f"debugging-{name}", "debugging", case, "debugging", {}))
            keys.append(("usability", f"shape_error-{name}", "shape_error", case, "shape_error", {}))
        if "export" in parts:
            for path in [p for p in get_backend(backend).exports if not paths or p in paths]:
                folder = scratch / f"{name}-{path}"
                keys.append(
                    ("export", f"{name}-{path}", "export", case, "export", {"path": path, "directory": str(folder)})
                )
    module, no_probes = usability_of(backend)
    for kind, key, part, case, function, args in keys:
        if module is None:  # declared none: said, as a finding, not left out
            where = {"path": args["path"]} if "path" in args else {}
            raw = {"status": "unsupported", "error": no_probes, **where}
        else:
            raw = session.call(case, f"{_TARGET}:{function}", args, timeout_s)
        if part == "export":
            raw.pop("directory", None)
            raw.setdefault("path", args["path"])
        emit(kind, key, _finding(part, case, raw))
