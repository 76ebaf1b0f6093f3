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
from typing import TYPE_CHECKING

from dlbench.core.tables import Section

if TYPE_CHECKING:
    from dlbench.core.results import Run
    from dlbench.store import Store

SECTION_BUILDERS: tuple[str, ...] = (
    "dlbench.report.maxbatch_section:build",
    "dlbench.report.compile_section:build",
    "dlbench.report.usability_section:build",
    "dlbench.report.probe_section:build",
)


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
