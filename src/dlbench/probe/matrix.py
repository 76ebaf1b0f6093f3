"""The probe's findings as matrices: one table per device and direction, a row per backend × precision, a column
per layer, each cell a verdict (coloured in the HTML report by its class), the framework's quoted errors as
numbered notes. Shared by `dlbench probe` (terminal) and the report section.
Parent-side module: never imports a framework.
"""

from __future__ import annotations

from typing import Any

from dlbench.core.tables import Table
from dlbench.probe.verdict import DIRECTIONS, PRECISIONS, SLOW_RATIO, TOLERANCE, cell_text
from dlbench.workloads.layers import LAYERS

CELL_CLASS = {"native": "good", "upcast": "info", "slow": "warn", "wrong": "bad", "unsupported": "neutral",
              "error": "bad"}  # fmt: skip
_NOTED = ("unsupported", "error", "wrong")  # verdicts whose reason is a note under the table


def legend() -> list[str]:
    tolerances = ", ".join(f"{p} {t:g}" for p, t in TOLERANCE.items())
    return [
        "Each layer runs forward, and backward (gradients of Σ output·g for a fixed seeded g, over every input and "
        "weight), from the same seeded NumPy arrays as a float64 NumPy reference; error = ‖out − ref‖/‖ref‖, the "
        "worst over the outputs compared. amp-*: float32 weights and inputs, compute in the low type (torch.autocast, "
        "Keras mixed policies; JAX, TensorFlow and PyTensor cast at compute); its gradients are float32 by design.",
        f"native: runs, returns the type asked, error within tolerance ({tolerances}). upcast: within tolerance but "
        "returns a wider type than asked (judged by the returned dtype: a framework that computes in float32 "
        f"internally and rounds the result, as XLA and TensorFlow do on CPU, is native). slow: correct, but its "
        f"fastest step is ≥ {SLOW_RATIO:g}× the fastest fp32 step of the same layer on the same backend and "
        "device, on one thread unless --cpus said otherwise (the cell shows the ratio). wrong: runs, error above "
        "tolerance or not finite. unsupported: the framework raised (its error quoted in the notes). error: the "
        "worker crashed, ran out of memory or timed out. Where several hold, wrong beats slow beats upcast.",
    ]


def _ordered(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    backends = list(dict.fromkeys(f["backend"] for f in findings))
    return sorted(findings, key=lambda f: (backends.index(f["backend"]), PRECISIONS.index(f["precision"])
                                           if f["precision"] in PRECISIONS else 99))  # fmt: skip


def matrix_tables(findings: list[dict[str, Any]]) -> list[Table]:
    """Tables for these findings (documents as the probe stores them), devices and directions in order."""
    tables = []
    for device in dict.fromkeys(f["device"] for f in findings):
        mine = _ordered([f for f in findings if f["device"] == device])
        layers = [name for name in LAYERS if any(f["layer"] == name for f in mine)]
        for direction in DIRECTIONS:
            table = Table(f"Precision support: {direction} on {device}", ["backend", "precision", *layers])
            rows: dict[tuple[str, str], tuple[list[str], dict[int, str], dict[int, str]]] = {}
            for f in mine:
                key = (f["backend"], f["precision"])
                if key not in rows:
                    rows[key] = ([f["backend"], f["precision"], *("—" for _ in layers)], {}, {})
                cells, classes, cases = rows[key]
                column = 2 + layers.index(f["layer"])
                verdict_doc = f[direction]
                verdict = str(verdict_doc.get("verdict"))
                text = cell_text(verdict_doc)
                if verdict == "upcast" and verdict_doc.get("dtype"):
                    text = f"upcast: {verdict_doc['dtype']}"
                if verdict in _NOTED:
                    note = f"{f['backend']}: {verdict}: {verdict_doc.get('message') or ''}".strip()
                    note = " ".join(note.split())[:400]
                    if note not in table.notes:
                        table.notes.append(note)
                    text = f"{text} [{table.notes.index(note) + 1}]"
                cells[column] = text
                classes[column] = CELL_CLASS.get(verdict, "neutral")
                cases[column] = f"{f['backend']}-{device}-{f['precision']}-{f['layer']}-{direction}"
            for cells, classes, cases in rows.values():
                table.rows.append(cells)
                table.classes.append(classes)
                table.cases.append(cases)
            table.notes = [f"[{i}] {note}" for i, note in enumerate(table.notes, 1)]
            tables.append(table)
    return tables
