"""`dlbench.verify.api.run(...)`: prove that each backend computes the same function as the float64 reference."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from dlbench.backends import BACKENDS, check_options
from dlbench.core.cases import DEVICES, Case, split_spec
from dlbench.core.errors import UsageError, check_names, unknown
from dlbench.core.precisions import PRECISIONS
from dlbench.runner.environments import find_env
from dlbench.runner.interpreters import check_spec, resolve
from dlbench.runner.session import Session, placement
from dlbench.runner.verification import DEFAULT_SIZES
from dlbench.workloads import WORKLOADS


def run(
    backends: Sequence[str] | None = None,
    *,
    workloads: Sequence[str] | None = None,
    precisions: Sequence[str] | None = None,
    sets: Mapping[str, int] | None = None,
    device: str = "cpu",
    timeout_s: float = 600.0,
    cpus: Sequence[int] | None = None,
    isolation: str = "fork",
    options: dict[str, Any] | None = None,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    pythons: Mapping[str, str] | None = None,
    envs: Mapping[str, str] | None = None,
    on_note: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Compare every backend × workload × precision with the float64 NumPy reference at small sizes (`sets`
    overrides them, e.g. {"hidden": 64}): forward output and every parameter gradient. Returns one record each:
    status, forward_error, worst_grad_error, worst_grad, tolerance, passed. `pythons`/`envs`: as for a run.
    Nothing is stored."""
    backends = list(backends) if backends else [n for n, info in BACKENDS.items()
                                                if info.available()[0] or find_env(n)]  # fmt: skip
    for name in backends:
        check_spec(name)
    check_options(backends, options)
    workloads = check_names("workload", list(workloads or WORKLOADS), tuple(WORKLOADS))
    precisions = check_names("precision", list(precisions or PRECISIONS), PRECISIONS)
    if device not in DEVICES:
        raise unknown("device", device, DEVICES)
    if not timeout_s > 0:
        raise UsageError(f"bad timeout {timeout_s:g}: must be > 0 seconds")
    sizes: dict[str, dict[str, int]] = {}
    for workload in workloads:
        params = {p.name for p in WORKLOADS[workload].params}
        given = {k: int(v) for k, v in (sets or {}).items() if k in params}
        sizes[workload] = WORKLOADS[workload].size({**DEFAULT_SIZES[workload], **given})
    extra = set(sets or {}) - {p.name for w in workloads for p in WORKLOADS[w].params}
    if extra:
        raise UsageError(f"unknown size parameter {sorted(extra)[0]!r} for workloads {', '.join(workloads)}")
    where = placement(list(cpus) if cpus is not None else None, isolation)
    interpreters, notes = resolve(backends, pythons, envs)
    where = replace(where, interpreters=interpreters)
    if on_note is not None:  # which backend runs in which other interpreter, said before anything starts
        for note in notes:
            on_note(note)
    records: list[dict[str, Any]] = []
    with Session(where) as session:
        for spec in backends:
            backend, tag = split_spec(spec)
            for workload in workloads:
                for precision in precisions:
                    case = Case(workload, sizes[workload], backend, precision, "train", device,
                                options=dict(options or {}), env=tag)  # fmt: skip
                    records.append(session.verify(case, timeout_s))
                    if on_record:
                        on_record(records[-1])
    return records
