"""`dlbench probe`: its argument parser and command. cli.py adds the parser and hands the parsed arguments here;
the probe's own modules load only when the command runs. Mistakes (unknown backend, precision, layer, device, a
bad timeout) are one line naming the bad value and what is allowed, exit status 2, nothing written.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from dlbench.backends import BACKENDS
from dlbench.core import arguments
from dlbench.core.text import printable

COMMANDS = ("probe",)
FORMATS = ("table", "markdown", "json")
def add_parsers(sub: Any, store_help: str) -> None:
    from dlbench.probe.api import compiled_variants, default_backends
    from dlbench.probe.verdict import PRECISIONS, SLOW_RATIO
    from dlbench.workloads.layers import LAYERS

    probe = sub.add_parser("probe", help="the precision support matrix: backend × precision × layer, forward and "
                           "backward", description=(
        "Run each layer (" + ", ".join(LAYERS) + ") of each backend at each precision (" + ", ".join(PRECISIONS)
        + "), forward and backward, in a worker process, against a float64 NumPy reference, and judge it: "
        "native, upcast (returns a wider type than asked), wrong (error above tolerance), slow (≥ "
        f"{SLOW_RATIO:g}× the fp32 time), unsupported (the framework's error, quoted) or error (the worker "
        "crashed or timed out). Stored as a run (findings kind 'probe'); `dlbench report` shows the matrix. fp32 "
        "is always probed: it is the baseline of `slow`."))  # fmt: skip
    probe.add_argument("--backends", type=arguments.names, help=f"comma-separated, from: {', '.join(BACKENDS)} "
                       f"(default: {', '.join(default_backends())}; the compiled variants "
                       f"{', '.join(compiled_variants())} recompile every layer × precision, minutes on a small "
                       "CPU: name them to probe them)")  # fmt: skip
    probe.add_argument("--precisions", type=arguments.names,
                       help=f"comma-separated, from: {', '.join(PRECISIONS)} (default: all)")  # fmt: skip
    probe.add_argument("--layers", type=arguments.names,
                       help=f"comma-separated, from: {', '.join(LAYERS)} (default: all)")
    probe.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    probe.add_argument("--timeout", type=arguments.seconds, default=300.0, metavar="S",
                       help="per layer × precision worker timeout in seconds (default 300)")  # fmt: skip
    probe.add_argument("--cpus", help="CPU ids every worker is pinned to, e.g. 0-3 (default: one CPU, the first "
                       "allowed: whether a type has a fast kernel shows on one thread, free of the stalls of "
                       "threads descheduled on a busy machine)")  # fmt: skip
    probe.add_argument("--store", type=arguments.text, metavar="PATH", help=store_help)
    probe.add_argument("--format", default="table", choices=FORMATS, help="output format (default: table)")


def run_command(args: argparse.Namespace) -> int:
    from rich.console import Console

    from dlbench.core.tables import print_tables
    from dlbench.probe import api
    from dlbench.probe.matrix import legend, matrix_tables
    from dlbench.probe.verdict import cell_text
    from dlbench.store import default_store_path

    err = Console(stderr=True, highlight=False)

    def progress(doc: dict[str, Any]) -> None:
        err.print(printable(f"{doc['backend']} {doc['device']} {doc['precision']} {doc['layer']}: forward "
                            f"{cell_text(doc['forward'])}, backward {cell_text(doc['backward'])}"),
                  markup=False)  # fmt: skip

    run_id, findings = api.run(args.backends, precisions=args.precisions, layers=args.layers, device=args.device,
                             store=args.store, timeout_s=args.timeout, cpus=arguments.cpus(args.cpus),
                             on_finding=progress)  # fmt: skip
    tables = matrix_tables(findings)
    if args.format == "json":
        print(json.dumps({"run_id": run_id, "findings": findings}, indent=1, default=str))
    else:
        print_tables(tables, args.format, legend())
    print(f"stored as run {run_id} in {args.store or default_store_path()}", file=sys.stderr)
    return 0
