"""The report's "Precision support" section, from `dlbench probe` findings (kind "probe"): the seed's fp16 question
asked of every layer, backend and precision on this machine. One colour-coded matrix per device and direction
(good = native, info = upcast, warn = slow, bad = wrong or error, neutral = unsupported), the frameworks' quoted
errors as numbered notes, and the legend that defines each verdict. `dlbench probe` prints the same tables.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dlbench.core.tables import Section
from dlbench.probe.matrix import legend, matrix_tables

if TYPE_CHECKING:
    from dlbench.core.results import Run
    from dlbench.store import Store

KIND = "probe"


def build(store: Store, runs: list[Run]) -> Section | None:
    run_ids = store.runs_with_findings([run.run_id for run in runs], KIND)
    findings = [doc for run_id in run_ids for doc in store.findings(run_id, KIND).values()]
    if not findings:
        return None
    paragraphs = [*legend(), "Findings of run(s) " + ", ".join(run_ids) + " (`dlbench probe`)."]
    return Section("probe", "Precision support", paragraphs, matrix_tables(findings), run_ids)
