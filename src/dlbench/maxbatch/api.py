"""`dlbench.maxbatch.run(...)`: for each backend × precision × mode of one workload, the largest batch that fits.

Each probe is one case in a process of its own (a fresh fork of the backend's serving worker, or a fresh
interpreter for backends that are not fork-safe) running `steps` steps of the case (default 2: the first, where
compilation and the allocator's first pool happen, then one more): enough to reach the case's peak memory, not
a timed measurement. `steps=1` halves the cost where steps are slow (a CPU near its cap) and still runs the
whole forward and backward pass once. What "does not fit" means:
- on a CUDA device, the framework's own out-of-memory error (classified `oom` by the backend);
- on the CPU, the `memory_limit`: the parent kills a probe whose RSS (its whole process, framework included)
  reaches it, and records `oom` (runner/memory_limit.py). Without one, the cap is 80% of the memory available
  when the search starts, so that the kernel's OOM killer, which may pick any process, never has to act.
A run is stored like any other (fingerprint, settings); each search is one finding of kind "maxbatch", written
the moment it ends, with every probe. Its plan is empty: a finding is not a timed case, and `--resume` has
nothing to measure.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dlbench.backends import check_options, get_backend
from dlbench.core.cases import DEVICES, MODES, Case, MeasureConfig
from dlbench.core.errors import UsageError, check_names, unknown
from dlbench.core.precisions import PRECISIONS
from dlbench.core.units import format_size
from dlbench.maxbatch.search import find_max_batch
from dlbench.measure.env import cuda_available
from dlbench.runner.memory_limit import available_bytes
from dlbench.runner.session import CUDA_MEMORY_LIMIT, Session, open_run, placement
from dlbench.store import default_store_path
from dlbench.workloads import WORKLOADS

KIND = "maxbatch"
DEFAULT_STEPS = 2
DEFAULT_PRECISIONS = ("fp32", "fp16")  # the seed's question: does fp16 fit a larger batch?
DEFAULT_MODES = ("train",)  # forward + backward holds every activation: the mode that runs out first
DEFAULT_MAX_BATCH = 65536
DEFAULT_TIMEOUT_S = 600.0
DEFAULT_WITHIN = 0.05  # bisect until the answer is within 5% (0: exact); see search.py
AUTO_LIMIT_SHARE = 0.8
# Where the workload's own default size would make every CPU probe take minutes, a CPU search starts from these
# (--set overrides them); see the README's "Largest batch that fits" for the measurements behind them.
CPU_SIZES: dict[str, dict[str, int]] = {"vgg16": {"image": 32}}



def probe_measure(steps: int) -> MeasureConfig:
    """The first step, then steps - 1 more, untimed as a benchmark (max_iters=0: the first step alone)."""
    return MeasureConfig(min_time_s=0.0, min_iters=max(steps - 1, 1), max_time_s=1e9, max_iters=steps - 1,
                         warmup_iters=0, target_rel_ci=0.0)  # fmt: skip


ProbeCallback = Callable[[Case, dict[str, Any]], None]  # (the probe's case, its probe record)
FindingCallback = Callable[[str, dict[str, Any]], None]  # (the finding's key, its document)


@dataclass
class MaxBatchRun:
    run_id: str
    store_path: str
    findings: dict[str, dict[str, Any]] = field(default_factory=dict)


def finding_key(case: Case) -> str:
    """`vgg16-image=32-torch-fp32-train-cpu`: the case's key without its batch."""
    size = ",".join(f"{k}={v}" for k, v in case.size.items() if k != "batch")
    return "-".join(p for p in (case.workload, size, case.backend, case.precision, case.mode, case.device) if p)


def memory_figure(doc: dict[str, Any]) -> tuple[str, int] | None:
    """The probe's peak memory: the device allocator's figure where the backend reports one, else the larger of
    the worker's own peak RSS over the steps (exact, VmHWM) and the watcher's (sampled, whole process life)."""
    memory = doc.get("memory") or {}
    for key, value in memory.items():
        if not key.startswith("rss_") and isinstance(value, int):
            return key, value
    rss = [v for v in (memory.get("rss_peak_bytes"), (doc.get("memory_watch") or {}).get("peak_rss_bytes"))
           if isinstance(v, int) and v > 0]  # fmt: skip
    return ("rss_peak_bytes", max(rss)) if rss else None


def probe_record(batch: int, doc: dict[str, Any]) -> dict[str, Any]:
    """What a finding keeps of one probe: its status, memory and step times (step_s: the last step's time, the
    first step's where it ran only one)."""
    figure = memory_figure(doc)
    samples = doc.get("samples_s") or []
    return {
        "batch": batch, "status": doc.get("status"),
        "error": (doc.get("error") or "").strip().splitlines()[0][:400] if doc.get("error") else None,
        "memory_figure": figure[0] if figure else None, "memory_bytes": figure[1] if figure else None,
        "memory": doc.get("memory"), "memory_watch": doc.get("memory_watch"),
        "first_step_s": doc.get("first_step_s"),
        "step_s": samples[-1] if samples else doc.get("first_step_s"),
        "wall_s": doc.get("wall_s"), "isolation": doc.get("isolation"),
    }  # fmt: skip


def _sizes(workload: str, sets: Mapping[str, Sequence[int] | int] | None, device: str) -> dict[str, int]:
    spec = WORKLOADS[workload]
    names = {p.name for p in spec.params}
    given: dict[str, int] = {}
    for key, values in (sets or {}).items():
        values = [values] if isinstance(values, int) else list(values)
        if key == "batch":
            raise UsageError("bad --set batch: maxbatch searches the batch; bound it with --start and --max-batch")
        if key not in names:
            raise unknown(f"size parameter for {workload}", key, names - {"batch"})
        if len(values) != 1:
            raise UsageError(f"bad --set {key}={','.join(map(str, values))}: maxbatch takes one value per size")
        given[key] = int(values[0])
    defaults = CPU_SIZES.get(workload, {}) if device == "cpu" else {}
    return spec.size({**defaults, **given, "batch": 1})  # validates every value


def run(
    workload: str,
    backends: Sequence[str],
    *,
    precisions: Sequence[str] | None = None,
    modes: Sequence[str] | None = None,
    sets: Mapping[str, Sequence[int] | int] | None = None,
    device: str | None = None,
    memory_limit: int | str | None = None,
    start: int = 1,
    max_batch: int = DEFAULT_MAX_BATCH,
    within: float = DEFAULT_WITHIN,
    steps: int = DEFAULT_STEPS,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    store: str | Path | None = None,
    cpus: Sequence[int] | None = None,
    isolation: str = "fork",
    options: dict[str, Any] | None = None,
    on_probe: ProbeCallback | None = None,
    on_finding: FindingCallback | None = None,
) -> MaxBatchRun:
    """Search the largest batch of `workload` that fits, per backend × precision × mode; store each finding."""
    if workload not in WORKLOADS:
        raise unknown("workload", workload, WORKLOADS)
    if not backends:
        raise UsageError("give at least one backend (--backends)")
    for name in backends:
        get_backend(name)
    check_options(backends, options)
    precisions = check_names("precision", list(precisions or DEFAULT_PRECISIONS), PRECISIONS)
    modes = check_names("mode", list(modes or DEFAULT_MODES), MODES)
    device = device if device is not None else ("cuda" if cuda_available() else "cpu")
    if device not in DEVICES:
        raise unknown("device", device, DEVICES)
    if start < 1:
        raise UsageError(f"bad --start {start}: must be a batch ≥ 1")
    if max_batch < start:
        raise UsageError(f"bad --max-batch {max_batch}: must be ≥ --start ({start})")
    if timeout_s <= 0:
        raise UsageError(f"bad timeout {timeout_s:g}: must be > 0 seconds")
    if not 1 <= steps <= 10:
        raise UsageError(f"bad --steps {steps}: must be 1 to 10")
    if not 0 <= within < 1:
        raise UsageError(f"bad --within {within:.0%}: must be ≥ 0% (exact) and < 100%")
    if device == "cuda" and memory_limit is not None:
        raise UsageError(CUDA_MEMORY_LIMIT)
    size = _sizes(workload, sets, device)
    where = placement(list(cpus) if cpus is not None else None, isolation, memory_limit)
    limit, source = where.memory_limit, "--memory-limit"
    if limit is None and device == "cpu":
        available = available_bytes()
        if available is None:
            raise UsageError("maxbatch on the cpu needs --memory-limit SIZE here (available memory is unreadable)")
        limit = int(available * AUTO_LIMIT_SHARE)
        source = f"auto: {AUTO_LIMIT_SHARE:.0%} of the {format_size(available)} available"
    elif limit is None:
        source = "device memory"
    where = replace(where, memory_limit=limit)
    settings = {
        "task": KIND, "workload": workload, "size": {k: v for k, v in size.items() if k != "batch"},
        "device": device, "backends": list(backends), "precisions": precisions, "modes": modes,
        "memory_limit_bytes": limit, "memory_limit_source": source, "start": start, "max_batch": max_batch,
        "within": within, "timeout_s": timeout_s, "steps": steps, "measure": probe_measure(steps).to_dict(),
        "options": dict(options or {}), "argv": sys.argv,
    }  # fmt: skip
    store_path = Path(store) if store else default_store_path()
    # Only now, with everything validated, is anything written.
    session = open_run(store_path, f"maxbatch {workload}", [], settings, where)
    assert session.run_id is not None
    result = MaxBatchRun(session.run_id, str(store_path))
    with session:
        for backend in backends:
            for precision in precisions:
                for mode in modes:
                    base = Case(workload, dict(size), backend, precision, mode, device, options=dict(options or {}))
                    document = _search(session, base, (start, max_batch, within), probe_measure(steps), timeout_s,
                                       on_probe)  # fmt: skip
                    document.update(memory_limit_bytes=limit, memory_limit_source=source)
                    key = finding_key(base)
                    session.add_finding(KIND, key, document)  # the moment it is known
                    result.findings[key] = document
                    if on_finding:
                        on_finding(key, document)
    return result


def _search(
    session: Session, base: Case, bounds: tuple[int, int, float], measure: MeasureConfig, timeout_s: float,
    on_probe: ProbeCallback | None,
) -> dict[str, Any]:
    start, max_batch, within = bounds
    document: dict[str, Any] = {
        "workload": base.workload, "size": {k: v for k, v in base.size.items() if k != "batch"},
        "backend": base.backend, "precision": base.precision, "mode": base.mode, "device": base.device,
        "options": base.options, "start": start, "max_batch": max_batch, "within": within,
        "steps": measure.max_iters + 1, "probes": [],
    }  # fmt: skip
    available, reason = session.available(base)
    if not available:
        document.update(verdict="stopped", largest_ok=None, smallest_oom=None,
                        stopped={"batch": None, "status": "unsupported", "error": reason})  # fmt: skip
        return document
    docs: dict[int, dict[str, Any]] = {}
    began = time.monotonic()

    def probe(batch: int) -> str:
        case = Case(base.workload, {**base.size, "batch": batch}, base.backend, base.precision, base.mode,
                    base.device, options=dict(base.options))  # fmt: skip
        doc = session.measure(case, measure, timeout_s)
        docs[batch] = doc
        record = probe_record(batch, doc)
        document["probes"].append(record)
        if on_probe:
            on_probe(case, record)
        for name in ("versions", "settings"):  # as the framework reported them, from a probe that got that far
            if isinstance(doc.get(name), dict) and "error" not in doc[name]:
                document.setdefault(name, doc[name])
        return str(doc.get("status"))

    found = find_max_batch(probe, start, max_batch, within)
    document.update(verdict=found.verdict, largest_ok=found.largest_ok, smallest_oom=found.smallest_oom,
                    search_wall_s=time.monotonic() - began)  # fmt: skip
    if found.largest_ok is not None:
        figure = memory_figure(docs[found.largest_ok])
        document["memory_at_largest"] = {"figure": figure[0], "bytes": figure[1]} if figure else None
    if found.smallest_oom is not None:
        document["oom_error"] = probe_record(found.smallest_oom, docs[found.smallest_oom])["error"]
    if found.stopped_at is not None:
        document["stopped"] = {"batch": found.stopped_at, "status": found.stopped_status,
                               "error": probe_record(found.stopped_at, docs[found.stopped_at])["error"]}  # fmt: skip
    return document
