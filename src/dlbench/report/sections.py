"""Report sections beyond the seed's tables: what dlbench measures beside speed (the precision probe matrix, the
largest batch that fits, compile phases, usability and export probes), read from the store's findings.

Each section is built by one function, named in SECTION_BUILDERS as "module:function", with the signature
`build(store: Store, runs: list[Run]) -> Section | None` (None: nothing to show). Its findings come from the
report's own runs where they hold that kind, else from the newest run in the store that does
(`Store.latest_run_with`), and the section says which run that is. page.py and markdown.py render every Section
the same way, so adding one is one module and one line here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dlbench.report.tables import Table

if TYPE_CHECKING:
    from dlbench.results import Run
    from dlbench.store import Store

# Cell classes a Table may give (Table.classes); page.py colours them, markdown shows the text alone.
CELL_CLASSES = ("good", "info", "warn", "bad", "neutral")

SECTION_BUILDERS: tuple[str, ...] = (
    "dlbench.report.maxbatch_section:build",
    "dlbench.report.compile_section:build",
    "dlbench.report.usability_section:build",
    "dlbench.report.probe_section:build",
)


@dataclass
class Section:
    anchor: str  # HTML id, also the nav link
    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    source_runs: list[str] = field(default_factory=list)  # the runs whose findings it shows


def finding_runs(store: Store, runs: list[Run], kind: str) -> list[str]:
    """The report's runs that hold findings of `kind`; else the newest run in the store that does; else none."""
    own = [run.run_id for run in runs if store.findings(run.run_id, kind)]
    if own:
        return own
    latest = store.latest_run_with(kind)
    return [latest] if latest else []


def build_sections(store: Store, runs: list[Run]) -> list[Section]:
    sections = []
    for target in SECTION_BUILDERS:
        module, _, name = target.partition(":")
        section = getattr(importlib.import_module(module), name)(store, runs)
        if section is not None:
            sections.append(section)
    return sections
