"""`dlbench.peak.api.run(...)`: measure this machine's peak on one device — the sustained matrix-multiply FLOP/s
of each precision and the memory bandwidth of an array copy — through every framework whose registry entry declares
a peak module (Framework.peak), and store it as a run of suite `peak` (findings kind `peak`, one per framework ×
quantity × precision, each written the moment it is measured). The machine's figure for a precision is the best
any framework reached (figures.best); later runs' tables show their achieved FLOP/s as a % of it when they ran on
the same machine (lookup.py).

Each framework × quantity × precision runs in a worker process of its own (the `call` task, forked from a server
that imported the framework once). A framework that is not installed, or lacks a precision on the device, is an
`unsupported` finding with the reason (never a silent omission); one that crashes, runs out of memory or hangs past
the timeout is an `error` finding for that measurement only.
Parent-side module: never imports a framework.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlbench.backends import FRAMEWORKS
from dlbench.cluster.api import ClusterSpec, on_nodes
from dlbench.core.cases import DEVICES, Case
from dlbench.core.errors import UsageError, check_names, unknown
from dlbench.measure.env import cuda_available
from dlbench.peak.figures import KIND, PRECISIONS
from dlbench.runner.session import Session, open_run, placement
from dlbench.store import default_store_path

TARGET = "dlbench.peak.worker:measure_peak"
DEFAULT_SECONDS = 2.0  # per framework × quantity × precision
MAX_SECONDS = 600.0
# Matrix sizes tried (smallest first, larger ones only while the budget allows): large enough to be compute bound
# where the budget reaches them (a 2048² fp32 product is 17 GFLOP on 48 MiB; 16384² is 8.8 TFLOP on 3 GiB).
SIZES = {"cpu": (256, 512, 1024, 2048), "cuda": (2048, 4096, 8192, 16384)}
# Bytes copied per call: well beyond any cache, so the figure is memory's.
COPY_BYTES = {"cpu": 256 * 2**20, "cuda": 2 * 2**30}
MAX_SIZE = 65536

OnFinding = Callable[[dict[str, Any]], None]


def peak_frameworks() -> list[str]:
    """The frameworks whose registry entry declares a peak module, in registry order."""
    return [f.name for f in FRAMEWORKS if f.peak is not None]


def finding_key(quantity: str, precision: str, framework: str) -> str:
    return f"{quantity}-{precision}-{framework}" if quantity == "matmul" else f"{quantity}-{framework}"


def _check(device: str, frameworks: Sequence[str] | None, seconds: float, sizes: Sequence[int] | None,
           copy_bytes: int | None) -> tuple[list[str], list[int], int]:  # fmt: skip
    if device not in DEVICES:
        raise unknown("device", device, DEVICES)
    names = check_names("framework", list(frameworks), peak_frameworks()) if frameworks else peak_frameworks()
    if not names:
        raise UsageError("no framework's registry entry declares a peak module: nothing to measure with")
    number = isinstance(seconds, (int, float)) and not isinstance(seconds, bool)
    if not number or not math.isfinite(seconds) or not 0 < seconds <= MAX_SECONDS:
        raise UsageError(f"bad --seconds {seconds!r}: must be a number of seconds > 0 and at most {MAX_SECONDS:g}")
    chosen = list(sizes) if sizes is not None else list(SIZES[device])
    bad = [n for n in chosen if isinstance(n, bool) or not isinstance(n, int) or not 16 <= n <= MAX_SIZE]
    if bad or not chosen:
        raise UsageError(f"bad matrix sizes {chosen!r}: each an integer from 16 to {MAX_SIZE}")
    nbytes = COPY_BYTES[device] if copy_bytes is None else copy_bytes
    if isinstance(nbytes, bool) or not isinstance(nbytes, int) or not 2**20 <= nbytes <= 2**40:
        raise UsageError(f"bad copy size {nbytes!r}: bytes from 1MiB to 1TiB")
    if device == "cuda" and not cuda_available():
        raise UsageError("--device cuda: no NVIDIA GPU here (nvidia-smi lists none); --device cpu measures the CPU")
    return names, sorted(set(chosen)), nbytes


def run(
    device: str = "cpu",
    *,
    frameworks: Sequence[str] | None = None,
    cpus: Sequence[int] | None = None,
    store: str | Path | None = None,
    seconds: float = DEFAULT_SECONDS,
    sizes: Sequence[int] | None = None,
    copy_bytes: int | None = None,
    timeout_s: float | None = None,
    on_start: Callable[[str, list[str]], None] | None = None,
    on_finding: OnFinding | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """Measure and store; returns (run id, findings in the order measured). Validates everything before writing.
    `cpus`: pin every worker to these CPU ids (the peak then is that many CPUs' peak, and applies to runs given as
    many: figures.py); default: every CPU this process may use. `seconds`: the time budget of each framework ×
    quantity × precision; `sizes`: the matrix sizes to try (default SIZES[device]); `copy_bytes`: the array copied;
    `on_start(run_id, frameworks)` once the run is open, `on_finding(document)` as each figure is stored."""
    job = _Job.of(device, frameworks, seconds, sizes, copy_bytes, timeout_s)
    # No plan of cases: a peak's findings are not a suite's results (so `show`/`report` keep to measured runs).
    session = open_run(store or default_store_path(), KIND, [], job.settings, placement(list(cpus) if cpus else None))
    return job.measure(session, on_start, on_finding)


def run_on_cluster(
    cluster: ClusterSpec,
    device: str = "cpu",
    *,
    frameworks: Sequence[str] | None = None,
    store: str | Path | None = None,
    seconds: float = DEFAULT_SECONDS,
    sizes: Sequence[int] | None = None,
    copy_bytes: int | None = None,
    timeout_s: float | None = None,
    on_start: Callable[[str, list[str]], None] | None = None,
    on_finding: OnFinding | None = None,
) -> list[tuple[str, list[dict[str, Any]]]]:
    """run() on every node the cluster spec selects, one node after another (dlbench.cluster.api.on_nodes): a peak
    run per machine, its fingerprint taken there, so each machine's results are held against its own peak."""
    job = _Job.of(device, frameworks, seconds, sizes, copy_bytes, timeout_s)
    with on_nodes(cluster, store or default_store_path(), KIND, job.settings, placement(), device) as sessions:
        return [job.measure(session, on_start, on_finding) for session in sessions]


@dataclass(frozen=True)
class _Job:
    """A validated peak measurement: what each framework is asked, and the settings its run stores."""

    device: str
    names: list[str]
    sizes: list[int]
    nbytes: int
    seconds: float
    timeout_s: float

    @classmethod
    def of(cls, device: str, frameworks: Sequence[str] | None, seconds: float, sizes: Sequence[int] | None,
           copy_bytes: int | None, timeout_s: float | None) -> _Job:  # fmt: skip
        names, chosen, nbytes = _check(device, frameworks, seconds, sizes, copy_bytes)
        timeout = timeout_s if timeout_s is not None else 120.0 + 4 * seconds
        if not (math.isfinite(timeout) and timeout > 0):
            raise UsageError(f"bad timeout {timeout!r}: must be > 0 seconds")
        return cls(device, names, chosen, nbytes, seconds, timeout)

    @property
    def settings(self) -> dict[str, Any]:
        return {"peak": {"device": self.device, "frameworks": self.names, "precisions": list(PRECISIONS[self.device]),
                         "seconds": self.seconds, "sizes": self.sizes, "copy_bytes": self.nbytes},
                "timeout_s": self.timeout_s, "argv": sys.argv}  # fmt: skip

    def measure(self, session: Session, on_start: Callable[[str, list[str]], None] | None,
                on_finding: OnFinding | None) -> tuple[str, list[dict[str, Any]]]:  # fmt: skip
        """Every framework's figures in the session's run: (run id, findings in the order measured)."""
        run_id = session.run_id
        assert run_id is not None
        findings: list[dict[str, Any]] = []
        with session:
            if on_start:
                on_start(run_id, self.names)
            for framework in self.names:
                findings += _measure_framework(session, framework, self.device, self.seconds, self.sizes,
                                               self.nbytes, self.timeout_s, on_finding)  # fmt: skip
        return run_id, findings


def _measure_framework(session: Session, framework: str, device: str, seconds: float, sizes: list[int], nbytes: int,
                       timeout_s: float, on_finding: OnFinding | None) -> list[dict[str, Any]]:  # fmt: skip
    backend = next(f for f in FRAMEWORKS if f.name == framework).backends[0].name  # the worker's host backend
    found = []
    for quantity, precision in [*(("matmul", p) for p in PRECISIONS[device]), ("copy", "fp32")]:
        case = Case(KIND, {}, backend, precision, "forward", device)
        args = {"quantity": quantity, "seconds": seconds, "sizes": sizes, "nbytes": nbytes}
        raw = session.call(case, TARGET, args, timeout_s)
        doc: dict[str, Any] = {"framework": framework, "backend": backend, "quantity": quantity,
                               "precision": precision if quantity == "matmul" else None, "device": device,
                               **raw}  # fmt: skip
        session.add_finding(KIND, finding_key(quantity, precision, framework), doc)
        found.append(doc)
        if on_finding:
            on_finding(doc)
    return found


__all__ = ["COPY_BYTES", "DEFAULT_SECONDS", "KIND", "SIZES", "finding_key", "peak_frameworks", "run",
           "run_on_cluster"]
