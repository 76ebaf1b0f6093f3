"""A sweep: a run's cases through the session's workers, every attempt stored the moment it arrives.

With verification on, each backend × workload × precision × device is verified against the float64 reference
before its first timed case (once per run: the records are stored, so a resumed run does not verify again), and a
group that fails is not timed; off the CPU, each timed size is verified too, at batch 1.

Trust on a busy machine (runner/attempts.py): the plan is swept `measure.repeat` times, in rounds (every case once,
then every case again, each time in a process of its own); an attempt whose window was disturbed is queued again
at the end of the sweep, at most `measure.retries` more times; with `measure.wait_quiet_s`, each timed attempt
first waits (bounded) for its CPUs to be quiet. A case's result is written once all its repetitions are settled;
a failed attempt settles the case at once. A resumed run keeps the attempts already stored and goes on from them.

With `measure.budget_s`, rounds beyond the second are a bonus: as round r+1 (r >= 2) is about to start, the
rounds so far took `elapsed`, one more takes about elapsed / r, and if that would end the sweep past the budget,
round r+1 and every later one are left out for every case (each figure then comes from r processes, as the
tables say). Retries of disturbed windows are not rounds: they still run.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

from dlbench.core.cases import Case, MeasureConfig
from dlbench.runner.attempts import attempt_document, case_document, is_disturbed, settled
from dlbench.runner.session import Session
from dlbench.runner.verification import blocked_result, verification_cases

# on_event(kind, case, document): kind is "start" (document None: a case's first attempt begins), "verified" (the
# verification record of the case's backend × workload × precision × device), "attempt" (one process's document,
# before the case is settled: a repetition, or a disturbed window to be measured again) or "result".
EventCallback = Callable[[str, Case, dict[str, Any] | None], None]


def finish_document(case: Case, raw: dict[str, Any], measure: MeasureConfig, timeout_s: float) -> dict[str, Any]:
    """The stored result of a case measured once: the worker's raw document plus what the parent derives."""
    return case_document(case, [[attempt_document(case, raw, measure, timeout_s)]], measure)


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
    worker is killed; every attempt and result already stored stays stored."""
    skip = skip or set()
    verified = session.verifications()
    seq = {case.key: i for i, case in enumerate(plan)}
    todo = [case for case in plan if case.key not in skip]
    stored = session.attempts() if todo else {}
    repeat = max(1, measure.repeat)
    slots: dict[str, list[list[dict[str, Any]]]] = {c.key: [[] for _ in range(repeat)] for c in todo}
    for case in todo:  # a resumed run: the attempts stored before
        for doc in stored.get(case.key, []):
            r = int(doc.get("repetition", 1)) - 1
            if 0 <= r < repeat:
                slots[case.key][r].append(doc)
    queue: deque[tuple[Case, int]] = deque((c, r) for r in range(repeat) for c in todo)
    started: set[str] = set()
    began, rounds_checked = time.monotonic(), 2  # rounds 1 and 2 always run

    def outcome(case: Case) -> dict[str, Any]:
        ok, reason = session.available(case)
        if not ok:
            return {"status": "unsupported", "error": reason}
        if verify:
            for key, check in verification_cases(case):  # off the CPU, at the timed size too
                if key not in verified:
                    verified[key] = session.verify(check, timeout_s)
                    session.add_verification(key, verified[key])
                    if on_event:
                        on_event("verified", case, verified[key])
                blocked = blocked_result(verified[key])
                if blocked is not None:
                    return blocked
        waited = session.wait_quiet(case, measure) if measure.wait_quiet_s > 0 else None
        raw = session.measure(case, measure, timeout_s)
        if waited is not None:
            raw["waited_quiet_s"] = waited
        return raw

    def done(key: str) -> bool:
        mine = slots[key]
        if any(a["status"] != "ok" for slot in mine for a in slot):
            return True
        return all(slot and settled(slot, measure) for slot in mine)

    written: set[str] = set()

    def settle(case: Case) -> None:
        written.add(case.key)
        document = case_document(case, slots[case.key], measure)
        session.add_result(case, seq[case.key], document)
        if on_event:
            on_event("result", case, document)

    for case in todo:  # resumed after its last attempt was stored but before its result was
        if any(slots[case.key]) and done(case.key):
            settle(case)
    while queue:
        case, r = queue.popleft()
        if r >= rounds_checked and measure.budget_s > 0:
            rounds_checked = r + 1
            elapsed = time.monotonic() - began
            if elapsed + elapsed / r > measure.budget_s:  # round r+1 would end the sweep past the budget
                queue = deque(item for item in queue if item[1] < r)
                for key in slots:
                    del slots[key][r:]
                for other in todo:  # those whose last kept round was their last attempt
                    if other.key not in written and all(slots[other.key]) and done(other.key):
                        settle(other)
                continue
        mine = slots[case.key]
        if done(case.key) or (mine[r] and settled(mine[r], measure)):
            continue  # settled (a failed repetition settles the whole case), or written just above on resume
        if on_event and case.key not in started:
            on_event("start", case, None)
        started.add(case.key)
        raw = outcome(case)
        interpreter = session.interpreter(case.backend_spec)
        if interpreter is not None:  # which interpreter measured it (or would have), with the result
            raw.setdefault("interpreter", interpreter.to_dict())
        attempt = attempt_document(case, raw, measure, timeout_s, r + 1, len(mine[r]) + 1)
        session.add_attempt(case, r + 1, attempt["attempt"], attempt)
        mine[r].append(attempt)
        if attempt["status"] == "ok" and is_disturbed(attempt) and not settled(mine[r], measure):
            queue.append((case, r))  # measured again later in the sweep
        if done(case.key):
            settle(case)
        elif on_event:
            on_event("attempt", case, attempt)
