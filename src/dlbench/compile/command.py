"""`dlbench compile WORKLOAD`: first-step time broken into phases, cold vs warm caches (see compile/__init__.py).

Everything is validated (workload, backends, sizes, precisions, modes, device, timeout, cache folder) before
anything is written; a mistake is one line naming the bad value and what is allowed, exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from dlbench.core import arguments
from dlbench.core.text import printable

COMMANDS = ("compile",)
FORMATS = ("table", "markdown", "json")


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
    parser.add_argument("--backends", type=arguments.names,
                        help=f"comma-separated, from: {', '.join(BACKENDS)} (default: every "
                        "framework backend)")  # fmt: skip
    parser.add_argument("--precisions", type=arguments.names,
                        help=f"comma-separated, from: {', '.join(PRECISIONS)} (default: fp32)")
    parser.add_argument("--modes", type=arguments.names,
                        help=f"comma-separated, from: {', '.join(MODES)} (default: both)")
    parser.add_argument("--device", help=f"one of: {', '.join(DEVICES)} (default: cuda if present, else cpu)")
    parser.add_argument(
        "--timeout",
        type=arguments.seconds,
        default=600.0,
        metavar="S",
        help="per-process timeout in seconds (default 600)",
    )
    parser.add_argument("--cpus", help="CPU ids every worker is pinned to, e.g. 0,1 or 0-3 (default: all)")
    parser.add_argument("--cache-root", type=arguments.text, metavar="DIR",
                        help="where the per-case cache folders are made (default: "
                        "the system's temporary folder)")  # fmt: skip
    parser.add_argument("--keep-cache", action="store_true", help="keep each case's cache folder (its path is stored "
                        "with the finding) instead of removing it")  # fmt: skip
    parser.add_argument("--store", type=arguments.text, metavar="PATH", help=store_help)
    parser.add_argument("--format", default="table", choices=FORMATS, help="output format (default: table)")


def _progress(start: str, case: Any, entry: dict[str, Any] | None) -> None:
    from dlbench.compile.table import seconds

    if entry is None:
        return
    if entry["status"] == "ok":
        detail = f"first step {seconds(entry.get('first_step_s'))} s (setup {seconds(entry.get('setup_s'))} s)"
    else:
        detail = f"{entry['status']}: {(entry.get('error') or '').splitlines()[0][:160] if entry.get('error') else ''}"
    print(printable(f"{case.key} {start}: {detail}"), file=sys.stderr, flush=True)


def run_command(args: argparse.Namespace) -> int:
    from dlbench.compile import api
    from dlbench.store import default_store_path

    run_id, findings = api.run(
        args.workload, backends=args.backends, precisions=args.precisions, modes=args.modes,
        sets=arguments.sets(args.sets) or None, device=args.device, timeout_s=args.timeout,
        cpus=arguments.cpus(args.cpus), cache_root=args.cache_root, keep_cache=args.keep_cache, store=args.store,
        on_event=_progress,
    )  # fmt: skip
    _print(list(findings.values()), args.format, run_id)
    print(f"stored as run {run_id} (findings of kind {api.KIND!r}) in {args.store or default_store_path()}",
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
