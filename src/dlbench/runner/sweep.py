"""A sweep: run a plan's cases one by one, each in its own worker process, and store each result on arrival."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from dlbench.backends import get_backend
from dlbench.core.cases import Case, MeasureConfig
from dlbench.envs.select import Interpreter
from dlbench.measure.stats import summarize
from dlbench.runner.client import WorkerClient
from dlbench.runner.verification import blocked_result, group_key, verification_case, verify_with
from dlbench.store import Store
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
    store: Store,
    run_id: str,
    plan: list[Case],
    measure: MeasureConfig,
    timeout_s: float,
    cpus: list[int] | None = None,
    isolation: str = "fork",
    on_event: EventCallback | None = None,
    skip: set[str] | None = None,
    verify: bool = False,
    memory_limit: int | None = None,
    interpreters: Mapping[str, Interpreter] | None = None,
) -> None:
    """Run every case of `plan` not in `skip`. With `verify`, each backend × workload × precision × device is
    first verified against the float64 reference (once per run: records are stored) and not timed if it fails.
    With `memory_limit` (bytes), a case whose RSS reaches it is killed and recorded `oom` (runner/memory_limit.py).
    `interpreters` maps a backend spec (`theano`, `torch@old`) to the interpreter its workers run in (dlbench.envs);
    other backends run in this one.
    A KeyboardInterrupt stops the sweep after killing the worker; every result already stored stays stored."""
    skip = skip or set()
    interpreters = interpreters or {}
    clients: dict[str, WorkerClient] = {}
    verified = store.verifications(run_id)

    def client_for(case: Case, logs: Path) -> WorkerClient:
        spec = case.backend_spec
        if spec not in clients:
            for other in clients.values():  # plans group cases by backend: free the idle servers
                other.close()
            mode = isolation if get_backend(case.backend).fork_safe else "spawn"
            interpreter = interpreters.get(spec)
            if interpreter is None:
                clients[spec] = WorkerClient(case.backend, logs, cpus, mode, memory_limit=memory_limit)
            else:
                (logs / spec).mkdir(exist_ok=True)  # two specs of one backend would share log names
                clients[spec] = WorkerClient(case.backend, logs / spec, cpus, mode, python=interpreter.python,
                                             memory_limit=memory_limit, env=interpreter.worker_env())  # fmt: skip
        return clients[spec]

    def outcome(case: Case, logs: Path) -> dict[str, Any]:
        interpreter = interpreters.get(case.backend_spec)
        info = get_backend(case.backend)
        ok, reason = interpreter.available(info) if interpreter else info.available()
        if not ok:
            return {"status": "unsupported", "error": reason}
        client = client_for(case, logs)
        if verify:
            key = group_key(case)
            if key not in verified:
                verified[key] = verify_with(client, verification_case(case), timeout_s)
                store.add_verification(run_id, key, verified[key])
                if on_event:
                    on_event("verified", case, verified[key])
            blocked = blocked_result(verified[key])
            if blocked is not None:
                return blocked
        return client.run(case, measure, timeout_s)

    with tempfile.TemporaryDirectory(prefix="dlbench-logs-") as logs:
        try:
            for seq, case in enumerate(plan):
                if case.key in skip:
                    continue
                if on_event:
                    on_event("start", case, None)
                raw = outcome(case, Path(logs))
                if case.backend_spec in interpreters:  # which interpreter measured it, with the result
                    raw.setdefault("interpreter", interpreters[case.backend_spec].to_dict())
                doc = finish_document(case, raw, measure, timeout_s)
                store.add_result(run_id, case, seq, doc)
                if on_event:
                    on_event("result", case, doc)
        finally:
            for client in clients.values():
                client.close()
