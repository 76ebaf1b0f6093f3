"""Find the peak runs that apply to a run's results, in the run's own store: for each Machine its results ran on
(figures.py: what is compared), the newest complete peak run of that Machine with at least one figure. An
interrupted or failed peak run is never used (its figures may be partial).

Reading only: the store is opened read-only, and a store that cannot be read gives no peak and says why (the
run's own tables still print).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from dlbench.core.errors import UsageError
from dlbench.core.results import Run
from dlbench.peak.figures import KIND, Machine, Peak, Peaks, best, disturbed, machine, result_machine
from dlbench.store import Store


def peak_runs(store: Store) -> list[Peak]:
    """Every complete peak run in the store that measured something, newest first."""
    if "findings" not in store.tables:  # an older store, read without upgrading it: it holds no peak
        return []
    rows = store.db.execute(
        "SELECT run_id, created_at, settings, fingerprint FROM runs WHERE suite=? AND status='complete' "
        "ORDER BY created_at DESC, run_id DESC",
        (KIND,),
    ).fetchall()
    found = []
    for run_id, created_at, settings_text, fingerprint_text in rows:
        settings, fingerprint = _object(settings_text), _object(fingerprint_text)
        asked = settings["peak"] if isinstance(settings.get("peak"), dict) else {}
        device, cpus = str(asked.get("device", "cpu")), settings.get("cpus")
        findings = list(store.findings(run_id, KIND).values())
        flops, bandwidth = best(findings)
        if flops or bandwidth:
            where = machine(fingerprint, device, len(cpus) if isinstance(cpus, list) and cpus else None)
            found.append(Peak(str(run_id), where, flops, bandwidth, float(created_at or 0), disturbed(findings, flops)))
    return found


def _object(text: Any) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def find(store: Store, run: Run) -> Peaks:
    """The peaks that apply to the run's results (by the Machine each ran on), newest peak run first."""
    wanted: set[Machine] = {result_machine(run, r) for r in run.results}
    found: dict[Machine, Peak] = {}
    for peak in peak_runs(store):
        if peak.machine in wanted and peak.machine not in found:
            found[peak.machine] = peak
    return Peaks(found)


def lookup(run: Run) -> Peaks:
    """find() in the run's own store, opened read-only; no peak (and why) when there is no readable store."""
    path = Path(run.store_path) if run.store_path else None
    if path is None or not path.is_file():
        return Peaks()
    try:
        store = Store(path, readonly=True)
    except UsageError as exc:
        return Peaks(problem=f"cannot read store: {exc}")
    try:
        return find(store, run)
    except (sqlite3.Error, UsageError) as exc:
        return Peaks(problem=f"cannot read store: {exc}")
    finally:
        store.close()


__all__ = ["find", "lookup", "peak_runs"]
