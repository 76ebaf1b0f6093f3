"""What running a case on a Ray cluster costs against running it here, side by side in one session.

    .venv/bin/python benchmarks/cluster_overhead.py [--rounds 2] [--nodes 8]

Interleaves rounds of the same small plan (LSTM 30×32×128 forward, numpy and torch, one process per case, no
verification) run locally and on a one-node local Ray cluster (started once, its start-up timed apart; each
cluster command connects to it), and prints per case: the wall time the driver saw for the case's attempt (worker
start to result) and the timed median step, local and cluster, with their ratios; and the whole command's.
Then the largest simulated cluster: `local:N` nodes on this machine, a spread run of 2N tiny numpy cases; its
time and that every case came back once.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from dlbench.runs import api

SETS = {"seq_len": [30], "batch": [32], "hidden": [128]}
MEASURE = {"min_time_s": 0.5, "repeat": 1, "retries": 0}


def _plan(store: Path, sets: dict[str, list[int]] = SETS, backends: tuple[str, ...] = ("numpy", "torch")) -> Any:
    return api.plan("lstm", backends=list(backends), sets=sets, modes=["forward"], store=str(store),
                    measure=MEASURE, verify=False)  # fmt: skip


def _figures(runs: list[Any]) -> dict[str, tuple[float, float]]:
    """case key -> (attempt wall s, median step s)."""
    return {r.case.key: (float(r.document["wall_s"]), float(r.stats["median_s"])) for run in runs for r in run.results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--nodes", type=int, default=8)
    args = parser.parse_args()
    here: dict[str, list[tuple[float, float]]] = {}
    there: dict[str, list[tuple[float, float]]] = {}
    commands: dict[str, list[float]] = {"local": [], "cluster": []}
    from ray.cluster_utils import Cluster

    began = time.monotonic()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    cluster.add_node(num_cpus=len(os.sched_getaffinity(0)))
    cluster.wait_for_nodes()
    print(f"a one-node local Ray cluster started in {time.monotonic() - began:.1f} s")
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "s.sqlite"
        for _ in range(args.rounds):
            for where in ("local", "cluster", "cluster", "local"):
                began = time.monotonic()
                runs = ([api.run(_plan(store))] if where == "local"
                        else api.run_on_cluster(_plan(store), api.ClusterSpec(cluster.address)))  # fmt: skip
                commands[where].append(time.monotonic() - began)
                for key, figures in _figures(runs).items():
                    (here if where == "local" else there).setdefault(key, []).append(figures)
        print("| case | wall s local | wall s cluster | ratio | median step ms local | cluster | ratio |")
        print("|---|---|---|---|---|---|---|")
        for key in here:
            wl, wc = (statistics.median(f[0] for f in d[key]) for d in (here, there))
            ml, mc = (statistics.median(f[1] for f in d[key]) for d in (here, there))
            print(f"| {key} | {wl:.2f} | {wc:.2f} | {wc / wl:.2f} | {ml * 1e3:.3f} | {mc * 1e3:.3f} | {mc / ml:.2f} |")
        cl, cc = statistics.median(commands["local"]), statistics.median(commands["cluster"])
        print(f"\nwhole command (plan of {len(here)} cases), median of {args.rounds * 2}: local {cl:.1f} s, "
              f"cluster {cc:.1f} s (connecting to the running cluster included), ratio {cc / cl:.2f}")
        cluster.shutdown()
        sets = {"seq_len": [4], "batch": list(range(1, 2 * args.nodes + 1)), "hidden": [8]}
        began = time.monotonic()
        (run,) = api.run_on_cluster(_plan(store, sets, ("numpy",)), api.ClusterSpec(f"local:{args.nodes}", "spread"))
        nodes = {r.document["node"]["node_id"] for r in run.results}
        print(f"\nlargest simulated: local:{args.nodes}, spread of {len(run.plan)} cases: {run.status}, "
              f"{len(run.results)} results, taken on {len(nodes)} nodes, {time.monotonic() - began:.1f} s in all")


if __name__ == "__main__":
    main()
