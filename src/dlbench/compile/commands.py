"""`dlbench compile WORKLOAD`: first-step time broken into phases, cold vs warm caches (see compile/__init__.py).

Everything is validated (workload, backends, sizes, precisions, modes, device, timeout, cache folder) before
anything is written; a mistake is one line naming the bad value and what is allowed, exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from dlbench.core import arguments
from dlbench.core.errors import UsageError, unknown

COMMANDS = ("compile",)
FORMATS = ("table", "markdown", "json")
DEFAULT_TIMEOUT_S = 600.0


def add_parsers(sub: Any, store_help: str) -> None:
    from dlbench.backends import BACKENDS
    from dlbench.core.cases import DEVICES, MODES
    from dlbench.core.precisions import PRECISIONS
    from dlbench.workloads import WORKLOADS

    parser = sub.add_parser("compile", help="first-step (compile) time by phase, cold vs warm caches", description=(
        "For each case (workload × size × backend × precision × mode), start two fresh processes: 'cold', with "
        "the backend's persistent compilation caches pointed at a new, empty folder, then 'warm', which finds "
        "that folder filled. Each reports setup time, first-step time and the phases of the first step that its "
        "framework lets us see (trace, lower, compile, first execution, ...). Stored as a run with findings of "
        "kind 'compile'; `dlbench report` shows them."))  # fmt: skip
    parser.add_argument("workload", metavar="WORKLOAD", help=f"one of: {', '.join(WORKLOADS)}")
    parser.add_argument(
        "--set",
        action="append",
        metavar="KEY=V1,V2",
        dest="sets",
        help="size values (repeatable), e.g. --set seq_len=30 --set batch=32",
    )
    parser.add_argument("--backends", help=f"comma-separated, from: {', '.join(BACKENDS)} (default: every "
                        "framework backend)")  # fmt: skip
    parser.add_argument("--precisions", help=f"comma-separated, from: {', '.join(PRECISIONS)} (default: fp32)")
    parser.add_argument("--modes", help=f"comma-separated, from: {', '.join(MODES)} (default: both)")
    parser.add_argument("--device", help=f"one of: {', '.join(DEVICES)} (default: cuda if present, else cpu)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        metavar="S",
        help=f"per-process timeout in seconds (default {DEFAULT_TIMEOUT_S:g})",
    )
    parser.add_argument("--cpus", help="CPU ids every worker is pinned to, e.g. 0,1 or 0-3 (default: all)")
    parser.add_argument("--cache-root", metavar="DIR", help="where the per-case cache folders are made (default: "
                        "the system's temporary folder)")  # fmt: skip
    parser.add_argument("--keep-cache", action="store_true", help="keep each case's cache folder (its path is stored "
                        "with the finding) instead of removing it")  # fmt: skip
    parser.add_argument("--store", metavar="PATH", help=store_help)
    parser.add_argument("--format", default="table", choices=FORMATS, help="output format (default: table)")


def _optional_names(text: str | None) -> list[str] | None:
    return arguments.names(text) if text else None


def _progress(start: str, case: Any, entry: dict[str, Any] | None) -> None:
    from dlbench.compile.table import seconds

    if entry is None:
        return
    if entry["status"] == "ok":
        detail = f"first step {seconds(entry.get('first_step_s'))} s (setup {seconds(entry.get('setup_s'))} s)"
    else:
        detail = f"{entry['status']}: {(entry.get('error') or '').splitlines()[0][:160] if entry.get('error') else ''}"
    print(f"{case.key} {start}: {detail}", file=sys.stderr, flush=True)


def run_command(args: argparse.Namespace) -> int:
    from dlbench import api
    from dlbench.backends import framework_modules
    from dlbench.compile.breakdown import KIND, run_breakdown
    from dlbench.measure.env import fingerprint
    from dlbench.store import Store, default_store_path
    from dlbench.workloads import WORKLOADS

    if args.workload not in WORKLOADS:
        raise unknown("workload", args.workload, WORKLOADS)
    if not args.timeout > 0:
        raise UsageError(f"bad --timeout {args.timeout:g}: must be > 0 seconds")
    backends = arguments.names(args.backends) if args.backends else None
    sets = arguments.sets(args.sets)
    suite, plan = api.plan_cases(args.workload, backends, _optional_names(args.precisions), _optional_names(args.modes),
                                 sets or None, args.device)  # fmt: skip
    cpus = api._parse_cpus(arguments.cpus(args.cpus))
    cache_root = Path(args.cache_root) if args.cache_root else None
    if cache_root is not None and cache_root.exists() and not cache_root.is_dir():
        raise UsageError(f"bad --cache-root {args.cache_root!r}: it is a file; give a folder")

    store = Store(args.store or default_store_path())  # only now, with everything validated, is anything written
    try:
        run_id = api.new_run_id()
        settings = {"command": "compile", "timeout_s": args.timeout, "cpus": cpus, "isolation": "spawn",
                    "cache_root": str(cache_root) if cache_root else None, "argv": sys.argv,
                    "description": "first-step phases, cold vs warm persistent caches"}  # fmt: skip
        store.create_run(run_id, f"compile-{suite.name}", plan, settings, fingerprint(framework_modules()))
        try:
            findings = run_breakdown(store, run_id, plan, args.timeout, cpus, cache_root, args.keep_cache, _progress)
        except KeyboardInterrupt:
            store.set_run_status(run_id, "interrupted")
            raise
        store.set_run_status(run_id, "complete")
    finally:
        store.close()
    _print(list(findings.values()), args.format, run_id)
    print(f"stored as run {run_id} (findings of kind {KIND!r}) in {args.store or default_store_path()}",
          file=sys.stderr)  # fmt: skip
    return 0


def _print(findings: list[dict[str, Any]], fmt: str, run_id: str) -> None:
    from dlbench.compile.table import findings_table
    from dlbench.core.tables import print_tables

    if fmt == "json":
        print(json.dumps(findings, indent=1))
        return
    table = findings_table(findings, f"dlbench compile (run {run_id}): first step, cold vs warm")
    print_tables([table], fmt)
