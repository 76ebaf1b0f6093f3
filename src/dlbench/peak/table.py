"""A peak run's findings as a table: per quantity × precision, the machine's figure (the best framework's) and what
every framework reached, or why it has no figure. What `dlbench peak` prints and the report's "Peak" section shows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from dlbench.core.tables import Table
from dlbench.peak.figures import FLOP_CONVENTION, best, rate


def _figure(doc: Mapping[str, Any], notes: list[str]) -> str:
    """A framework's figure, `[disturbed]` where others used its CPUs meanwhile; else its status and a note."""
    if doc.get("status") != "ok":
        error = (str(doc.get("error") or "").strip().splitlines() or [""])[0][:300]
        reason = f"{doc.get('framework')} {doc.get('precision') or doc.get('quantity')}: {doc.get('status')}: {error}"
        notes.append(reason.strip(": "))
        return f"{doc.get('status')} [{len(notes)}]"
    if doc.get("quantity") == "copy":
        text = f"{rate(float(doc['bytes_per_s']), 'B/s')} ({doc['nbytes'] / 2**20:,.0f} MiB)"
    else:
        text = f"{rate(float(doc['flops_per_s']), 'FLOP/s')} (n={doc.get('n')})"
    return text + (" [disturbed]" if (doc.get("disturbance") or {}).get("verdict") == "disturbed" else "")


def peak_table(findings: Iterable[Mapping[str, Any]], title: str = "Peak") -> Table:
    """One row per quantity × precision: the machine's figure and framework, then each framework's own."""
    docs = list(findings)
    frameworks = list(dict.fromkeys(str(d.get("framework")) for d in docs))
    flops, bandwidth = best(docs)
    table = Table(title, ["quantity", "precision", "peak", "by", *frameworks])
    rows: dict[tuple[str, str], dict[str, Mapping[str, Any]]] = {}
    notes: list[str] = []
    for doc in docs:
        precision = str(doc.get("precision") or "") if doc.get("quantity") == "matmul" else ""
        rows.setdefault((str(doc.get("quantity")), precision), {})[str(doc.get("framework"))] = doc
    for (quantity, precision), by_framework in rows.items():
        top = flops.get(precision) if quantity == "matmul" else bandwidth
        unit = "FLOP/s" if quantity == "matmul" else "B/s"
        cells = [_figure(by_framework[f], notes) if f in by_framework else "—" for f in frameworks]
        label = "matrix multiply" if quantity == "matmul" else "memory copy (read + write)"
        table.rows.append([label, precision or "—", rate(top[0], unit) if top else "none", top[1] if top else "—",
                           *cells])  # fmt: skip
        table.classes.append({2: "good" if top else "neutral"})
    table.notes = [
        "matrix multiply: 2·n³ FLOPs per n×n product; each size's figure is the median of its timed samples "
        "(blocks of calls between device synchronisations), the peak the best size's; each framework at the "
        "precision named (fp32 is IEEE fp32, tf32 the TF32 matrix units).",
        "memory copy: bytes read + bytes written per second copying one array far larger than the caches.",
        f"Runs on this machine show their achieved FLOP/s as a % of this peak. {FLOP_CONVENTION}.",
        *(
            [
                "[disturbed]: other processes used more than 10% of the CPUs (or the GPU) while it was timed: the "
                "machine's true peak is higher"
            ]
            if any("[disturbed]" in c for r in table.rows for c in r)
            else []
        ),
        *(f"[{i}] {note}" for i, note in enumerate(notes, 1)),
    ]
    return table


__all__ = ["peak_table"]
