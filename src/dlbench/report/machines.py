"""The report's "Machines side by side" section: when the report's runs were taken on more than one machine (the
runs of `dlbench run --cluster ... --on-every-node`, or any runs whose fingerprints name different hosts or
hardware), each case a row and each machine a column group: samples/s with its interval, the achieved FLOP/s as a
% of that machine's own measured peak (`dlbench peak` run there, looked up by the machine each result ran on), and
the memory figure. The pooled tables above keep one figure per case; this section keeps every machine's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dlbench.core.tables import Section, Table
from dlbench.peak.figures import percent
from dlbench.peak.lookup import find
from dlbench.runs.tables import memory_figure

if TYPE_CHECKING:
    from dlbench.core.results import Result, Run
    from dlbench.store import Store


def machine_label(run: Run) -> str:
    """Which machine a run was taken on: its cluster node (address, id, kind) or its host and hardware."""
    node = (run.settings.get("cluster") or {}).get("node") or {}
    if node:
        return f"{node.get('address', '?')} ({str(node.get('node_id', '?'))[:8]}, {node.get('kind', '?')})"
    fp = run.fingerprint
    cpu = (fp.get("cpu") or {}).get("model", "?")
    gpus = ", ".join(str(g.get("name")) for g in fp.get("gpus") or [])
    return f"{fp.get('hostname', '?')} ({gpus or cpu})"


def _speed(result: Result) -> str:
    if result.status != "ok":
        return result.status
    stats = result.stats
    rate = stats.get("samples_per_s")
    if not isinstance(rate, (int, float)):
        return "—"
    half = stats.get("rel_ci95_half_width")
    flags = "".join(f" [{f}]" for f in result.document.get("flags") or [])
    interval = f" ±{half:.0%}" if isinstance(half, (int, float)) else ""
    return (f"{rate:,.0f}" if rate >= 100 else f"{rate:.3g}") + interval + flags


def build(store: Store, runs: list[Run]) -> Section | None:
    labels: dict[str, list[Run]] = {}
    for run in runs:
        labels.setdefault(machine_label(run), []).append(run)
    if len(labels) < 2:
        return None
    columns = ["workload", "size", "backend", "precision", "mode"]
    for label in labels:
        columns += [f"{label}: samples/s", f"{label}: % of its peak", f"{label}: memory MiB"]
    cells: dict[tuple[Any, ...], dict[str, Result]] = {}
    shares: dict[int, float | None] = {}  # id(result) -> its % of its machine's peak
    for label, machine_runs in labels.items():
        for run in machine_runs:
            peaks = find(store, run)
            for result in run.results:
                case = result.case
                size = ",".join(f"{k}={v}" for k, v in case.size.items())
                identity = (case.workload, size, case.backend_spec, case.precision, case.mode)
                cells.setdefault(identity, {})[label] = result
                shares[id(result)] = percent(result, peaks.of(run, result))
    table = Table("Each case on each machine", columns)
    for key, by_machine in cells.items():
        row = [str(k) for k in key]
        for label in labels:
            got = by_machine.get(label)
            if got is None:
                row += ["not run", "", ""]
                continue
            share = shares.get(id(got))
            memory = memory_figure(got)
            row += [_speed(got), f"{share:.0f}%" if isinstance(share, float) else "no peak",
                    f"{memory[1] / 2**20:,.0f}" if memory else "—"]  # fmt: skip
        table.rows.append(row)
    groups = {str((r.settings.get("cluster") or {}).get("group")) for r in runs if r.settings.get("cluster")}
    paragraphs = [f"{len(labels)} machines: " + "; ".join(f"{label}: run {', '.join(r.run_id for r in rs)}"
                                                        for label, rs in labels.items()) + "."]  # fmt: skip
    if groups:
        paragraphs.append(f"Cluster run {', '.join(sorted(groups))}: the same suite on each node, each figure taken "
                          "in a worker process on its own node. `dlbench compare RUN_A RUN_B` tests the difference "
                          "between two machines case by case (it reports their run-wide ratio first).")
    paragraphs.append("% of its peak: the achieved FLOP/s against the peak `dlbench peak` measured on that machine; "
                      "'no peak' where none was measured there (run `dlbench peak` on the node).")
    return Section("machines", "Machines side by side", paragraphs, [table], [r.run_id for r in runs])


__all__ = ["build", "machine_label"]
