"""The Python API of `dlbench run`, `show` and `runs`. The CLI only wraps these functions; a notebook calls them:

    import dlbench
    plan = dlbench.plan("quick", backends=["torch", "numpy"])   # validated; nothing written yet
    run = dlbench.run(plan)                                      # or dlbench.run("quick", backends=[...])
    df = run.to_dataframe()

plan() checks everything a user can get wrong and returns a typed Plan: the cases, in order, and the settings
the run will store (how each case is measured, where its workers run). run() executes a Plan through one runner
session; `plan(resume=RUN_ID)` reads a stored run's plan and settings back, typed, to finish it.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from dlbench.cluster import api as cluster_api
from dlbench.cluster.api import ClusterSpec
from dlbench.core.cases import Case, MeasureConfig
from dlbench.core.errors import UsageError, unknown
from dlbench.core.results import Result, Run
from dlbench.runner.interpreters import Interpreter, resolve
from dlbench.runner.session import (
    CPU_DEVICE_MEMORY,
    CUDA_MEMORY_LIMIT,
    Placement,
    open_run,
    placement,
    resume_run,
)
from dlbench.runner.sweep import EventCallback, sweep
from dlbench.runner.trust import check_stored_options, stored_interpreters, suite_interpreters
from dlbench.store import Store, default_store_path
from dlbench.suites import Suite, default_backends, default_suite, plan_cases


class Interrupted(Exception):
    """Raised by `run()` after Ctrl-C: what was measured is stored; `run(resume=run_id)` finishes the rest."""

    def __init__(self, run: Run) -> None:
        super().__init__(f"run {run.run_id} interrupted with {len(run.missing)} of {len(run.plan)} cases left")
        self.run = run


@dataclass(frozen=True)
class RunSettings:
    """How a run measures and where its workers run: what its row stores as `settings`, read back by --resume."""

    measure: MeasureConfig
    timeout_s: float
    verify: bool = True
    placement: Placement = field(default_factory=Placement)
    note: str = ""  # printed with the run's tables: scaled sizes, skipped backends, other interpreters
    description: str = ""
    argv: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"measure": self.measure.to_dict(), "timeout_s": self.timeout_s, "verify": self.verify,
                "note": self.note, "description": self.description, "argv": list(self.argv),
                **self.placement.settings()}  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunSettings:
        """From a stored run's settings (stores written before a key existed get its old default)."""
        interpreters = {k: Interpreter.from_dict(v) for k, v in (data.get("interpreters") or {}).items()}
        where = Placement(data.get("cpus"), data.get("isolation", "fork"), data.get("memory_limit_bytes"),
                          interpreters, data.get("device_memory_bytes"), str(data.get("emulate") or ""))  # fmt: skip
        return cls(MeasureConfig.from_dict(data["measure"]), float(data["timeout_s"]), bool(data.get("verify", True)),
                   where, str(data.get("note", "")), str(data.get("description", "")), list(data.get("argv") or []))


@dataclass(frozen=True)
class Plan:
    """What a run will measure, validated: its suite's name, its cases in order, its settings, and its store. A
    plan that finishes a stored run (`resume`) leaves out the cases that run holds already (`done`)."""

    suite: str
    cases: list[Case]
    settings: RunSettings
    store: str | None = None  # None: $DLBENCH_STORE, else the default store
    resume: str | None = None
    done: frozenset[str] = frozenset()
    cluster: Mapping[str, Any] | None = None  # a resumed cluster run's placement (dlbench.cluster), as stored

    @property
    def remaining(self) -> list[Case]:
        """The cases still to measure, in order."""
        return [c for c in self.cases if c.key not in self.done]

    @property
    def store_path(self) -> Path:
        return Path(self.store) if self.store else default_store_path()


def _measure_config(base: MeasureConfig, overrides: Mapping[str, Any] | None) -> MeasureConfig:
    names = {f.name for f in fields(MeasureConfig)}
    for key, value in (overrides or {}).items():
        if key not in names:
            raise unknown("measure setting", key, names)
        if value is None or (isinstance(value, (int, float)) and value < 0):
            raise UsageError(f"bad measure setting {key}={value!r}: must be a number ≥ 0")
    config = replace(base, **(overrides or {}))
    problem = config.problem()
    if problem:
        raise UsageError(f"bad measure setting {problem}")
    return config


def interpreters_for(
    suite: Suite,
    cases: list[Case],
    pythons: Mapping[str, str] | None = None,
    envs: Mapping[str, str] | None = None,
    trust: bool = False,
) -> tuple[dict[str, Interpreter], list[str]]:
    """Which interpreter runs each backend spec of the cases (runner.interpreters), and notes saying where one is
    not dlbench's own: the suite file's [pythons]/[envs] for the backends it runs, then the caller's. A [pythons]
    path runs only if it is a managed env's interpreter or `trust` vouches for it (runner/trust.py)."""
    specs, given = list(dict.fromkeys(c.backend_spec for c in cases)), {*(pythons or {}), *(envs or {})}
    from_suite = [{k: v for k, v in mapping.items() if k in specs and k not in given}
                  for mapping in (suite.pythons, suite.envs)]  # fmt: skip
    suite_pythons, suite_envs = suite_interpreters(from_suite[0], suite.name, trust)
    return resolve(specs, {**suite_pythons, **(pythons or {})}, {**from_suite[1], **suite_envs, **(envs or {})})


def plan(
    target: str | None = None,
    *,
    backends: Sequence[str] | None = None,
    precisions: Sequence[str] | None = None,
    modes: Sequence[str] | None = None,
    sets: Mapping[str, Sequence[int]] | None = None,
    device: str | None = None,
    store: str | Path | None = None,
    timeout_s: float | None = None,
    measure: Mapping[str, Any] | None = None,
    cpus: Sequence[int] | None = None,
    isolation: str = "fork",
    options: dict[str, Any] | None = None,
    resume: str | None = None,
    verify: bool = True,
    memory_limit: int | str | None = None,
    pythons: Mapping[str, str] | None = None,
    envs: Mapping[str, str] | None = None,
    trust_interpreters: bool = False,
    device_memory: int | str | None = None,
    emulate: str | None = None,
) -> Plan:
    """The validated plan of a run (see run() for the arguments); UsageError naming the first bad value. Nothing
    is written; a suite file is read, and another interpreter is asked what it holds."""
    if timeout_s is not None and not (isinstance(timeout_s, (int, float)) and 0 < timeout_s < math.inf):
        raise UsageError(f"bad timeout {timeout_s!r}: must be a number of seconds > 0")
    if resume is not None:
        given = [n for n, v in (("a suite or workload", target), ("--backends", backends), ("--precisions", precisions),
                                ("--modes", modes), ("--set", sets), ("--device", device),
                                ("--memory-limit", memory_limit), ("--env", envs), ("--cpus", cpus),
                                ("--option", options), ("--device-memory", device_memory), ("--emulate", emulate))
                 if v]  # fmt: skip
        if given:
            raise UsageError(f"--resume finishes a run as it was planned; drop {', '.join(given)}")
        db = Store(store or default_store_path(), readonly=True)
        try:
            stored, done = db.get_run(resume), db.done_keys(resume)
        finally:
            db.close()
        try:
            settings = RunSettings.from_dict(stored["settings"])
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"run {resume!r} in {str(store or default_store_path())!r} cannot be resumed: its stored "
                             f"settings are not a dlbench run's ({type(exc).__name__}: {exc})") from None
        # The store names interpreters: only managed envs (re-read) and ones the user vouches for run (runner/trust.py).
        interpreters, notes = stored_interpreters(resume, settings.placement.interpreters, pythons, trust_interpreters)
        check_stored_options(resume, stored["plan"], trust_interpreters)
        settings = replace(settings, measure=_measure_config(settings.measure, measure),
                           timeout_s=timeout_s or settings.timeout_s,
                           placement=replace(settings.placement, interpreters=interpreters),
                           note=" ".join([settings.note, *(n + "." for n in notes)]).strip())  # fmt: skip
        return Plan(stored["suite"], stored["plan"], settings, str(store) if store else None, resume, frozenset(done),
                    (stored["settings"] or {}).get("cluster"))  # fmt: skip
    Store.check(store or default_store_path())
    where = placement(list(cpus) if cpus is not None else None, isolation, memory_limit, None, device_memory, emulate)
    suite, cases = plan_cases(target, backends, precisions, modes, sets, device, options)
    if suite.device == "cuda" and memory_limit is not None:
        raise UsageError(CUDA_MEMORY_LIMIT)
    if where.device_memory is not None and not any(case.device == "cuda" for case in cases):
        raise UsageError(CPU_DEVICE_MEMORY.format(option="--emulate" if emulate else "--device-memory"))
    interpreters, notes = interpreters_for(suite, cases, pythons, envs, trust_interpreters)
    settings = RunSettings(
        measure=_measure_config(suite.measure, measure), timeout_s=timeout_s or suite.timeout_s, verify=verify,
        placement=replace(where, interpreters=interpreters),
        note=" ".join([suite.note, *(n + "." for n in notes)]).strip(), description=suite.description,
        argv=list(sys.argv),
    )  # fmt: skip
    return Plan(suite.name, cases, settings, str(store) if store else None)


def run(target: str | Plan | None = None, *, on_event: EventCallback | None = None, **options: Any) -> Run:
    """Run a suite (`seed`, `seed-cpu`, `quick`, a suite file) or one workload over the sizes in `sets`, or a Plan.

    `backends`, `precisions`, `modes`, `sets` ({"batch": [32, 128]}), `device`, `options` (backend options, part
    of each case's identity) pick the cases; `store` where results go; `timeout_s` per case; `measure` overrides the
    suite's measurement settings ({"min_time_s": 0.5}); `cpus` pins every worker; `isolation` "fork" (a serving
    worker per backend forks a child per case) or "spawn" (a fresh interpreter per case); `memory_limit` ("4GiB",
    or bytes) caps each case's resident memory (a case that reaches it is `oom`); on a GPU, `device_memory`
    ("12GiB") or `emulate` ("titanx-pascal") runs every case as on a card of that size
    (measure/device_memory.py); `pythons` ({backend spec:
    interpreter path}) and `envs` ({backend spec: managed env name}) run a backend's workers under another
    interpreter (a spec is a backend name or `name@tag`). A suite file's [pythons] path, or a resumed run's stored
    interpreter that is not a managed env, runs only with `trust_interpreters=True` (or repeated in `pythons`).

    Unless `verify=False`, each backend × workload × precision is first verified against the float64 reference
    and not timed (result: error "failed verification") if it disagrees. Every result is stored the moment it
    arrives. On Ctrl-C, raises `Interrupted` (its `.run` holds what was measured); on a fault it cannot work around
    (the store unwritable or replaced under it, a backend's workers dying again and again) raises `RunFailed`, the
    run's status `failed`; either way `run(resume=run_id)` measures only the cases still missing."""
    if isinstance(target, Plan):
        if options:
            raise TypeError(f"run(plan) takes no other arguments than on_event; got {', '.join(sorted(options))}")
        the_plan = target
    else:
        the_plan = plan(target, **options)
    settings = the_plan.settings
    if the_plan.cluster:
        raise UsageError(f"run {the_plan.resume} ran on a cluster: finish it there, with --resume {the_plan.resume} "
                         "--cluster ADDRESS")  # fmt: skip
    if the_plan.resume is not None:
        session = resume_run(the_plan.store_path, the_plan.resume, settings.placement)
    else:  # only now, with everything validated, is anything written
        session = open_run(the_plan.store_path, the_plan.suite, the_plan.cases, settings.to_dict(), settings.placement)
    run_id = session.run_id
    assert run_id is not None
    interrupted = False
    try:
        with session:
            sweep(session, the_plan.cases, settings.measure, settings.timeout_s, on_event, skip=set(the_plan.done),
                  verify=settings.verify)  # fmt: skip
    except KeyboardInterrupt:
        interrupted = True
    result = load_run(run_id, the_plan.store_path)
    if interrupted:
        raise Interrupted(result)
    return result


def run_on_cluster(
    the_plan: Plan,
    cluster: ClusterSpec,
    on_event: EventCallback | None = None,
    on_runs: Callable[[list[str]], None] | None = None,
) -> list[Run]:
    """Run a Plan on a Ray cluster (dlbench.cluster.api): `--on-every-node` gives one run per node, `--spread` one
    run; a resumed cluster run keeps its stored placement. The runs, as stored (`on_runs` hears their ids as soon
    as they exist). On Ctrl-C raises `Interrupted` (for the first run; every run of the command is stored as
    interrupted and resumable)."""
    settings = the_plan.settings
    if the_plan.resume is not None:
        if not the_plan.cluster:
            raise UsageError(f"run {the_plan.resume} was not run on a cluster: resume it without --cluster")
        cluster = replace(cluster, placement=str(the_plan.cluster.get("placement", cluster.placement)))
    interrupted, run_ids = False, []

    def created(ids: list[str]) -> None:
        run_ids.extend(ids)
        if on_runs is not None:
            on_runs(ids)

    try:
        run_ids = cluster_api.run(the_plan.store_path, the_plan.suite, the_plan.cases, settings.to_dict(),
                                  settings.placement, settings.measure, settings.timeout_s, settings.verify, cluster,
                                  on_event, the_plan.resume, the_plan.done, on_runs=created)  # fmt: skip
    except KeyboardInterrupt:
        interrupted = True
    runs = [load_run(r, the_plan.store_path) for r in run_ids]
    if interrupted and runs:
        raise Interrupted(runs[0])
    if interrupted:
        raise KeyboardInterrupt
    return runs


def load_run(run_id: str | None = None, store: str | Path | Store | None = None) -> Run:
    """A stored run (the latest when run_id is None)."""
    db = store if isinstance(store, Store) else Store(store or default_store_path(), readonly=True)
    try:
        stored = db.get_run(run_id)
        return Run(
            run_id=stored["run_id"], suite=stored["suite"], status=stored["status"], plan=stored["plan"],
            results=_results(db, stored["run_id"]), settings=stored["settings"],
            fingerprint=stored["fingerprint"], store_path=str(db.path),
        )  # fmt: skip
    finally:
        if db is not store:  # opened here: closed here (leaves no -wal/-shm files behind)
            db.close()


def _results(db: Store, run_id: str) -> list[Result]:
    try:
        return [Result.from_document(d) for d in db.results(run_id)]
    except (AttributeError, KeyError, TypeError, ValueError):
        raise UsageError(f"store {str(db.path)[:200]!r} is damaged: a result of run {run_id!r} is malformed") from None


def load_attempts(run_id: str, store: str | Path | None = None) -> list[dict[str, Any]]:
    """Every attempt stored for a run (each repetition and re-measurement of each case), in plan order."""
    db = Store(store or default_store_path(), readonly=True)
    try:
        stored = db.get_run(run_id)
        by_case = db.attempts(stored["run_id"])
        order = {c.key: i for i, c in enumerate(stored["plan"])}
    finally:
        db.close()
    return [a for key in sorted(by_case, key=lambda k: order.get(k, len(order))) for a in by_case[key]]


def list_runs(store: str | Path | None = None) -> list[str]:
    db = Store(store or default_store_path(), readonly=True)
    try:
        return db.run_ids()
    finally:
        db.close()


__all__ = ["ClusterSpec", "Interrupted", "Plan", "RunSettings", "default_backends", "default_suite", "interpreters_for",
           "list_runs", "load_attempts", "load_run", "plan", "plan_cases", "run", "run_on_cluster"]  # fmt: skip
