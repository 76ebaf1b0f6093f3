"""`dlbench run`, `show`, `runs`, `list` and `env`: their parsers and commands over runs/api.py. cli.py adds the
parsers and hands the parsed arguments here; a mistake is one line naming the bad value, exit 2, nothing written.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from dlbench.backends import BACKENDS, env_vars, framework_modules
from dlbench.core import arguments
from dlbench.core.cases import DEVICES, MODES, Case
from dlbench.core.errors import UsageError
from dlbench.core.precisions import PRECISIONS
from dlbench.core.tables import print_tables
from dlbench.core.text import printable
from dlbench.measure.device_memory import PRESETS
from dlbench.runner.session import ISOLATIONS
from dlbench.runner.verification import describe
from dlbench.runs.render import FORMATS, print_run
from dlbench.runs.tables import attempts_table
from dlbench.suites import load_suite, suite_names
from dlbench.workloads import WORKLOADS

COMMANDS = ("run", "show", "runs", "list", "env")
EXIT_INTERRUPTED = 130


def add_parsers(sub: Any, store_help: str) -> None:
    run = sub.add_parser("run", help="measure a suite or a workload", description=(
        "Run a suite (seed, seed-cpu, quick, or a suite .toml file) or one workload over the sizes --set gives. "
        "Default: seed on a CUDA GPU, seed-cpu otherwise. Each case runs in its own worker process; each result "
        "is stored the moment it arrives."))  # fmt: skip
    run.add_argument("target", nargs="?", type=arguments.text, metavar="SUITE|WORKLOAD",
                     help=f"suites: {', '.join(suite_names())}; workloads: {', '.join(WORKLOADS)}")
    run.add_argument("--set", action="append", metavar="KEY=V1,V2", dest="sets",
                     help="size values (repeatable), e.g. --set seq_len=30 --set batch=32,128")
    run.add_argument("--backends", type=arguments.names, help=f"comma-separated, from: {', '.join(BACKENDS)}")
    run.add_argument("--precisions", type=arguments.names, help=f"comma-separated, from: {', '.join(PRECISIONS)}")
    run.add_argument("--modes", type=arguments.names, help=f"comma-separated, from: {', '.join(MODES)}")
    run.add_argument("--device", help=f"one of: {', '.join(DEVICES)} (default: the suite's)")
    run.add_argument("--timeout", type=arguments.seconds, metavar="S",
                     help="per-case timeout in seconds (default: the suite's)")
    run.add_argument("--min-time", type=arguments.seconds_or_zero, metavar="S",
                     help="time each case at least this long")
    run.add_argument("--max-time", type=arguments.seconds, metavar="S",
                     help="never time a case longer than this")
    run.add_argument("--repeat", type=arguments.count, metavar="K",
                     help="time each case in K independent processes, in rounds "
                     "across the sweep; significance needs K ≥ 2 (default: the suite's)")
    run.add_argument("--retries", type=arguments.count_or_zero, metavar="N",
                     help="measure a disturbed case again later in the sweep, "
                     "at most N more times (default: the suite's, 2 unless it says)")
    run.add_argument("--quiet-threshold", metavar="PCT", help="a window is disturbed when other processes used more "
                     "than PCT of the case's CPUs meanwhile (default: 10%%)")
    run.add_argument("--wait-quiet", type=arguments.seconds_or_zero, metavar="S",
                     help="before each timed case, wait up to S seconds "
                     "for its CPUs to be quiet (default: 0, do not wait)")
    run.add_argument("--cpus", help=arguments.CPUS_HELP)
    run.add_argument("--isolation", default="fork", choices=ISOLATIONS,
                     help="fork: import each framework once, fork a process per case (default); "
                     "spawn: a fresh interpreter per case")  # fmt: skip
    run.add_argument("--option", action="append", metavar="KEY=VALUE", dest="options",
                     help="a backend option, part of each case's identity (e.g. the numpy harness backend's "
                     "sleep_s=0.5 or fault=crash, used by dlbench's own tests)")
    run.add_argument("--no-verify", action="store_true",
                     help="time cases even where the backend disagrees with the float64 reference")
    run.add_argument("--resume", type=arguments.text, metavar="RUN_ID",
                     help="measure only the cases an interrupted run is missing")
    arguments.add_interpreter_options(run)
    run.add_argument("--trust-interpreters", action="store_true",
                     help="run the interpreters a suite file's [pythons] or a resumed run's store names (by default "
                     "only --python/--env and managed envs run: a suite or a store is data, not a program to run)")
    run.add_argument("--memory-limit", metavar="SIZE", help="cap each case's resident memory (its whole worker "
                     "process, framework included), e.g. 4GiB, 512MiB, 8G: a case that reaches it is killed and "
                     "recorded as oom, so a CPU stands for a smaller device")  # fmt: skip
    run.add_argument("--device-memory", type=arguments.text, metavar="SIZE",
                     help="on a GPU, run every case as on a card of SIZE (e.g. 12GiB): each framework's "
                     "allocator capped by its own mechanism, and a case whose process went past SIZE (as "
                     "nvidia-smi shows it) recorded as oom")  # fmt: skip
    run.add_argument("--emulate", type=arguments.text, metavar="CARD", help=f"--device-memory of a named card: "
                     f"{', '.join(f'{k} ({v[1]})' for k, v in PRESETS.items())}")  # fmt: skip
    cluster = run.add_argument_group("on a Ray cluster (pip install 'dlbench[ray]'; README, \"On a cluster\")")
    cluster.add_argument("--cluster", type=arguments.text, metavar="ADDRESS",
                         help="run the cases on a Ray cluster: auto, HOST:PORT, ray://HOST:PORT, or local:N (a "
                         "cluster of N nodes on this machine, for trying it)")  # fmt: skip
    where = cluster.add_mutually_exclusive_group()
    where.add_argument("--on-every-node", dest="placement", action="store_const", const="every-node",
                       help="the whole suite on each selected node: one run per machine, side by side (default)")
    where.add_argument("--spread", dest="placement", action="store_const", const="spread",
                       help="one run, its cases shared out among the selected nodes (all of one kind)")
    cluster.add_argument("--nodes", type=arguments.text, metavar="SELECTOR",
                         help="which nodes: comma-separated accelerator:NAME, resource:NAME, label:KEY=VALUE, "
                         "address:IP, kind:TEXT (default: every node with CPUs or GPUs)")  # fmt: skip
    _store_and_format(run, store_help)

    show = sub.add_parser("show", help="print a stored run (default: the latest)")
    show.add_argument("run_id", nargs="?", type=arguments.text, metavar="RUN_ID")
    show.add_argument("--attempts", action="store_true", help="every process that timed a case: its repetition, "
                      "attempt, figure and what else the machine did meanwhile (the disturbance record)")
    _store_and_format(show, store_help)

    runs = sub.add_parser("runs", help="list the runs in the store")
    runs.add_argument("--store", type=arguments.text, metavar="PATH", help=store_help)

    sub.add_parser("list", help="workloads, backends (with availability and why), suites")
    sub.add_parser("env", help="this machine's environment fingerprint, as a run would store it")


def _store_and_format(parser: argparse.ArgumentParser, store_help: str) -> None:
    parser.add_argument("--store", type=arguments.text, metavar="PATH", help=store_help)
    parser.add_argument("--format", default="table", choices=FORMATS, help="output format (default: table)")


def run_command(args: argparse.Namespace) -> int:
    from dlbench.runs import api

    if args.command == "run":
        return _run(args)
    if args.command == "show" and args.attempts:
        run = api.load_run(args.run_id, args.store)
        attempts = api.load_attempts(run.run_id, args.store)
        if args.format == "json":
            print(json.dumps(attempts, indent=1))
        else:
            print_tables([attempts_table(run, attempts)], "markdown" if args.format == "markdown" else "table")
    elif args.command == "show":
        print_run(api.load_run(args.run_id, args.store), args.format)
    elif args.command == "runs":
        for run_id in api.list_runs(args.store):
            print(printable(run_id))  # a store's text (core/text.py)
    elif args.command == "list":
        _list()
    else:
        from dlbench.measure.env import fingerprint

        print(json.dumps(fingerprint(framework_modules(), env_vars()), indent=2))
    return 0


def _run(args: argparse.Namespace) -> int:
    from dlbench.runs import api

    quiet = args.quiet_threshold
    threshold = arguments.percent(quiet, "--quiet-threshold") if quiet is not None else None
    given = (("min_time_s", args.min_time), ("max_time_s", args.max_time), ("repeat", args.repeat),
             ("retries", args.retries), ("max_outside_share", threshold), ("wait_quiet_s", args.wait_quiet))
    measure = {k: v for k, v in given if v is not None}
    pythons, envs = arguments.interpreter_options(args)
    common: dict[str, Any] = dict(store=args.store, timeout_s=args.timeout, measure=measure or None,
                                  pythons=pythons or None, envs=envs or None)  # fmt: skip
    if args.trust_interpreters:
        common["trust_interpreters"] = True
    if args.no_verify:
        common["verify"] = False
    if args.memory_limit is not None:
        common["memory_limit"] = args.memory_limit
    if args.device_memory is not None:
        common["device_memory"] = args.device_memory
    if args.emulate is not None:
        common["emulate"] = args.emulate
    if args.resume is not None:
        plan = api.plan(args.target, resume=args.resume, backends=args.backends, precisions=args.precisions,
                        modes=args.modes, sets=arguments.sets(args.sets) or None, device=args.device,
                        cpus=arguments.cpus(args.cpus), options=arguments.options(args.options) or None,
                        **common)  # fmt: skip
        if not plan.remaining:
            print(f"run {args.resume} has no missing cases", file=sys.stderr)
            print_run(api.load_run(args.resume, plan.store_path), args.format)
            return 0
    else:
        sets = arguments.sets(args.sets)
        plan = api.plan(args.target, backends=args.backends, precisions=args.precisions, modes=args.modes,
                        sets=sets or None, device=args.device, cpus=arguments.cpus(args.cpus),
                        isolation=args.isolation, options=arguments.options(args.options), **common)  # fmt: skip
    if args.cluster is None and (args.placement or args.nodes):
        raise UsageError(f"{'--nodes' if args.nodes else '--' + args.placement} needs --cluster ADDRESS")
    if args.cluster is not None:
        api.ClusterSpec(args.cluster, args.placement or "every-node", args.nodes).check()
    progress = _Progress(len(plan.remaining), plan.settings.note, plan.settings.measure.repeat)
    if args.cluster is not None:
        return _run_on_cluster(args, plan, progress)
    try:
        with progress.progress:
            result = api.run(plan, on_event=progress)
    except api.Interrupted as exc:
        run = exc.run
        print_run(run, args.format)
        print(f"interrupted: {len(run.results)} of {len(run.plan)} cases stored in {run.store_path}; "
              f"finish with: dlbench run --resume {run.run_id}" + (f" --store {args.store}" if args.store else ""),
              file=sys.stderr)  # fmt: skip
        return EXIT_INTERRUPTED
    print_run(result, args.format)
    print(f"stored as run {result.run_id} in {result.store_path}", file=sys.stderr)
    return 0


def _run_on_cluster(args: argparse.Namespace, plan: Any, progress: _Progress) -> int:
    from dlbench.runs import api

    spec = api.ClusterSpec(args.cluster, args.placement or "every-node", args.nodes)
    try:
        with progress.progress:
            runs = api.run_on_cluster(plan, spec, on_event=progress, on_runs=progress.runs)
    except api.Interrupted as exc:
        store = f" --store {args.store}" if args.store else ""
        finish = "; ".join(f"dlbench run --resume {run_id} --cluster {args.cluster}{store}"
                           for run_id in progress.run_ids or [exc.run.run_id])  # fmt: skip
        print(f"interrupted: stored in {exc.run.store_path}; finish with: {finish}", file=sys.stderr)
        return EXIT_INTERRUPTED
    for run in runs:
        print_run(run, args.format)
    ids = " ".join(r.run_id for r in runs)
    status = ", ".join(f"{r.run_id} ({r.status}, {len(r.results)} of {len(r.plan)} cases)" for r in runs)
    print(f"stored as {'runs' if len(runs) > 1 else 'run'} {status} in {runs[0].store_path}" if runs else
          "no run was stored", file=sys.stderr)  # fmt: skip
    if len(runs) > 1:
        print(f"side by side: dlbench report {ids}; one machine against another: dlbench compare "
              f"{runs[0].run_id} {runs[1].run_id}", file=sys.stderr)  # fmt: skip
    return 0 if all(r.status == "complete" for r in runs) else 1


class _Progress:
    """A rich progress bar for a sweep, with one line per finished case."""

    def __init__(self, total: int, note: str = "", repeat: int = 1) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = Console(stderr=True)
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=self.console, transient=True)  # fmt: skip
        self.repeat = max(1, repeat)
        self.task = self.progress.add_task("starting", total=total * self.repeat)  # one step per process slot
        self.counted: dict[str, int] = {}  # case key -> slots advanced so far
        self.note = note  # printed once the run has passed validation and starts
        self.total = total
        self.run_ids: list[str] = []  # a cluster command's runs, once they exist

    def runs(self, run_ids: list[str]) -> None:
        """A cluster command's runs exist: each sweeps the plan (every-node: one per machine)."""
        self.run_ids = list(run_ids)
        self.progress.update(self.task, total=self.total * self.repeat * max(1, len(run_ids)))

    def __call__(self, kind: str, case: Case, document: dict[str, Any] | None) -> None:
        if self.note:
            self.progress.console.print(printable(self.note, newlines=True), highlight=False, markup=False)
            self.note = ""
        if kind == "start":
            from rich.markup import escape  # a description is rendered as markup

            self.progress.update(self.task, description=escape(printable(case.key)))
            return
        if kind == "verified":
            assert document is not None
            self.progress.console.print(printable(f"verify {case.backend_spec} {case.workload} {case.precision}: "
                                                  f"{describe(document)}"), highlight=False, markup=False)
            return
        assert document is not None
        status = document["status"]
        if kind == "attempt":  # one process of a case not settled yet
            if status == "ok" and (document.get("disturbance") or {}).get("verdict") == "disturbed":
                reasons = "; ".join(document["disturbance"]["reasons"])
                self.progress.console.print(printable(f"{case.key} (process {document['repetition']}/{self.repeat}): "
                                                      f"disturbed ({reasons}): measured again later"),
                                            highlight=False, markup=False)  # fmt: skip
                return
            if status == "ok":
                self.progress.console.print(printable(
                    f"{case.key} (process {document['repetition']}/{self.repeat}): "
                    f"{document['stats']['samples_per_s']:,.1f} samples/s (n={document['stats']['n']})"),
                    highlight=False, markup=False)  # fmt: skip
                self.counted[case.key] = self.counted.get(case.key, 0) + 1
                self.progress.advance(self.task)
            return
        if status == "ok":
            stats = document["stats"]
            reps = len(document.get("repetitions") or [None])
            detail = (f"{stats['samples_per_s']:,.1f} samples/s (n={stats['n']}"
                      + (f" in {reps} processes" if reps > 1 else "")
                      + f", first step {document['first_step_s']:.2f} s)"
                      + "".join(f" [{flag}]" for flag in document.get("flags") or []))
        else:
            detail = f"{status}: {(document.get('error') or '').splitlines()[0][:160] if document.get('error') else ''}"
        self.progress.console.print(printable(f"{case.key}: {detail}"), highlight=False, markup=False)
        self.progress.advance(self.task, self.repeat - self.counted.pop(case.key, 0))


def _list() -> None:
    from rich.console import Console
    from rich.table import Table

    from dlbench.runner.environments import find_env
    from dlbench.runner.interpreters import Interpreter

    console = Console()
    workloads = Table("workload", "size parameters (default)", "description", title="Workloads", title_justify="left")
    for w in WORKLOADS.values():
        workloads.add_row(w.name, ", ".join(f"{p.name} ({p.default})" for p in w.params), w.description)
    backends = Table("backend", "framework", "available", "description / why not", title="Backends",
                     title_justify="left")  # fmt: skip
    for info in BACKENDS.values():
        env = find_env(info.name)  # a managed env of the backend's name runs it by default (runner/interpreters.py)
        if env is not None:
            ok, reason = Interpreter(str(env.python), env_name=env.name).available(info)
            backends.add_row(info.name, info.label, f"yes, via env {env.name}" if ok else f"no (env {env.name})",
                             info.description if ok else reason)  # fmt: skip
            continue
        ok, reason = info.available()
        backends.add_row(info.name, info.label, "yes" if ok else "no", info.description if ok else reason)
    suites = Table("suite", "device", "cases/backend", "description", title="Suites", title_justify="left")
    for name in suite_names():
        suite = load_suite(name)
        per_backend = sum(len(e.grid()) * len(e.precisions) * len(e.modes) for e in suite.experiments)
        suites.add_row(name, suite.device, str(per_backend), suite.description)
    for table in (workloads, backends, suites):
        console.print(table)
