"""The report's compile section: first-step time broken into phases, cold vs warm persistent caches (findings of
`dlbench compile`), and the first-step phases that the report's own runs recorded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dlbench.compile.api import KIND
from dlbench.compile.table import RESULT_COLUMNS, findings_table, result_rows
from dlbench.core.tables import Section, Table

if TYPE_CHECKING:
    from dlbench.core.results import Run
    from dlbench.store import Store


def build(store: Store, runs: list[Run]) -> Section | None:
    tables: list[Table] = []
    sources = store.runs_with_findings([run.run_id for run in runs], KIND)
    for run_id in sources:
        findings = store.findings(run_id, KIND)
        if findings:
            tables.append(findings_table(findings.values(), f"Compile and first step, cold vs warm (run {run_id})"))
    rows, cases = result_rows(result for run in runs for result in run.results)
    if rows:
        title = "First-step phases in the measured run" + ("s" if len(runs) > 1 else "")
        notes = ["The first step of each measured case, as its backend broke it down (see the phases' note above "
                 "or the README); median step s is the steady state, for scale."]  # fmt: skip
        tables.append(Table(title, list(RESULT_COLUMNS), rows, notes, cases, [{} for _ in rows]))
    if not tables:
        return None
    paragraphs = [
        "A compiled framework spends its first step tracing, lowering and compiling before it computes anything; "
        "persistent caches let a later process skip part of that. `dlbench compile WORKLOAD` starts each case "
        "twice in a fresh process: cold (empty caches) and warm (the caches the cold process filled).",
    ]
    if not sources:
        paragraphs.append("No compile findings in the store yet: run `dlbench compile lstm --backends jax,pytensor`.")
    return Section("compile", "Compile and first-step time", paragraphs, tables, sources)
