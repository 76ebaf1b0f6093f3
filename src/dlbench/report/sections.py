"""The report's sections beyond the seed's tables: what dlbench measures beside speed, each section living with the
feature that measures it (its `section.py`) and read from the store's findings.

Every section module has one function, `build(store: Store, runs: list[Run]) -> Section | None` (None: nothing to
show). Its findings come from the report's own runs where they hold that kind, else from the newest run in the store
that does (`Store.runs_with_findings`), and the section says which run that is. page.py and markdown.py render
every Section the same way, so adding one is its feature's section.py and one line here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from dlbench.compile import section as compile_section
from dlbench.core.tables import Section
from dlbench.maxbatch import section as maxbatch_section
from dlbench.peak import section as peak_section
from dlbench.probe import section as probe_section
from dlbench.report import machines as machines_section
from dlbench.report import published as published_section
from dlbench.usability import section as usability_section

if TYPE_CHECKING:
    from dlbench.core.results import Run
    from dlbench.store import Store

# In the order the report shows them.
SECTIONS: tuple[Callable[[Store, list[Run]], Section | None], ...] = (
    machines_section.build,
    published_section.build,
    maxbatch_section.build,
    compile_section.build,
    usability_section.build,
    probe_section.build,
    peak_section.build,
)


def build_sections(store: Store, runs: list[Run]) -> list[Section]:
    return [section for build in SECTIONS if (section := build(store, runs)) is not None]
