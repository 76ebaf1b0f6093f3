"""What a report says, computed once from stored runs; page.py (HTML) and markdown.py render it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from dlbench._version import __version__
from dlbench.core.results import Run
from dlbench.core.tables import Section, Table
from dlbench.report import recommend, seed2016, versus2016
from dlbench.report.merge import merge_runs
from dlbench.report.recommend import Regime, Summary
from dlbench.runs.tables import legend, seed_tables


@dataclass
class Report:
    runs: list[Run]
    run: Run  # the runs pooled
    notes: list[str]  # what pooling did, the runs' own notes, the legend
    tables: list[Table]
    ratio_table: Table | None
    no_match: str  # said when no case has the seed's size (ratio_table is None)
    rankings: Table | None
    win_counts: list[str]
    precision_table: Table | None
    regimes: list[Regime]
    summary: Summary
    weights: dict[str, float]
    sections: list[Section] = field(default_factory=list)  # beyond speed: probes, max batch, compile, usability
    citation: str = field(default_factory=seed2016.citation)
    generated: str = field(default_factory=lambda: time.strftime("%Y-%m-%d %H:%M:%S %Z"))
    version: str = __version__

    @property
    def title(self) -> str:
        return f"dlbench report: run {self.run.run_id}"


def build(runs: list[Run], weights: dict[str, float] | None = None, sections: list[Section] | None = None) -> Report:
    run, notes = merge_runs(runs)
    weights = dict(weights or {})
    ratio = versus2016.ratio_table(run)
    rankings, wins = versus2016.rankings_table(run)
    found = recommend.regimes(run, weights)
    return Report(
        runs=runs, run=run, notes=[*notes, *legend(run)], tables=seed_tables(run), ratio_table=ratio,
        no_match="" if ratio else versus2016.no_match_text(run), rankings=rankings, win_counts=wins,
        precision_table=versus2016.precision_table(run), regimes=found,
        summary=recommend.summarize(run, found, weights), weights=weights, sections=list(sections or []),
    )  # fmt: skip


def regime_table(report: Report) -> Table:
    table = Table("Fastest backend per regime", [
        "workload", "mode", "precision", "device", "size band", "sizes", "verdict",
        "ranking, fastest first (geometric mean samples/s)", "not ranked (why)", "weight"])  # fmt: skip
    for g in report.regimes:
        ranking = ", ".join(f"{recommend.label(b)} {versus2016.figure(v)}" for b, v in g.ranking) or "—"
        excluded = "; ".join(f"{recommend.label(b)}: {recommend.reasons_text(rs, len(g.sizes))}"
                             for b, rs in g.excluded.items())
        table.rows.append([g.workload, recommend.MODE_TEXT.get(g.mode, g.mode), g.precision, g.device, g.band,
                           "; ".join(",".join(f"{k}={v}" for k, v in s.items()) for s in g.sizes), g.verdict(),
                           ranking, excluded or "—", f"{g.weight:g}"])  # fmt: skip
    return table


def flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """A nested fingerprint as (dotted key, text) pairs."""
    if isinstance(value, dict):
        out: list[tuple[str, str]] = []
        for k, v in value.items():
            out += flatten(v, f"{prefix}.{k}" if prefix else str(k))
        return out
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        out = []
        for i, v in enumerate(value):
            out += flatten(v, f"{prefix}[{i}]")
        return out
    if isinstance(value, list):
        return [(prefix, " ".join(map(str, value)))]
    return [(prefix, "" if value is None else str(value))]


def backend_settings(run: Run) -> Table:
    """Each backend's settings in force and framework versions, as its workers reported them."""
    table = Table("Settings each backend ran with", ["backend", "versions", "settings", "cases"])
    seen: dict[tuple[str, str, str], int] = {}
    for r in run.results:
        versions = ", ".join(f"{k} {v}" for k, v in (r.document.get("versions") or {}).items())
        settings = ", ".join(f"{k}={v}" for k, v in (r.document.get("settings") or {}).items())
        if versions or settings:
            key = (r.case.backend, versions, settings)
            seen[key] = seen.get(key, 0) + 1
    for (backend, versions, settings), count in seen.items():
        table.rows.append([recommend.label(backend) + f" ({backend})", versions or "—", settings or "—", str(count)])
    return table
