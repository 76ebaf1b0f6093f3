"""`dlbench maxbatch`: the largest batch that fits, per backend × precision × mode (see maxbatch/api.py)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from dlbench.backends import BACKENDS
from dlbench.core import arguments
from dlbench.core.cases import DEVICES, MODES
from dlbench.core.precisions import PRECISIONS
from dlbench.core.text import printable
from dlbench.core.units import SIZE_HELP
from dlbench.workloads import WORKLOADS

COMMANDS = ("maxbatch",)
FORMATS = ("table", "markdown", "json")


def add_parsers(sub: Any, store_help: str) -> None:
    from dlbench.maxbatch.api import DEFAULT_MAX_BATCH, DEFAULT_STEPS, DEFAULT_TIMEOUT_S, DEFAULT_WITHIN

    parser = sub.add_parser("maxbatch", help="the largest batch that fits, per backend × precision × mode",
                            description=(
        "Search the largest batch of a workload that runs without running out of memory: doubling from --start "
        "until a batch does not fit, then bisection, each probe one case in a fresh process running two steps. "
        "On a GPU the device's memory is the limit; on the CPU --memory-limit stands for a smaller device (a "
        "probe whose RSS reaches it is killed and recorded as out of memory; default: 80% of the memory "
        "available). Each search is stored as a finding the moment it ends; `dlbench report` shows the "
        "table."))  # fmt: skip
    parser.add_argument("workload", metavar="WORKLOAD", help=f"one of: {', '.join(WORKLOADS)}")
    parser.add_argument("--backends", type=arguments.names, required=True,
                        help=f"comma-separated, from: {', '.join(BACKENDS)}")
    parser.add_argument("--precisions", type=arguments.names, help=f"comma-separated, from: {', '.join(PRECISIONS)} "
                        "(default: fp32,fp16)")  # fmt: skip
    parser.add_argument("--modes", "--mode", type=arguments.names, dest="modes",
                        help=f"comma-separated, from: {', '.join(MODES)} (default: train)")
    parser.add_argument("--set", action="append", metavar="KEY=V", dest="sets",
                        help="a size other than the batch, e.g. --set image=64 (default on the cpu: vgg16 image=32)")
    parser.add_argument("--device", help=f"one of: {', '.join(DEVICES)} (default: cuda if present, else cpu)")
    parser.add_argument("--memory-limit", metavar="SIZE", help=f"cap on each probe's resident memory: {SIZE_HELP}")
    parser.add_argument("--start", type=arguments.count, default=1, metavar="N",
                        help="the first batch probed (default 1)")
    parser.add_argument("--max-batch", type=arguments.count, default=DEFAULT_MAX_BATCH, metavar="N",
                        help=f"never probe a larger batch (default {DEFAULT_MAX_BATCH})")
    parser.add_argument("--within", type=lambda text: arguments.percent(text, "--within"), default=DEFAULT_WITHIN,
                        metavar="PCT",
                        help=f"stop bisecting once the largest batch that ran is within PCT of the smallest that "
                        f"did not (default {DEFAULT_WITHIN * 100:g}%%; 0 = exact: N runs, N+1 does not)")  # fmt: skip
    parser.add_argument("--steps", type=arguments.count, default=DEFAULT_STEPS, metavar="N",
                        help=f"steps each probe runs (default {DEFAULT_STEPS}; 1 halves the cost on a slow device)")
    parser.add_argument("--timeout", type=arguments.seconds, default=DEFAULT_TIMEOUT_S, metavar="S",
                        help=f"per-probe timeout in seconds (default {DEFAULT_TIMEOUT_S:g}); a timeout stops the "
                        "search")  # fmt: skip
    parser.add_argument("--cpus", help="CPU ids every worker is pinned to, e.g. 0,1 or 0-3 (default: all)")
    parser.add_argument("--option", action="append", metavar="KEY=VALUE", dest="options",
                        help="a backend option, as for `dlbench run`")
    parser.add_argument("--store", type=arguments.text, metavar="PATH", help=store_help)
    parser.add_argument("--format", default="table", choices=FORMATS, help="output format (default: table)")


def run_command(args: argparse.Namespace) -> int:
    from rich.console import Console

    from dlbench.core.tables import print_tables
    from dlbench.core.units import format_size
    from dlbench.maxbatch import api
    from dlbench.maxbatch.section import findings_table, fp16_sentences

    console = Console(stderr=True)

    def on_probe(case: Any, record: dict[str, Any]) -> None:
        memory = format_size(record["memory_bytes"]) if record.get("memory_bytes") else "—"
        detail = f": {record['error'][:160]}" if record.get("error") else ""
        console.print(printable(f"{case.backend} {case.precision} {case.mode} batch {case.batch}: {record['status']}, "
                                f"peak {memory}, {record.get('wall_s') or 0:.1f} s{detail}"), highlight=False,
                      markup=False)  # fmt: skip

    result = api.run(
        args.workload, args.backends, precisions=args.precisions, modes=args.modes, sets=arguments.sets(args.sets),
        device=args.device, memory_limit=args.memory_limit, start=args.start, max_batch=args.max_batch,
        within=args.within, steps=args.steps, timeout_s=args.timeout, store=args.store, cpus=arguments.cpus(args.cpus),
        options=arguments.options(args.options), on_probe=on_probe,
    )  # fmt: skip
    findings = list(result.findings.values())
    if args.format == "json":
        print(json.dumps({"run_id": result.run_id, "findings": result.findings}, indent=1, default=str))
    else:
        print_tables([findings_table(findings, f"Largest batch that fits (run {result.run_id})")], args.format)
        for line in fp16_sentences(findings):
            print(printable(f"- {line}" if args.format == "markdown" else line))
    print(f"stored as run {result.run_id} in {result.store_path}", file=sys.stderr)
    return 0
