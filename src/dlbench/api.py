"""The Python API. The CLI only wraps these functions; a notebook calls them directly:

    import dlbench
    run = dlbench.run("quick", backends=["torch", "numpy"])
    df = run.to_dataframe()
"""

from __future__ import annotations

import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from dlbench.backends import BACKENDS, framework_modules, get_backend
from dlbench.core.cases import DEVICES, MODES, Case, MeasureConfig, split_spec
from dlbench.core.errors import UsageError, unknown
from dlbench.core.precisions import PRECISIONS
from dlbench.core.results import Result, Run
from dlbench.core.units import parse_size
from dlbench.envs import find_env
from dlbench.envs.select import Interpreter, check_spec, environments_fingerprint, resolve
from dlbench.measure.env import cuda_available, fingerprint
from dlbench.runner.client import WorkerClient
from dlbench.runner.sweep import EventCallback, sweep
from dlbench.runner.verification import verify_with
from dlbench.store import Store, default_store_path
from dlbench.suites import Experiment, Suite, check_names, load_suite
from dlbench.verify import DEFAULT_SIZES
from dlbench.workloads import WORKLOADS

ISOLATIONS = ("fork", "spawn")


class Interrupted(Exception):
    """Raised by `run()` after Ctrl-C: what was measured is stored; `run(resume=run_id)` finishes the rest."""

    def __init__(self, run: Run) -> None:
        super().__init__(f"run {run.run_id} interrupted with {len(run.missing)} of {len(run.plan)} cases left")
        self.run = run


def default_suite() -> str:
    """`seed` where a CUDA GPU is present, `seed-cpu` otherwise."""
    return "seed" if cuda_available() else "seed-cpu"


def default_backends() -> list[str]:
    """Every framework backend (not the numpy harness): missing ones become `unsupported` results. A backend that
    needs a managed env (theano, aesara) joins only where an env of its name exists."""
    return [name for name, info in BACKENDS.items() if not info.harness and (not info.needs_env or find_env(name))]


def _parse_sets(sets: Mapping[str, Sequence[int]] | None) -> dict[str, list[int]]:
    parsed: dict[str, list[int]] = {}
    for key, values in (sets or {}).items():
        values = [values] if isinstance(values, int) else list(values)
        if not values:
            raise UsageError(f"bad size {key}=: give at least one value")
        parsed[key] = [int(v) for v in values]
    return parsed


def plan_cases(
    target: str | None = None,
    backends: Sequence[str] | None = None,
    precisions: Sequence[str] | None = None,
    modes: Sequence[str] | None = None,
    sets: Mapping[str, Sequence[int]] | None = None,
    device: str | None = None,
    options: dict[str, Any] | None = None,
) -> tuple[Suite, list[Case]]:
    """The suite (or a one-workload suite) and its cases, grouped by backend. Validates everything first."""
    target = target or default_suite()
    for name in backends or []:
        check_spec(name)  # a backend name, or `name@tag` for one run by another interpreter (dlbench.envs)
    sizes = _parse_sets(sets)
    if target in WORKLOADS:
        device_default = "cuda" if cuda_available() else "cpu"
        suite = Suite(name=target, experiments=[Experiment(target, sizes)], device=device_default,
                      description=f"workload {target} over the sizes given")  # fmt: skip
    else:
        suite = load_suite(target)
        for key, values in sizes.items():
            hit = False
            for experiment in suite.experiments:
                if key in {p.name for p in WORKLOADS[experiment.workload].params}:
                    experiment.sizes[key], hit = values, True
            if not hit:
                raise UsageError(f"unknown size parameter {key!r} for suite {suite.name!r}")
    if not backends and suite.backends:
        backends = [*suite.backends, *(b for b in suite.backends_if_env if find_env(b) and b not in suite.backends)]
    backends = list(backends) if backends else default_backends()
    if device is not None:
        if device not in DEVICES:
            raise unknown("device", device, DEVICES)
        suite.device = device
    for experiment in suite.experiments:
        if precisions:
            experiment.precisions = check_names("precision", list(precisions), PRECISIONS)
        if modes:
            experiment.modes = check_names("mode", list(modes), MODES)
    cases = [
        Case(e.workload, size, backend, precision, mode, suite.device, options=dict(options or {}), env=tag)
        for backend, tag in map(split_spec, backends)
        for e in suite.experiments
        if e.applies_to(backend)
        for size in e.grid()
        for precision in e.precisions
        for mode in e.modes
    ]
    skipped = [f"{b} leaves out {e.describe()}: {e.skip[split_spec(b)[0]]}"
               for e in suite.experiments for b in backends if split_spec(b)[0] in e.skip]  # fmt: skip
    if skipped:  # the note is stored with the run and printed with its tables: no empty cell goes unexplained
        suite.note = " ".join([suite.note, "Not run in this suite:", "; ".join(skipped) + "."]).strip()
    return suite, cases


def _measure_config(base: MeasureConfig, overrides: dict[str, Any] | None) -> MeasureConfig:
    names = {f.name for f in fields(MeasureConfig)}
    for key, value in (overrides or {}).items():
        if key not in names:
            raise unknown("measure setting", key, names)
        if value is None or (isinstance(value, (int, float)) and value < 0):
            raise UsageError(f"bad measure setting {key}={value!r}: must be a number ≥ 0")
    config = replace(base, **(overrides or {}))
    if config.max_time_s < config.min_time_s:
        raise UsageError(f"bad measure settings: max_time_s={config.max_time_s:g} < min_time_s={config.min_time_s:g}")
    return config


def _parse_cpus(cpus: Sequence[int] | None) -> list[int] | None:
    if cpus is None:
        return None
    import os

    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))
    bad = [c for c in cpus if c not in allowed]
    if bad or not cpus:
        raise UsageError(f"bad --cpus {','.join(map(str, cpus))}: allowed CPU ids are {sorted(allowed)}")
    return sorted(set(cpus))


def memory_limit_bytes(limit: int | str | None) -> int | None:
    """A --memory-limit as bytes: "4GiB", "512MiB", "8G" or a number of bytes; None for no cap."""
    if limit is None:
        return None
    if isinstance(limit, str):
        return parse_size(limit)
    if isinstance(limit, bool) or limit < 2**20:
        raise UsageError(f"bad --memory-limit {limit!r}: must be at least 1MiB (1048576 bytes)")
    return int(limit)


def interpreters_for(
    suite: Suite, plan: list[Case], pythons: Mapping[str, str] | None = None, envs: Mapping[str, str] | None = None
) -> tuple[dict[str, Interpreter], list[str]]:
    """Which interpreter runs each backend spec of the plan (dlbench.envs.select), and notes saying where one is
    not dlbench's own: the suite file's [pythons]/[envs] for the backends it runs, then the caller's."""
    specs, given = list(dict.fromkeys(c.backend_spec for c in plan)), {*(pythons or {}), *(envs or {})}
    from_suite = [{k: v for k, v in mapping.items() if k in specs and k not in given}
                  for mapping in (suite.pythons, suite.envs)]  # fmt: skip
    return resolve(specs, {**from_suite[0], **(pythons or {})}, {**from_suite[1], **(envs or {})})


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


def run(
    target: str | None = None,
    *,
    backends: Sequence[str] | None = None,
    precisions: Sequence[str] | None = None,
    modes: Sequence[str] | None = None,
    sets: Mapping[str, Sequence[int]] | None = None,
    device: str | None = None,
    store: str | Path | None = None,
    timeout_s: float | None = None,
    measure: dict[str, Any] | None = None,
    cpus: Sequence[int] | None = None,
    isolation: str = "fork",
    options: dict[str, Any] | None = None,
    resume: str | None = None,
    verify: bool = True,
    on_event: EventCallback | None = None,
    memory_limit: int | str | None = None,
    pythons: Mapping[str, str] | None = None,
    envs: Mapping[str, str] | None = None,
) -> Run:
    """Run a suite (`seed`, `seed-cpu`, `quick`, a suite file) or one workload over the sizes in `sets`.

    Unless `verify=False`, each backend × workload × precision is first verified against the float64 reference
    and not timed (result: error "failed verification") if it disagrees. Every result is stored the moment it
    arrives. On Ctrl-C, raises `Interrupted` (its `.run` holds what was
    measured); `run(resume=run_id)` measures only the cases still missing. `memory_limit` ("4GiB", or bytes)
    caps each case's resident memory: a case that reaches it is killed and recorded `oom`.
    `pythons` ({backend spec: interpreter path}) and `envs` ({backend spec: managed env name}) run a backend's
    workers under another interpreter; a spec is a backend name or `name@tag` (see dlbench.envs.select).
    """
    if isolation not in ISOLATIONS:
        raise unknown("isolation", isolation, ISOLATIONS)
    if timeout_s is not None and timeout_s <= 0:
        raise UsageError(f"bad timeout {timeout_s:g}: must be > 0 seconds")
    limit = memory_limit_bytes(memory_limit)
    if resume is not None:
        given = [n for n, v in (("a suite or workload", target), ("--backends", backends), ("--precisions", precisions),
                                ("--modes", modes), ("--set", sets), ("--device", device),
                                ("--memory-limit", memory_limit), ("--python", pythons), ("--env", envs))
                 if v]  # fmt: skip
        if given:
            raise UsageError(f"--resume finishes a run as it was planned; drop {', '.join(given)}")
        db = Store(store or default_store_path(), create=False)
        stored = db.get_run(resume)
        plan, settings = stored["plan"], stored["settings"]
        config = _measure_config(MeasureConfig.from_dict(settings["measure"]), measure)
        timeout = timeout_s or settings["timeout_s"]
        cpus_used, isolation = settings.get("cpus"), settings.get("isolation", isolation)
        verify = settings.get("verify", verify)
        limit = settings.get("memory_limit_bytes")
        interpreters = {k: Interpreter.from_dict(v) for k, v in (settings.get("interpreters") or {}).items()}
        run_id = resume
    else:
        suite, plan = plan_cases(target, backends, precisions, modes, sets, device, options)
        config = _measure_config(suite.measure, measure)
        timeout = timeout_s or suite.timeout_s
        cpus_used = _parse_cpus(cpus)
        interpreters, notes = interpreters_for(suite, plan, pythons, envs)
        settings = {
            "measure": config.to_dict(), "timeout_s": timeout, "cpus": cpus_used, "isolation": isolation,
            "verify": verify, "note": " ".join([suite.note, *(n + "." for n in notes)]).strip(),
            "description": suite.description, "argv": sys.argv, "memory_limit_bytes": limit,
            "interpreters": {spec: i.to_dict() for spec, i in interpreters.items()},
        }  # fmt: skip
        environment = fingerprint(framework_modules())
        if interpreters:  # each other interpreter: its path, Python version and packages, asked of it
            environment["environments"] = environments_fingerprint(interpreters)
        db = Store(store or default_store_path())  # only now, with everything validated, is anything written
        run_id = new_run_id()
        db.create_run(run_id, suite.name, plan, settings, environment)
    interrupted = False
    try:
        db.set_run_status(run_id, "running")
        sweep(db, run_id, plan, config, timeout, cpus_used, isolation, on_event, skip=db.done_keys(run_id),
              verify=verify, memory_limit=limit, interpreters=interpreters)
        db.set_run_status(run_id, "complete")
    except KeyboardInterrupt:
        db.set_run_status(run_id, "interrupted")
        interrupted = True
    try:
        result = load_run(run_id, db)
    finally:
        db.close()
    if interrupted:
        raise Interrupted(result)
    return result


def verify(
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
    status, forward_error, worst_grad_error, worst_grad, tolerance, passed. `pythons`/`envs`: as for `run`."""
    backends = list(backends) if backends else [n for n, info in BACKENDS.items()
                                                if info.available()[0] or find_env(n)]  # fmt: skip
    for name in backends:
        check_spec(name)
    interpreters, notes = resolve(backends, pythons, envs)
    if on_note is not None:  # which backend runs in which other interpreter, said before anything starts
        for note in notes:
            on_note(note)
    workloads = check_names("workload", list(workloads or WORKLOADS), tuple(WORKLOADS))
    precisions = check_names("precision", list(precisions or PRECISIONS), PRECISIONS)
    if device not in DEVICES:
        raise unknown("device", device, DEVICES)
    if isolation not in ISOLATIONS:
        raise unknown("isolation", isolation, ISOLATIONS)
    sizes: dict[str, dict[str, int]] = {}
    for workload in workloads:
        params = {p.name for p in WORKLOADS[workload].params}
        given = {k: int(v) for k, v in (sets or {}).items() if k in params}
        sizes[workload] = WORKLOADS[workload].size({**DEFAULT_SIZES[workload], **given})
    extra = set(sets or {}) - {p.name for w in workloads for p in WORKLOADS[w].params}
    if extra:
        raise UsageError(f"unknown size parameter {sorted(extra)[0]!r} for workloads {', '.join(workloads)}")
    cpus_used = _parse_cpus(cpus)
    records: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="dlbench-verify-") as logs:
        for spec in backends:
            backend, tag = split_spec(spec)
            info, interpreter = get_backend(backend), interpreters.get(spec)
            mode = isolation if info.fork_safe else "spawn"
            if interpreter is None:
                client = WorkerClient(backend, Path(logs), cpus_used, mode)
            else:
                (Path(logs) / spec).mkdir()
                client = WorkerClient(backend, Path(logs) / spec, cpus_used, mode, python=interpreter.python,
                                      env=interpreter.worker_env())  # fmt: skip
            try:
                for workload in workloads:
                    for precision in precisions:
                        case = Case(workload, sizes[workload], backend, precision, "train", device,
                                    options=dict(options or {}), env=tag)
                        ok, reason = interpreter.available(info) if interpreter else info.available()
                        if ok:
                            record = verify_with(client, case, timeout_s)
                            if interpreter is not None:
                                record["interpreter"] = interpreter.to_dict()
                        else:
                            record = {"backend": spec, "workload": workload, "precision": precision,
                                      "device": device, "size": case.size, "status": "unsupported", "error": reason,
                                      "passed": False}  # fmt: skip
                        records.append(record)
                        if on_record:
                            on_record(record)
            finally:
                client.close()
    return records


def load_run(run_id: str | None = None, store: str | Path | Store | None = None) -> Run:
    """A stored run (the latest when run_id is None)."""
    db = store if isinstance(store, Store) else Store(store or default_store_path(), create=False)
    try:
        stored = db.get_run(run_id)
        return Run(
            run_id=stored["run_id"], suite=stored["suite"], status=stored["status"], plan=stored["plan"],
            results=[Result.from_document(d) for d in db.results(stored["run_id"])], settings=stored["settings"],
            fingerprint=stored["fingerprint"], store_path=str(db.path),
        )  # fmt: skip
    finally:
        if db is not store:  # opened here: closed here (leaves no -wal/-shm files behind)
            db.close()


def list_runs(store: str | Path | None = None) -> list[str]:
    db = Store(store or default_store_path(), create=False)
    try:
        return db.run_ids()
    finally:
        db.close()
