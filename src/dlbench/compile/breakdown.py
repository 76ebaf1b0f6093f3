"""Run each case twice, each time in a fresh interpreter (isolation "spawn"), and keep what its first step was
made of: "cold" with the backend's persistent compilation caches pointed at a new, empty folder (the backend
option `cache_dir`, see backends/base.py), then "warm" with the same folder, now filled by the cold process.

A backend whose framework keeps no persistent cache reports none (its `compile_cache` is {}): its warm
process is then just a second cold one, and the finding says so. Each finding is stored the moment the case's
pair of processes has finished. Parent side: no framework is imported here.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from dlbench.backends import get_backend
from dlbench.core.cases import Case, MeasureConfig
from dlbench.runner.client import WorkerClient
from dlbench.store import Store

KIND = "compile"  # the store's finding kind
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


def _measure(client: WorkerClient, case: Case, timeout_s: float) -> dict[str, Any]:
    ok, reason = get_backend(case.backend).available()
    if not ok:
        return {"status": "unsupported", "error": reason}
    return start_entry(client.run(case, CONFIG, timeout_s))


def run_breakdown(
    store: Store,
    run_id: str,
    plan: list[Case],
    timeout_s: float,
    cpus: list[int] | None = None,
    cache_root: Path | None = None,
    keep_cache: bool = False,
    on_event: EventCallback | None = None,
) -> dict[str, dict[str, Any]]:
    """Measure every case of `plan` cold then warm; store and return the findings by key. A KeyboardInterrupt
    passes through after the worker is killed; the findings stored so far stay stored."""
    findings: dict[str, dict[str, Any]] = {}
    root = Path(cache_root) if cache_root is not None else None
    if root is not None:
        root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dlbench-compile-logs-") as logs:
        for case in plan:
            cache_dir = Path(tempfile.mkdtemp(prefix=f"dlbench-compile-{case.backend}-", dir=root))
            cased = replace(case, options={**case.options, "cache_dir": str(cache_dir)})
            client = WorkerClient(case.backend, Path(logs), cpus, isolation="spawn")
            entries: dict[str, dict[str, Any]] = {}
            files = (0, 0)
            try:
                for start in STARTS:
                    if start == "warm" and entries["cold"]["status"] != "ok":
                        # Nothing was compiled, so nothing was cached: a warm start would be a second cold one.
                        entries[start] = {
                            "status": "not run",
                            "error": f"the cold start ended {entries['cold']['status']}",
                        }
                        continue
                    if on_event:
                        on_event(start, case, None)
                    entries[start] = _measure(client, cased, timeout_s)
                    if start == "cold":
                        files = folder_size(cache_dir)
                    if on_event:
                        on_event(start, case, entries[start])
            finally:
                client.close()
                if not keep_cache:
                    shutil.rmtree(cache_dir, ignore_errors=True)
            document = finding_document(case, entries["cold"], entries["warm"], files)
            if keep_cache:
                document["cache_dir_kept"] = str(cache_dir)
            findings[document["case_key"]] = document
            store.add_finding(run_id, KIND, document["case_key"], document)
    return findings
