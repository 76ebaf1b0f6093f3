"""`dlbench.compile.api.run(...)`: each case twice, each time in a fresh interpreter (isolation "spawn"), keeping
what its first step was made of: "cold" with the backend's persistent compilation caches pointed at a new, empty
folder (the backend option `cache_dir`, see backends/base.py), then "warm" with the same folder, now filled by the
cold process.

A backend whose framework keeps no persistent cache reports none (its `compile_cache` is {}): its warm
process is then just a second cold one, and the finding says so. Each finding is stored the moment the case's
pair of processes has finished. Parent side: no framework is imported here.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from dlbench.core.cases import Case, MeasureConfig
from dlbench.core.errors import UsageError, unknown
from dlbench.core.paths import folder_problem
from dlbench.runner.session import Session, open_run, placement
from dlbench.store import default_store_path
from dlbench.suites import plan_cases
from dlbench.workloads import WORKLOADS

KIND = "compile"  # the store's finding kind
DEFAULT_TIMEOUT_S = 600.0
STARTS = ("cold", "warm")
# The first step, then one more (timed) step to set it against: no warm-up, no adaptive iterations.
CONFIG = MeasureConfig(min_time_s=0.0, min_iters=1, max_time_s=0.0, warmup_iters=0)

# on_event(start, case, document): start is "cold" or "warm"; document None when the process starts, else
# the start's entry of the finding (see start_entry).
EventCallback = Callable[[str, Case, dict[str, Any] | None], None]


def finding_key(case: Case) -> str:
    """The case's key without its cache folder (which differs in every run)."""
    options = {k: v for k, v in case.options.items() if k != "cache_dir"}
    return replace(case, options=options).key


def folder_size(path: Path) -> tuple[int, int]:
    """(files, bytes) under `path`: how much the cold process left in the cache."""
    files = total = 0
    for root, _, names in os.walk(path):
        for name in names:
            try:
                total += (Path(root) / name).stat().st_size
                files += 1
            except OSError:  # removed meanwhile (a lock file)
                pass
    return files, total


def start_entry(raw: dict[str, Any]) -> dict[str, Any]:
    """What a finding keeps of one process's measure document."""
    entry: dict[str, Any] = {"status": raw.get("status", "error")}
    for key in ("import_s", "setup_s", "first_step_s", "wall_s", "pid", "isolation"):
        if raw.get(key) is not None:
            entry[key] = raw[key]
    entry["first_step_phases"] = dict(raw.get("first_step_phases") or {})
    samples = raw.get("samples_s") or []
    if samples:
        entry["second_step_s"] = samples[0]  # one ordinary step after the first: what is left without compiling
    if raw.get("compile_cache"):
        entry["compile_cache"] = raw["compile_cache"]
    if entry["status"] != "ok":
        entry["error"] = str(raw.get("error") or "")[:2000]
    return entry


def finding_document(
    case: Case, cold: dict[str, Any], warm: dict[str, Any], cache_files: tuple[int, int]
) -> dict[str, Any]:
    """The stored finding for one case: both starts, and the persistent cache they shared (if the backend has one)."""
    cache = cold.get("compile_cache") or warm.get("compile_cache") or {}
    plain = replace(case, options={k: v for k, v in case.options.items() if k != "cache_dir"})
    return {
        "case": plain.to_dict(),
        "case_key": plain.key,
        "cache": {**cache, "files_after_cold": cache_files[0], "bytes_after_cold": cache_files[1]} if cache else {},
        "cold": cold,
        "warm": warm,
    }


def _measure(session: Session, case: Case, timeout_s: float) -> dict[str, Any]:
    return start_entry(session.measure(case, CONFIG, timeout_s))


def run(
    workload: str,
    *,
    backends: Sequence[str] | None = None,
    precisions: Sequence[str] | None = None,
    modes: Sequence[str] | None = None,
    sets: Mapping[str, Sequence[int]] | None = None,
    device: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    cpus: Sequence[int] | None = None,
    cache_root: str | Path | None = None,
    keep_cache: bool = False,
    store: str | Path | None = None,
    on_event: EventCallback | None = None,
) -> tuple[str, dict[str, dict[str, Any]]]:
    """Measure every case of `workload` over the sizes in `sets` (each backend × precision × mode) cold then warm,
    in a run of its own; returns (run id, findings by case key). Everything is validated before anything is
    written; a KeyboardInterrupt passes through after the worker is killed, the findings stored so far stay."""
    if workload not in WORKLOADS:
        raise unknown("workload", workload, WORKLOADS)
    if not timeout_s > 0:
        raise UsageError(f"bad --timeout {timeout_s:g}: must be > 0 seconds")
    suite, plan = plan_cases(workload, backends, precisions, modes, sets, device)
    where = placement(list(cpus) if cpus is not None else None, isolation="spawn")
    root = Path(cache_root).absolute() if cache_root is not None else None  # workers run in another folder
    problem = folder_problem(root) if root is not None else None  # a writable folder, or one that can be made
    if problem is not None:
        raise UsageError(f"bad --cache-root {str(cache_root)[:200]!r}: {problem}")
    settings = {"command": "compile", "timeout_s": timeout_s, "cache_root": str(root) if root else None,
                "argv": sys.argv, "description": "first-step phases, cold vs warm persistent caches"}  # fmt: skip
    session = open_run(store or default_store_path(), f"compile-{suite.name}", plan, settings, where)
    assert session.run_id is not None
    with session:
        findings = _breakdown(session, plan, timeout_s, root, keep_cache, on_event)
    return session.run_id, findings


def _breakdown(
    session: Session,
    plan: list[Case],
    timeout_s: float,
    root: Path | None = None,
    keep_cache: bool = False,
    on_event: EventCallback | None = None,
) -> dict[str, dict[str, Any]]:
    findings: dict[str, dict[str, Any]] = {}
    if root is not None:
        root.mkdir(parents=True, exist_ok=True)
    for case in plan:
        cache_dir = Path(tempfile.mkdtemp(prefix=f"dlbench-compile-{case.backend}-", dir=root))
        cased = replace(case, options={**case.options, "cache_dir": str(cache_dir)})
        entries: dict[str, dict[str, Any]] = {}
        files = (0, 0)
        try:
            for start in STARTS:
                if start == "warm" and entries["cold"]["status"] != "ok":
                    # Nothing was compiled, so nothing was cached: a warm start would be a second cold one.
                    entries[start] = {"status": "not run", "error": f"the cold start ended {entries['cold']['status']}"}
                    continue
                if on_event:
                    on_event(start, case, None)
                entries[start] = _measure(session, cased, timeout_s)
                if start == "cold":
                    files = folder_size(cache_dir)
                if on_event:
                    on_event(start, case, entries[start])
        finally:
            if not keep_cache:
                shutil.rmtree(cache_dir, ignore_errors=True)
        document = finding_document(case, entries["cold"], entries["warm"], files)
        if keep_cache:
            document["cache_dir_kept"] = str(cache_dir)
        findings[document["case_key"]] = document
        session.add_finding(KIND, document["case_key"], document)
    return findings
