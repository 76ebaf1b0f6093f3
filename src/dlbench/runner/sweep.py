"""A sweep: a run's cases one by one through the session's workers, each result stored the moment it arrives.

With verification on, each backend × workload × precision × device is verified against the float64 reference
before its first timed case (once per run: the records are stored, so a resumed run does not verify again), and a
group that fails is not timed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dlbench.core.cases import Case, MeasureConfig
from dlbench.measure.stats import summarize
from dlbench.runner.session import Session
from dlbench.runner.verification import blocked_result, group_key, verification_case
from dlbench.workloads import get_workload

# on_event(kind, case, document): kind is "start" (document None), "verified" (the verification record of the
# case's backend × workload × precision × device) or "result".
EventCallback = Callable[[str, Case, dict[str, Any] | None], None]


def finish_document(case: Case, raw: dict[str, Any], measure: MeasureConfig, timeout_s: float) -> dict[str, Any]:
    """The stored result: the worker's raw document plus what the parent derives (statistics, FLOP rates)."""
    doc = {"case": case.to_dict(), "case_key": case.key, **raw, "measure": measure.to_dict(), "timeout_s": timeout_s}
    doc.setdefault("error", None)
    if doc["status"] == "ok":
        stats = summarize(doc["samples_s"], case.batch)
        if doc.get("stopped_by") == "max_time" and stats["n"] < measure.min_iters:
            stats["warnings"].insert(0, f"max_time_s={measure.max_time_s:g} reached after {stats['n']} timed "
                                        f"iterations (min_iters={measure.min_iters})")  # fmt: skip
        doc["stats"] = stats
        workload = get_workload(case.workload)
        flops = workload.flops_per_sample(workload.size(case.size), case.mode)
        doc["flops_per_sample"] = flops
        doc["achieved_flops_per_s"] = flops * stats["samples_per_s"]
    return doc


def sweep(
    session: Session,
    plan: list[Case],
    measure: MeasureConfig,
    timeout_s: float,
    on_event: EventCallback | None = None,
    skip: set[str] | None = None,
    verify: bool = False,
) -> None:
    """Run every case of `plan` not in `skip` in the session's run. A KeyboardInterrupt stops the sweep after the
    worker is killed; every result already stored stays stored."""
    skip = skip or set()
    verified = session.verifications()

    def outcome(case: Case) -> dict[str, Any]:
        ok, reason = session.available(case)
        if not ok:
            return {"status": "unsupported", "error": reason}
        if verify:
            key = group_key(case)
            if key not in verified:
                verified[key] = session.verify(verification_case(case), timeout_s)
                session.add_verification(key, verified[key])
                if on_event:
                    on_event("verified", case, verified[key])
            blocked = blocked_result(verified[key])
            if blocked is not None:
                return blocked
        return session.measure(case, measure, timeout_s)

    for seq, case in enumerate(plan):
        if case.key in skip:
            continue
        if on_event:
            on_event("start", case, None)
        raw = outcome(case)
        interpreter = session.interpreter(case.backend_spec)
        if interpreter is not None:  # which interpreter measured it (or would have), with the result
            raw.setdefault("interpreter", interpreter.to_dict())
        document = finish_document(case, raw, measure, timeout_s)
        session.add_result(case, seq, document)
        if on_event:
            on_event("result", case, document)
