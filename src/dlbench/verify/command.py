"""`dlbench verify`: its parser and command over verify/api.py. Exit 1 if any check fails, 2 for a mistake."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from dlbench.backends import BACKENDS
from dlbench.core import arguments
from dlbench.core.cases import DEVICES
from dlbench.core.errors import UsageError
from dlbench.core.precisions import FORWARD_TOLERANCE, GRADIENT_TOLERANCE, PRECISIONS
from dlbench.core.tables import Table, print_tables
from dlbench.core.text import printable
from dlbench.runner.verification import describe, twin_text
from dlbench.workloads import WORKLOADS

COMMANDS = ("verify",)
FORMATS = ("table", "markdown", "json")
EXIT_FAILED = 1


def add_parsers(sub: Any, store_help: str) -> None:
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
    verify.add_argument("--timeout", type=arguments.seconds, default=600.0, metavar="S",
                        help="per-check timeout (default 600)")
    verify.add_argument("--cpus", help=arguments.CPUS_HELP)
    verify.add_argument("--option", action="append", metavar="KEY=VALUE", dest="options",
                        help="a backend option (as for run)")
    verify.add_argument("--format", default="table", choices=FORMATS)
    arguments.add_interpreter_options(verify)


def run_command(args: argparse.Namespace) -> int:
    from rich.console import Console

    from dlbench.verify import api

    given = arguments.sets(args.sets)
    for key, values in given.items():
        if len(values) > 1:
            raise UsageError(f"bad --set {key}={','.join(map(str, values))}: verify checks one size (give one value)")
    sets = {k: v[0] for k, v in given.items()}
    console = Console(stderr=True)
    pythons, envs = arguments.interpreter_options(args)
    records = api.run(args.backends, workloads=args.workloads, precisions=args.precisions, sets=sets,
                      device=args.device, timeout_s=args.timeout, cpus=arguments.cpus(args.cpus),
                      options=arguments.options(args.options), pythons=pythons, envs=envs,
                      on_note=lambda text: console.print(printable(text), highlight=False, markup=False),
                      on_record=lambda r: console.print(printable(f"{r['backend']} {r['workload']} {r['precision']}: "
                                                                  f"{describe(r)}"), highlight=False,
                                                        markup=False))  # fmt: skip
    failed = [r for r in records if r["status"] != "unsupported" and not r["passed"]]
    if args.format == "json":
        print(json.dumps(records, indent=1, default=str))
    else:
        print_tables([_table(records)], args.format)
    if failed:
        print(f"{len(failed)} of {len(records)} checks failed", file=sys.stderr)
    return EXIT_FAILED if failed else 0


def _table(records: list[dict[str, Any]]) -> Table:
    columns = ["backend", "workload", "precision", "size", "forward error", "worst gradient error", "result"]
    table = Table("Verification against the float64 NumPy reference", columns)
    for r in records:
        ok = r["status"] == "ok"
        result = ("pass" if r["passed"] else "FAIL") if ok else f"{r['status']}: {(r.get('error') or '')[:120]}"
        if ok and r.get("twin"):  # tolerances widened to NumPy's own error in this precision: say by what
            result += twin_text(r)
        grad = f"{r['worst_grad_error']:.2e} ({r['worst_grad']})" if ok and r["worst_grad"] else "—"
        table.rows.append([r["backend"], r["workload"], r["precision"],
                           ",".join(f"{k}={v}" for k, v in r["size"].items()),
                           f"{r['forward_error']:.2e}" if ok else "—", grad, result])  # fmt: skip
        verdict = "good" if ok and r["passed"] else "neutral" if r["status"] == "unsupported" else "bad"
        table.classes.append({6: verdict})
    return table
