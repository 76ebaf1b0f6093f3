"""`dlbench` command line: a thin layer over dlbench.api. User mistakes → one line on stderr, exit 2."""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from dlbench import api
from dlbench._version import __version__
from dlbench.backends import BACKENDS
from dlbench.core import arguments
from dlbench.core.cases import DEVICES, MODES, Case
from dlbench.core.errors import UsageError
from dlbench.core.precisions import FORWARD_TOLERANCE, GRADIENT_TOLERANCE, PRECISIONS
from dlbench.report.render import FORMATS, print_run
from dlbench.store import default_store_path
from dlbench.suites import load_suite, suite_names
from dlbench.workloads import WORKLOADS

EXIT_USAGE, EXIT_INTERRUPTED = 2, 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse's own mistakes: one line, exit 2, like ours
        raise UsageError(message)


# Commands that live in their own module: each module has COMMANDS (the names it adds), add_parsers(sub,
# store_help) and run_command(args) -> exit status. Adding a command is one module and one line here.
COMMAND_MODULES = (
    "dlbench.report.commands",
    "dlbench.envs.commands",
    "dlbench.maxbatch.commands",
    "dlbench.compile.commands",
    "dlbench.usability.commands",
    "dlbench.probe.commands",
)


def _command_module(name: str) -> Any:
    for module in COMMAND_MODULES:
        loaded = importlib.import_module(module)
        if name in loaded.COMMANDS:
            return loaded
    return None


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dlbench", description="Benchmark deep-learning frameworks on the seed's LSTM and "
                     "VGG-16 workloads, honestly measured.")  # fmt: skip
    parser.add_argument("--version", action="version", version=f"dlbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    run = sub.add_parser("run", help="measure a suite or a workload", description=(
        "Run a suite (seed, seed-cpu, quick, or a suite .toml file) or one workload over the sizes --set gives. "
        "Default: seed on a CUDA GPU, seed-cpu otherwise. Each case runs in its own worker process; each result "
        "is stored the moment it arrives."))  # fmt: skip
    run.add_argument("target", nargs="?", metavar="SUITE|WORKLOAD",
                     help=f"suites: {', '.join(suite_names())}; workloads: {', '.join(WORKLOADS)}")
    run.add_argument("--set", action="append", metavar="KEY=V1,V2", dest="sets",
                     help="size values (repeatable), e.g. --set seq_len=30 --set batch=32,128")
    run.add_argument("--backends", type=arguments.names, help=f"comma-separated, from: {', '.join(BACKENDS)}")
    run.add_argument("--precisions", type=arguments.names, help=f"comma-separated, from: {', '.join(PRECISIONS)}")
    run.add_argument("--modes", type=arguments.names, help=f"comma-separated, from: {', '.join(MODES)}")
    run.add_argument("--device", help=f"one of: {', '.join(DEVICES)} (default: the suite's)")
    run.add_argument("--timeout", type=float, metavar="S", help="per-case timeout in seconds (default: the suite's)")
    run.add_argument("--min-time", type=float, metavar="S", help="time each case at least this long")
    run.add_argument("--max-time", type=float, metavar="S", help="never time a case longer than this")
    run.add_argument("--cpus", help="CPU ids every worker is pinned to, e.g. 0,1 or 0-3 (default: all)")
    run.add_argument("--isolation", default="fork", choices=api.ISOLATIONS,
                     help="fork: import each framework once, fork a process per case (default); "
                     "spawn: a fresh interpreter per case")  # fmt: skip
    run.add_argument("--option", action="append", metavar="KEY=VALUE", dest="options",
                     help="a backend option, part of each case's identity (e.g. the numpy harness backend's "
                     "sleep_s=0.5 or fault=crash, used by dlbench's own tests)")
    run.add_argument("--no-verify", action="store_true",
                     help="time cases even where the backend disagrees with the float64 reference")
    run.add_argument("--resume", metavar="RUN_ID", help="measure only the cases an interrupted run is missing")
    _interpreter_options(run)
    run.add_argument("--memory-limit", metavar="SIZE", help="cap each case's resident memory (its whole worker "
                     "process, framework included), e.g. 4GiB, 512MiB, 8G: a case that reaches it is killed and "
                     "recorded as oom, so a CPU stands for a smaller device")  # fmt: skip
    _store_and_format(run)

    verify = sub.add_parser("verify", help="prove every backend computes the same function as the float64 reference",
                            description=(
        "Run every available backend × workload × precision at small sizes on the workload's seeded weights "
        "and inputs; compare the forward output and every parameter gradient with the NumPy float64 "
        "reference (relative error ‖out − ref‖/‖ref‖ against a tolerance per precision, forward/gradients: "
        + ", ".join(f"{p} {FORWARD_TOLERANCE[p]:g}/{GRADIENT_TOLERANCE[p]:g}" for p in PRECISIONS)
        + "). Exit 1 if any fails."))  # fmt: skip
    verify.add_argument("--backends", type=arguments.names, help=f"comma-separated, from: {', '.join(BACKENDS)} "
                        "(default: every available one)")  # fmt: skip
    verify.add_argument("--workloads", type=arguments.names, help=f"comma-separated, from: {', '.join(WORKLOADS)}")
    verify.add_argument("--precisions", type=arguments.names, help=f"comma-separated, from: {', '.join(PRECISIONS)}")
    verify.add_argument("--set", "--sizes", action="append", metavar="KEY=V", dest="sets",
                        help="override a verification size, e.g. --set hidden=64 --set image=64")
    verify.add_argument("--device", default="cpu", help=f"one of: {', '.join(DEVICES)} (default: cpu)")
    verify.add_argument("--timeout", type=float, default=600.0, metavar="S", help="per-check timeout (default 600)")
    verify.add_argument("--option", action="append", metavar="KEY=VALUE", dest="options",
                        help="a backend option (as for run)")
    verify.add_argument("--format", default="table", choices=("table", "markdown", "json"))
    _interpreter_options(verify)

    show = sub.add_parser("show", help="print a stored run (default: the latest)")
    show.add_argument("run_id", nargs="?", metavar="RUN_ID")
    _store_and_format(show)

    runs = sub.add_parser("runs", help="list the runs in the store")
    runs.add_argument("--store", metavar="PATH", help="SQLite store (default: $DLBENCH_STORE or "
                      f"{default_store_path()})")  # fmt: skip

    sub.add_parser("list", help="workloads, backends (with availability and why), suites")
    sub.add_parser("env", help="this machine's environment fingerprint, as a run would store it")
    for module in COMMAND_MODULES:  # each adds its parsers; its heavy work loads only when its command runs
        importlib.import_module(module).add_parsers(sub, f"SQLite store (default: $DLBENCH_STORE or "
                                                         f"{default_store_path()})")  # fmt: skip
    return parser


def _interpreter_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--python", action="append", metavar="BACKEND=PATH", dest="pythons",
                        help="run BACKEND's workers under that Python (≥ 3.9, with NumPy ≥ 1.21 and the framework), "
                        "e.g. --python theano=/opt/legacy/bin/python (repeatable)")
    parser.add_argument("--env", action="append", metavar="BACKEND=NAME", dest="envs",
                        help="run BACKEND's workers in the managed env NAME (`dlbench envs`), e.g. --env "
                        "theano=theano; BACKEND may be tagged (--backends torch,torch@old --env torch@old=torch25); "
                        "NAME '-' is dlbench's own interpreter (repeatable)")  # fmt: skip


def _interpreters(args: argparse.Namespace) -> dict[str, Any]:
    """The --python/--env mappings as api keyword arguments (only those given)."""
    pythons, envs = arguments.assignments(args.pythons, "--python"), arguments.assignments(args.envs, "--env")
    return {k: v for k, v in (("pythons", pythons), ("envs", envs)) if v}


def _store_and_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", metavar="PATH",
                        help=f"SQLite store (default: $DLBENCH_STORE or {default_store_path()})")
    parser.add_argument("--format", default="table", choices=FORMATS, help="output format (default: table)")


def _cmd_list() -> int:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    workloads = Table("workload", "size parameters (default)", "description", title="Workloads", title_justify="left")
    for w in WORKLOADS.values():
        workloads.add_row(w.name, ", ".join(f"{p.name} ({p.default})" for p in w.params), w.description)
    backends = Table("backend", "framework", "available", "description / why not", title="Backends",
                     title_justify="left")  # fmt: skip
    from dlbench.envs import find_env
    from dlbench.envs.select import Interpreter

    for info in BACKENDS.values():
        env = find_env(info.name)  # a managed env of the backend's name runs it by default (see dlbench.envs)
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
    return 0


def _cmd_env() -> int:
    import json

    from dlbench.backends import framework_modules
    from dlbench.measure.env import fingerprint

    print(json.dumps(fingerprint(framework_modules()), indent=2))
    return 0


class _Progress:
    """A rich progress bar for a sweep, with one line per finished case."""

    def __init__(self, total: int, note: str = "") -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = Console(stderr=True)
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=self.console, transient=True)  # fmt: skip
        self.task = self.progress.add_task("starting", total=total)
        self.note = note  # printed once the run has passed validation and starts


    def __call__(self, kind: str, case: Case, document: dict[str, Any] | None) -> None:
        if self.note:
            self.progress.console.print(self.note, highlight=False, markup=False)
            self.note = ""
        if kind == "start":
            self.progress.update(self.task, description=case.key)
            return
        if kind == "verified":
            assert document is not None
            self.progress.console.print(f"verify {case.backend_spec} {case.workload} {case.precision}: "
                                        f"{verification_text(document)}", highlight=False, markup=False)
            return
        assert document is not None
        status = document["status"]
        if status == "ok":
            stats = document["stats"]
            detail = (f"{stats['samples_per_s']:,.1f} samples/s (n={stats['n']}, "
                      f"first step {document['first_step_s']:.2f} s)")
        else:
            detail = f"{status}: {(document.get('error') or '').splitlines()[0][:160] if document.get('error') else ''}"
        self.progress.console.print(f"{case.key}: {detail}", highlight=False, markup=False)
        self.progress.advance(self.task)


def verification_text(record: dict[str, Any]) -> str:
    if record["status"] != "ok":
        return f"{record['status']}: {(record.get('error') or '').splitlines()[0][:200] if record.get('error') else ''}"
    verdict = "pass" if record["passed"] else "FAIL"
    return (f"{verdict} (forward error {record['forward_error']:.1e} ≤ {record['forward_tolerance']:.0e}?, "
            f"worst gradient error {record['worst_grad_error']:.1e} in {record['worst_grad']} "
            f"≤ {record['gradient_tolerance']:.0e}?)")


def _cmd_verify(args: argparse.Namespace) -> int:
    import json

    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    sets = {k: v[0] for k, v in arguments.sets(args.sets).items()}
    console = Console(stderr=True)
    records = api.verify(args.backends, workloads=args.workloads, precisions=args.precisions, sets=sets,
                         device=args.device, timeout_s=args.timeout, options=arguments.options(args.options),
                         **_interpreters(args), on_note=lambda text: console.print(text, highlight=False, markup=False),
                         on_record=lambda r: console.print(
                             f"{r['backend']} {r['workload']} {r['precision']}: {verification_text(r)}",
                             highlight=False, markup=False))  # fmt: skip
    failed = [r for r in records if r["status"] != "unsupported" and not r["passed"]]
    columns = ["backend", "workload", "precision", "size", "forward error", "worst gradient error", "result"]
    rows = []
    for r in records:
        ok = r["status"] == "ok"
        result = ("pass" if r["passed"] else "FAIL") if ok else f"{r['status']}: {(r.get('error') or '')[:120]}"
        rows.append([r["backend"], r["workload"], r["precision"], ",".join(f"{k}={v}" for k, v in r["size"].items()),
                     f"{r['forward_error']:.2e}" if ok else "—",
                     f"{r['worst_grad_error']:.2e} ({r['worst_grad']})" if ok else "—", result])  # fmt: skip
    if args.format == "json":
        print(json.dumps(records, indent=1, default=str))
    elif args.format == "markdown":
        print("| " + " | ".join(columns) + " |\n|" + "---|" * len(columns))
        for row in rows:
            print("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")
    else:
        table = Table(*columns, title="Verification against the float64 NumPy reference", title_justify="left")
        for row in rows:
            table.add_row(*(Text(c) for c in row))
        Console().print(table)
    if failed:
        print(f"{len(failed)} of {len(records)} checks failed", file=sys.stderr)
    return 1 if failed else 0


def _cmd_run(args: argparse.Namespace) -> int:
    measure = {k: v for k, v in (("min_time_s", args.min_time), ("max_time_s", args.max_time)) if v is not None}
    common: dict[str, Any] = dict(store=args.store, timeout_s=args.timeout, measure=measure or None,
                                  **_interpreters(args))  # fmt: skip
    if args.no_verify:
        common["verify"] = False
    if args.memory_limit is not None:
        api.memory_limit_bytes(args.memory_limit)  # a mistake is reported before anything starts
        common["memory_limit"] = args.memory_limit
    if args.resume:
        stored = api.load_run(args.resume, args.store)
        total, note = len(stored.missing), ""
        if not total:
            print(f"run {args.resume} has no missing cases", file=sys.stderr)
            print_run(stored, args.format)
            return 0
        kwargs: dict[str, Any] = dict(resume=args.resume, **common)
    else:
        sets = arguments.sets(args.sets)
        kwargs = dict(backends=args.backends, precisions=args.precisions, modes=args.modes, sets=sets or None,
                      device=args.device, cpus=arguments.cpus(args.cpus), isolation=args.isolation,
                      options=arguments.options(args.options), **common)  # fmt: skip
        suite, plan = api.plan_cases(args.target, args.backends, args.precisions, args.modes, sets or None,
                                     args.device, kwargs["options"])  # fmt: skip
        _, interpreter_notes = api.interpreters_for(suite, plan, common.get("pythons"), common.get("envs"))
        total, note = len(plan), " ".join([suite.note, *(n + "." for n in interpreter_notes)]).strip()
        kwargs["target"] = args.target or suite.name
    progress = _Progress(total, note)
    try:
        with progress.progress:
            result = api.run(on_event=progress, **kwargs)
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


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # `kill PID` ends a run as Ctrl-C does: results kept, workers killed, --resume offered


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main_thread else None
    try:
        return _main(parser, argv)
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


def _main(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
    try:
        args = parser.parse_args(argv)
        if args.command == "run":
            return _cmd_run(args)
        if args.command == "verify":
            return _cmd_verify(args)
        if args.command == "show":
            print_run(api.load_run(args.run_id, args.store), args.format)
            return 0
        if args.command == "runs":
            for run_id in api.list_runs(args.store):
                print(run_id)
            return 0
        if args.command == "list":
            return _cmd_list()
        if args.command == "env":
            return _cmd_env()
        module = _command_module(args.command) if args.command else None
        if module is not None:
            return int(module.run_command(args))
        parser.print_help()
        return EXIT_USAGE
    except UsageError as exc:
        print(f"dlbench: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("dlbench: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
