"""`dlbench usability`: the seed's "fluffy" metrics, measured (see dlbench.usability.api), stored as a run, printed
as the report section's tables."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from dlbench.core import arguments
from dlbench.core.text import printable

COMMANDS = ("usability",)
FORMATS = ("table", "markdown", "json")


def add_parsers(sub: Any, store_help: str) -> None:
    from dlbench.backends import BACKENDS
    from dlbench.usability.api import PARTS, SIZES, TIMEOUT_S

    parser = sub.add_parser(
        "usability",
        help="writing/reading code, debugging, export paths, measured",
        description=(
            "The seed's usability questions, measured. code: lines, statements and framework API names of dlbench's "
            "implementation of each workload and of the bare scripts (from source, by an AST tool). debugging: does a "
            "print in the model's forward run on every step, and what error does a wrongly shaped input raise "
            "(verbatim). export: each export path of each framework, run for real, the artifact reloaded and compared "
            "with the model's output. Probes run in worker processes at small sizes "
            f"({'; '.join(f'{w} ' + ','.join(f'{k}={v}' for k, v in s.items()) for w, s in SIZES.items())}); "
            "every finding is stored the moment it is measured; `dlbench report` shows the section."
        ),
    )
    parser.add_argument("--backends", type=arguments.names, help="comma-separated (default: every framework backend)")
    parser.add_argument("--workloads", type=arguments.names, help=f"comma-separated, from: {', '.join(SIZES)}")
    parser.add_argument("--parts", type=arguments.names,
                        help=f"comma-separated, from: {', '.join(PARTS)} (default: all)")
    parser.add_argument(
        "--paths",
        type=arguments.names,
        help="export paths to probe, comma-separated (default: every "
        "path of each backend: " + "; ".join(f"{b}: {', '.join(i.exports)}" for b, i in BACKENDS.items() if i.exports)
        + ")",
    )
    parser.add_argument(
        "--timeout",
        type=arguments.seconds,
        default=TIMEOUT_S,
        metavar="S",
        help=f"per-probe timeout in seconds (default {TIMEOUT_S:g})",
    )
    parser.add_argument("--store", type=arguments.text, metavar="PATH", help=store_help)
    parser.add_argument("--format", default="table", choices=FORMATS, help="output format (default: table)")


def _progress(kind: str, key: str, document: dict[str, Any]) -> None:
    status = document.get("status", "ok")
    outcome = document.get("outcome")
    detail = f"{status}" + (f", {outcome}" if outcome else "")
    if status != "ok":
        detail += f": {str(document.get('error') or '').strip()[:120]}"
    print(printable(f"{kind} {key}: {detail}"), file=sys.stderr)


def run_command(args: argparse.Namespace) -> int:
    from dlbench.store import Store, default_store_path
    from dlbench.usability import api, section

    run_id = api.run(args.backends, args.workloads, args.parts, args.store, args.timeout, _progress, args.paths)
    db = Store(args.store or default_store_path(), readonly=True)
    try:
        usability, exports = section.load(db, [run_id])
    finally:
        db.close()
    if args.format == "json":
        print(json.dumps({"run_id": run_id, "usability": usability, "export": exports}, indent=1, default=str))
    else:
        from dlbench.core.tables import print_tables

        print_tables(section.tables(usability, exports), args.format)
    print(f"stored as run {run_id} in {args.store or default_store_path()}", file=sys.stderr)
    return 0
