"""Render a run as a terminal table, Markdown, CSV or JSON. A run's text is a store's (anyone's): what goes to a
terminal, into Markdown or into CSV passes through core/text.py's printable (no escape sequence, no control
character); JSON escapes control characters itself."""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from typing import Any

from dlbench.core.results import Run
from dlbench.core.tables import markdown_table
from dlbench.core.text import printable
from dlbench.runs.published import published_tables
from dlbench.runs.tables import legend, seed_tables

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


def to_markdown(run: Run) -> str:
    parts = [f"## dlbench run {printable(run.run_id)}", "",
             *[f"- {printable(line)}" for line in environment_lines(run)[1:]]]  # fmt: skip
    parts += [f"- {printable(line)}" for line in legend(run)]
    for table in seed_tables(run) + published_tables(run):
        parts += ["", markdown_table(table)]
    return "\n".join(parts) + "\n"


def to_csv(run: Run) -> str:
    records = [{k: printable(v, newlines=True) if isinstance(v, str) else v for k, v in r.items()}
               for r in run.to_records()]  # fmt: skip
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


def print_run(run: Run, fmt: str, console: Any = None) -> None:
    """Print a run in `fmt` (table goes through rich; the others are plain text on stdout)."""
    if fmt == "table":
        from rich.console import Console
        from rich.table import Table as RichTable
        from rich.text import Text

        # Piped output (make run > log, CI) gets room for the seed's wide tables instead of rich's 80 columns.
        console = console or Console(width=None if sys.stdout.isatty() else 160)
        for line in environment_lines(run) + legend(run):
            console.print(printable(line, newlines=True), highlight=False, markup=False)
        for table in seed_tables(run) + published_tables(run):  # titles, headers, cells are data, never markup: Text
            rich_table = RichTable(title=Text(printable(table.title)), title_justify="left")
            for i, column in enumerate(table.columns):
                rich_table.add_column(Text(printable(column)), no_wrap=i == 0,
                                      justify="left" if i == 0 or column == "precision" else "right")  # fmt: skip
            for row in table.rows:
                rich_table.add_row(*(Text(printable(cell, newlines=True)) for cell in row))
            console.print(rich_table)
            for note in table.notes:
                console.print(printable(note, newlines=True), highlight=False, markup=False, soft_wrap=True)
        return
    text = {"markdown": to_markdown, "csv": to_csv, "json": to_json}[fmt](run)
    print(text, end="" if text.endswith("\n") else "\n")
