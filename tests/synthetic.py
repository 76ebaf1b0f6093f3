"""Made-up runs, for testing the report and trying its layout without measuring anything. Test support, not part of
dlbench: nothing it makes can reach a user's store.

Never measurements: a synthetic run's suite note says SYNTHETIC, its fingerprint's hostname is "synthetic", and
every figure comes from a formula. The statistics are derived from the made-up iteration times by the same code
that derives them for real runs (measure.stats.summarize).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from dlbench.core.cases import Case
from dlbench.core.results import Run
from dlbench.measure.stats import summarize
from dlbench.store import Store
from dlbench.workloads import WORKLOADS

NOTE = "SYNTHETIC: made-up figures for testing the report; nothing was measured."


def _speed(case: Case) -> float:
    """A plausible samples/s: a backend-specific rate of FLOPs, slower for fp16 on a CPU, train ≈ 3× the work."""
    flops = WORKLOADS[case.workload].flops_per_sample(case.size, case.mode)
    rate = 2e9 * (1 + zlib.crc32(case.backend.encode()) % 7 / 3)  # 2–6 GFLOP/s, fixed per backend
    if case.precision == "fp16":
        rate *= 0.6
    return rate / flops


def fingerprint(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "hostname": "synthetic", "os": "Linux-synthetic", "kernel": "0", "python": "3.11.0",
        "cpu": {"model": "Synthetic CPU", "arch": "x86_64", "logical_cores": 2, "allowed_cpus": 2},
        "ram_bytes": 8 * 2**30, "gpus": [], "packages": {"numpy": "2.0.0"}, "dlbench": "0.1.0", "env": {},
    }  # fmt: skip
    base.update(overrides)
    return base


def document(case: Case, status: str = "ok", error: str | None = None, speed: float | None = None, n: int = 30,
             noise: float = 0.02, seed: int = 0, versions: Mapping[str, str] | None = None) -> dict[str, Any]:
    """One result document shaped as a worker writes it."""
    doc: dict[str, Any] = {"case": case.to_dict(), "case_key": case.key, "status": status, "error": error,
                           "versions": dict(versions or {case.backend: "1.0"}),
                           "settings": {"threads": 2, "synthetic": True}}  # fmt: skip
    if status != "ok":
        return doc
    rng = np.random.default_rng(zlib.crc32(f"{seed}:{case.key}".encode()))
    median = case.batch / (speed if speed is not None else _speed(case))
    samples = median * np.exp(rng.normal(0.0, noise, n))
    doc["samples_s"] = [float(s) for s in samples]
    doc["stats"] = summarize(doc["samples_s"], case.batch)
    doc["first_step_s"] = float(median * 3 + 0.05 * (1 + zlib.crc32(case.backend.encode()) % 5))
    work = math.prod(case.size.values())
    doc["memory"] = {"rss_peak_bytes": int(100 * 2**20 + work * 4096 * (2 if case.mode == "train" else 1)),
                     "rss_peak_covers": "measured steps"}  # fmt: skip
    return doc


def make_run(store_path: str | Path, plan: list[Case], *, run_id: str = "synthetic",
             outcome: Callable[[Case], dict[str, Any]] | None = None, suite: str = "synthetic",
             fp: dict[str, Any] | None = None, settings: dict[str, Any] | None = None) -> Run:
    """Write a synthetic run through the Store (as a real run is written) and load it back.
    `outcome(case)` gives document() keyword arguments per case (status, error, speed, n, noise, seed, ...)."""
    from dlbench.runs.api import load_run

    store = Store(store_path)
    try:
        store.create_run(run_id, suite, plan, {"note": NOTE, **(settings or {})}, fp or fingerprint())
        for i, case in enumerate(plan):
            store.add_result(run_id, case, i, document(case, **(outcome(case) if outcome else {})))
        store.set_run_status(run_id, "complete")
        return load_run(run_id, store)
    finally:
        store.close()
