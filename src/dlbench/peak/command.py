"""`dlbench peak`: its argument parser and command. cli.py adds the parser and hands the parsed arguments here; the
peak's own modules load only when the command runs. Mistakes (unknown device or framework, a bad --seconds or
--cpus, an unusable store, --device cuda without a GPU) are one line naming the bad value, exit 2, nothing written.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from dlbench.core import arguments
from dlbench.core.errors import UsageError
from dlbench.core.text import printable

COMMANDS = ("peak",)
FORMATS = ("table", "markdown", "json")


def add_parsers(sub: Any, store_help: str) -> None:
    from dlbench.peak.api import DEFAULT_SECONDS, SIZES, peak_frameworks
    from dlbench.peak.figures import PRECISIONS

    parser = sub.add_parser(
        "peak",
        help="this machine's peak: matrix-multiply FLOP/s per precision, memory bandwidth",
        description=(
            "Measure the device's sustained matrix-multiply FLOP/s per precision (cpu: "
            f"{', '.join(PRECISIONS['cpu'])}; cuda: {', '.join(PRECISIONS['cuda'])}, where a framework has them) "
            f"through every framework that offers it ({', '.join(peak_frameworks())}), keeping the best per "
            "precision and naming the framework that reached it, and the memory bandwidth of a large array copy. "
            "Square products of growing size (cpu: "
            + ", ".join(map(str, SIZES["cpu"]))
            + "; cuda: "
            + ", ".join(map(str, SIZES["cuda"]))
            + ", larger ones while the time budget allows), each timed "
            "between device synchronisations, in a worker process per framework × precision. Stored as a run "
            "(suite 'peak'); later runs on the same machine (CPU model and number of CPUs given, or GPU) show their "
            "achieved FLOP/s as a % of it, in `dlbench show` and `dlbench report`. FLOPs: 2 per multiply-add."
        ),
    )
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument(
        "--cpus",
        help="CPU ids every worker is pinned to, e.g. 0 or 0-3 (default: all this "
        "process may use). A peak applies to runs given as many CPUs: measure it as you run",
    )
    parser.add_argument("--seconds", type=arguments.seconds, default=DEFAULT_SECONDS, metavar="S",
                        help=f"time budget of each framework × precision, in seconds (default {DEFAULT_SECONDS:g}; "
                        "longer reaches the larger, faster matrix sizes on a slow device)")  # fmt: skip
    parser.add_argument("--frameworks", type=arguments.names, help=f"comma-separated, from: "
                        f"{', '.join(peak_frameworks())} (default: all of them)")  # fmt: skip
    parser.add_argument("--cluster", type=arguments.text, metavar="ADDRESS",
                        help="measure every node of a Ray cluster instead, one after another, a run per node (auto, "
                        "HOST:PORT, local:N; see `dlbench run --cluster`)")  # fmt: skip
    parser.add_argument("--nodes", type=arguments.text, metavar="SELECTOR",
                        help="with --cluster: which nodes (as `dlbench run --nodes`)")
    parser.add_argument("--store", type=arguments.text, metavar="PATH", help=store_help)
    parser.add_argument("--format", default="table", choices=FORMATS, help="output format (default: table)")


def run_command(args: argparse.Namespace) -> int:
    from rich.console import Console

    from dlbench.core.tables import print_tables
    from dlbench.peak import api
    from dlbench.peak.figures import rate
    from dlbench.peak.table import peak_table
    from dlbench.store import default_store_path

    err = Console(stderr=True, highlight=False)

    def progress(doc: dict[str, Any]) -> None:
        what = f"{doc['framework']} {doc['device']} " + (f"{doc['precision']} matmul" if doc["precision"] else "copy")
        if doc.get("status") != "ok":
            error = (str(doc.get("error") or "").splitlines() or [""])[0][:160]
            err.print(printable(f"{what}: {doc.get('status')}: {error}"), markup=False)
        elif doc["quantity"] == "matmul":
            sizes = ", ".join(str(r["n"]) for r in doc.get("sizes") or [] if "flops_per_s" in r)
            err.print(printable(f"{what}: {rate(doc['flops_per_s'], 'FLOP/s')} at n={doc['n']} (sizes timed: "
                                f"{sizes}; {doc.get('wall_s', 0):.1f} s)"), markup=False)  # fmt: skip
        else:
            err.print(printable(f"{what}: {rate(doc['bytes_per_s'], 'B/s')}"), markup=False)

    def start(run_id: str, frameworks: list[str]) -> None:
        where = f"CPUs {args.cpus}" if args.cpus else "all CPUs"
        err.print(printable(f"run {run_id}: measuring the peak of {args.device} ({where}) through "
                            f"{', '.join(frameworks)}, about {args.seconds:g} s per framework × precision"),
                  markup=False)  # fmt: skip

    if args.nodes and not args.cluster:
        raise UsageError("--nodes needs --cluster ADDRESS")
    if args.cluster:
        if args.cpus:
            raise UsageError("--cpus names this machine's CPUs: with --cluster each node's peak takes all its CPUs")
        from dlbench.cluster.api import ClusterSpec

        done = api.run_on_cluster(ClusterSpec(args.cluster, "every-node", args.nodes), args.device,
                                  frameworks=args.frameworks, store=args.store, seconds=args.seconds,
                                  on_start=start, on_finding=progress)  # fmt: skip
    else:
        done = [api.run(args.device, frameworks=args.frameworks, cpus=arguments.cpus(args.cpus), store=args.store,
                        seconds=args.seconds, on_start=start, on_finding=progress)]  # fmt: skip
    if args.format == "json":
        body = [{"run_id": run_id, "findings": findings} for run_id, findings in done]
        print(json.dumps(body[0] if not args.cluster else body, indent=1, default=str))
    else:
        print_tables([peak_table(findings, f"Peak of {args.device}, run {run_id}") for run_id, findings in done],
                     args.format)  # fmt: skip
    ids = ", ".join(run_id for run_id, _ in done)
    print(f"stored as run{'s' if len(done) > 1 else ''} {ids} in {args.store or default_store_path()}", file=sys.stderr)
    return 0
