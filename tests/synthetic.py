"""Made-up runs, for testing the report and trying its layout without measuring anything. Test support, not part of
dlbench: nothing it makes can reach a user's store.

Never measurements: a synthetic run's suite note says SYNTHETIC, its fingerprint's hostname is "synthetic", and
every figure comes from a formula. The statistics are derived from the made-up iteration times by the same code
that derives them for real runs (runner.attempts: each repetition's statistics, then the case's figure).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from dlbench.core.cases import Case, MeasureConfig
from dlbench.core.results import Run
from dlbench.runner.attempts import attempt_document, case_document
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
             noise: float = 0.02, seed: int = 0, versions: Mapping[str, str] | None = None, repeat: int = 3,
             between: float = 0.01, disturbed: bool = False) -> dict[str, Any]:
    """One result document shaped as the runner writes it: `repeat` processes, each with `n` iterations spread by
    `noise` around a process median that itself varies by `between` (both log-normal); `disturbed` makes every
    window's neighbour take 50% of the CPUs."""
    raw: dict[str, Any] = {"status": status, "error": error, "versions": dict(versions or {case.backend: "1.0"}),
                           "settings": {"threads": 2, "synthetic": True}}  # fmt: skip
    if status != "ok":
        return {"case": case.to_dict(), "case_key": case.key, **raw}
    rng = np.random.default_rng(zlib.crc32(f"{seed}:{case.key}".encode()))
    median = case.batch / (speed if speed is not None else _speed(case))
    raw["first_step_s"] = float(median * 3 + 0.05 * (1 + zlib.crc32(case.backend.encode()) % 5))
    work = math.prod(case.size.values())
    raw["memory"] = {"rss_peak_bytes": int(100 * 2**20 + work * 4096 * (2 if case.mode == "train" else 1)),
                     "rss_peak_covers": "measured steps"}  # fmt: skip
    share = 0.5 if disturbed else 0.0
    window = {"wall_s": 1.0, "cpus": [0, 1], "threads": 2, "own_cpu_s": 2 - 2 * share, "outside_cpu_s": 2 * share,
              "steal_s": 0.0, "outside_share": share, "cpu_share": 1 - share}  # fmt: skip
    measure = MeasureConfig(repeat=repeat, retries=0, min_iters=3)
    slots = []
    for r in range(repeat):
        process_median = median * float(np.exp(rng.normal(0.0, between))) if repeat > 1 else median
        samples = [float(v) for v in process_median * np.exp(rng.normal(0.0, noise, n))]
        raw_r = {**raw, "pid": 1000 + r, "samples_s": samples, "window": window}
        slots.append([attempt_document(case, raw_r, measure, 60.0, r + 1, 1)])
    return case_document(case, slots, measure)


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
