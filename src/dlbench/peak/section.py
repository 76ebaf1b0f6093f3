"""The report's "Peak" section: the peak run(s) that the report's % of peak columns are held against (lookup.py:
the newest complete peak run of the machine each result ran on), as `dlbench peak` prints them. No section when
no peak applies: the tables' legend then says "no peak (run dlbench peak)".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dlbench.core.tables import Section
from dlbench.peak.figures import FLOP_CONVENTION, KIND
from dlbench.peak.lookup import find
from dlbench.peak.table import peak_table

if TYPE_CHECKING:
    from dlbench.core.results import Run
    from dlbench.store import Store


def build(store: Store, runs: list[Run]) -> Section | None:
    peaks = {peak.run_id: peak for run in runs for peak in find(store, run).found.values()}
    if not peaks:
        return None
    tables = [peak_table(store.findings(run_id, KIND).values(), f"Peak of {peak.machine.describe()}, run {run_id}")
              for run_id, peak in peaks.items()]  # fmt: skip
    paragraphs = ["The tables' FLOP/s column shows each result's achieved FLOP/s and, in brackets, its share of "
                  "the peak below for its precision (amp-* against its low type), measured by `dlbench peak` on "
                  f"the same machine. {FLOP_CONVENTION}."]  # fmt: skip
    return Section("peak", "Peak FLOP/s and memory bandwidth", paragraphs, tables, list(peaks))
