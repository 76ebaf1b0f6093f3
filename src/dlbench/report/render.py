"""Render a run as a terminal table, Markdown, CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from typing import Any

from dlbench.report.tables import Table, legend, seed_tables
from dlbench.results import Run

FORMATS = ("table", "markdown", "csv", "json")


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def environment_lines(run: Run) -> list[str]:
    fp = run.fingerprint
    cpu = fp.get("cpu", {})
    ram = fp.get("ram_bytes")
    lines = [
        f"run {run.run_id} · suite {run.suite} · {run.status} · {len(run.results)}/{len(run.plan)} cases",
        f"machine: {cpu.get('model', '?')}, {cpu.get('allowed_cpus', cpu.get('logical_cores', '?'))} CPUs"
        + (f", {ram / 2**30:.0f} GiB RAM" if ram else "") + f" · {fp.get('os', '?')} · Python {fp.get('python', '?')}",
    ]  # fmt: skip
    for gpu in fp.get("gpus", []):
        lines.append(f"GPU {gpu.get('index')}: {gpu.get('name')}, driver {gpu.get('driver')}, {gpu.get('memory')}")
    return lines


def markdown_table(table: Table) -> str:
    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    out = [f"### {table.title}", "", "| " + " | ".join(map(esc, table.columns)) + " |",
           "|" + "|".join("---" for _ in table.columns) + "|"]  # fmt: skip
    out += ["| " + " | ".join(esc(c) for c in row) + " |" for row in table.rows]
    if table.notes:
        out += [""] + [f"- {esc(n)}" for n in table.notes]
    return "\n".join(out)


def to_markdown(run: Run) -> str:
    parts = [f"## dlbench run {run.run_id}", "", *[f"- {line}" for line in environment_lines(run)[1:]]]
    parts += [f"- {line}" for line in legend(run)]
    for table in seed_tables(run):
        parts += ["", markdown_table(table)]
    return "\n".join(parts) + "\n"


def to_csv(run: Run) -> str:
    records = run.to_records()
    buffer = io.StringIO()
    columns = list(dict.fromkeys(k for r in records for k in r))
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return buffer.getvalue()


def to_json(run: Run) -> str:
    document = {
        "run_id": run.run_id, "suite": run.suite, "status": run.status, "settings": run.settings,
        "fingerprint": run.fingerprint, "plan": [c.to_dict() for c in run.plan],
        "results": [r.document for r in run.results],
    }  # fmt: skip
    return json.dumps(_finite(document), indent=1, allow_nan=False)


# How the terminal shows a Table's cell classes (report.sections.CELL_CLASSES); the HTML report colours them itself.
CELL_STYLES = {"good": "green", "info": "blue", "warn": "yellow", "bad": "bold red", "neutral": "dim"}


def print_tables(tables: list[Table], fmt: str = "table", notes: list[str] | None = None) -> None:
    """Print Tables with their notes (and then `notes`): `table` through rich, cell classes as colours, wide
    enough when piped; `markdown` as Markdown. What the probe, maxbatch, compile and usability commands print."""
    if fmt == "markdown":
        print("\n\n".join(markdown_table(t) for t in tables))
        for note in notes or []:
            print(f"- {note}")
        return
    from rich.console import Console
    from rich.table import Table as RichTable
    from rich.text import Text

    console = Console(width=None if sys.stdout.isatty() else 200)
    for table in tables:
        out = RichTable(*table.columns, title=table.title, title_justify="left")
        for i, row in enumerate(table.rows):
            classes = table.classes[i] if i < len(table.classes) else {}
            out.add_row(*(Text(cell, style=CELL_STYLES.get(classes.get(j, ""), "")) for j, cell in enumerate(row)))
        console.print(out)
        for note in table.notes:
            console.print(note, highlight=False, markup=False, soft_wrap=True)
    for note in notes or []:
        console.print(note, highlight=False, markup=False, soft_wrap=True)


def print_run(run: Run, fmt: str, console: Any = None) -> None:
    """Print a run in `fmt` (table goes through rich; the others are plain text on stdout)."""
    if fmt == "table":
        from rich.console import Console
        from rich.table import Table as RichTable
        from rich.text import Text

        # Piped output (make run > log, CI) gets room for the seed's wide tables instead of rich's 80 columns.
        console = console or Console(width=None if sys.stdout.isatty() else 160)
        for line in environment_lines(run) + legend(run):
            console.print(line, highlight=False, markup=False)
        for table in seed_tables(run):
            rich_table = RichTable(title=table.title, title_justify="left")
            for i, column in enumerate(table.columns):
                rich_table.add_column(column, justify="left" if i == 0 or column == "precision" else "right",
                                      no_wrap=i == 0)  # fmt: skip
            for row in table.rows:
                rich_table.add_row(*(Text(cell) for cell in row))  # cells are data, never markup
            console.print(rich_table)
            for note in table.notes:
                console.print(note, highlight=False, markup=False, soft_wrap=True)
        return
    text = {"markdown": to_markdown, "csv": to_csv, "json": to_json}[fmt](run)
    print(text, end="" if text.endswith("\n") else "\n")
