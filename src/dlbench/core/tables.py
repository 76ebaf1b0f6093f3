"""Tables as dlbench prints them, whatever their content: a `Table` (title, columns, rows of text, notes, and per
cell the case it shows and a class to colour it by), a report `Section` of tables, and the two ways a command
prints them: through rich in a terminal, or as Markdown. Every feature builds its own Tables; this module knows
none of them.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from dlbench.core.text import printable

# Cell classes a Table may give (Table.classes); the HTML report colours them, the terminal too (CELL_STYLES),
# Markdown shows the text alone.
CELL_CLASSES = ("good", "info", "warn", "bad", "neutral")


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Per row: column index → the key of the case whose figure that cell shows (the HTML report marks cells
    # with it, so a reader or a test can tell which case each figure is).
    cases: list[dict[int, str]] = field(default_factory=list)
    # Per row: column index → a cell class from CELL_CLASSES (the HTML report colours the cell).
    classes: list[dict[int, str]] = field(default_factory=list)


@dataclass
class Section:
    """A part of the report beyond the seed's tables (a feature's findings), rendered alike by HTML and Markdown."""

    anchor: str  # HTML id, also the nav link
    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    source_runs: list[str] = field(default_factory=list)  # the runs whose findings it shows


def markdown_table(table: Table) -> str:
    def esc(text: str) -> str:  # one line, no escape sequence (core/text.py), no cell break
        return printable(text).replace("|", "\\|")

    out = [f"### {printable(table.title)}", "", "| " + " | ".join(map(esc, table.columns)) + " |",
           "|" + "|".join("---" for _ in table.columns) + "|"]  # fmt: skip
    out += ["| " + " | ".join(esc(c) for c in row) + " |" for row in table.rows]
    if table.notes:
        out += [""] + [f"- {esc(n)}" for n in table.notes]
    return "\n".join(out)


# How the terminal shows a Table's cell classes; the HTML report colours them itself.
CELL_STYLES = {"good": "green", "info": "blue", "warn": "yellow", "bad": "bold red", "neutral": "dim"}


def print_tables(tables: list[Table], fmt: str = "table", notes: list[str] | None = None) -> None:
    """Print Tables with their notes (and then `notes`): `table` through rich, cell classes as colours, wide
    enough when piped; `markdown` as Markdown. What the probe, maxbatch, compile and usability commands print."""
    if fmt == "markdown":
        print("\n\n".join(markdown_table(t) for t in tables))
        for note in notes or []:
            print(f"- {printable(note)}")
        return
    from rich.console import Console
    from rich.table import Table as RichTable
    from rich.text import Text

    # Everything as Text (a str title or header would be read as rich markup), through printable (core/text.py).
    console = Console(width=None if sys.stdout.isatty() else 200)
    for table in tables:
        out = RichTable(title=Text(printable(table.title)), title_justify="left")
        for column in table.columns:
            out.add_column(Text(printable(column)))
        for i, row in enumerate(table.rows):
            classes = table.classes[i] if i < len(table.classes) else {}
            out.add_row(*(Text(printable(cell, newlines=True), style=CELL_STYLES.get(classes.get(j, ""), ""))
                          for j, cell in enumerate(row)))  # fmt: skip
        console.print(out)
        for note in table.notes:
            console.print(printable(note, newlines=True), highlight=False, markup=False, soft_wrap=True)
    for note in notes or []:
        console.print(printable(note, newlines=True), highlight=False, markup=False, soft_wrap=True)
