"""The report as Markdown, for an issue or a wiki: the recommendation, the seed's tables, the 2016 comparison
and the environment (the plots are in the HTML report)."""

from __future__ import annotations

from dlbench.core.tables import Table, markdown_table
from dlbench.core.text import printable
from dlbench.report.content import Report, backend_settings, regime_table
from dlbench.runs.render import environment_lines


def _esc(text: str) -> str:
    # Markdown renderers pass inline HTML through: keep a result's text from becoming markup; and a store's text
    # carries no escape sequence or control character into the file (core/text.py).
    return printable(text).replace("&", "&amp;").replace("<", "&lt;")


def _table(table: Table) -> str:
    safe = Table(_esc(table.title), [_esc(c) for c in table.columns], [[_esc(c) for c in row] for row in table.rows],
                 [_esc(n) for n in table.notes])  # fmt: skip
    return markdown_table(safe)


def render(report: Report) -> str:
    parts = [f"# {_esc(report.title)}", "",
             f"Generated {report.generated} by dlbench {report.version}; plots: `dlbench report --out report.html`.",
             ""]  # fmt: skip
    parts += [f"- {_esc(n)}" for n in report.notes]
    parts += ["", "## Recommendation", ""] + [f"- {_esc(line)}" for line in report.summary.lines]
    parts += ["", _table(regime_table(report))]
    parts += ["", "## The seed's tables, from this run"]
    for table in report.tables:
        parts += ["", _table(table)]
    parts += ["", "## Beside the 2016 figures", "", f"2016: {_esc(report.citation)}.", ""]
    parts.append(_table(report.ratio_table) if report.ratio_table else _esc(report.no_match))
    if report.rankings:
        parts += ["", _table(report.rankings)]
    if report.win_counts:
        parts += [""] + [f"- {_esc(line)}" for line in report.win_counts]
    if report.precision_table:
        parts += ["", _table(report.precision_table)]
    for section in report.sections:
        parts += ["", f"## {_esc(section.title)}"]
        parts += [item for p in section.paragraphs for item in ("", _esc(p))]
        parts += [item for t in section.tables for item in ("", _table(t))]
    parts += ["", "## Environment"]
    for run in report.runs:
        parts += ["", *[f"- {_esc(line)}" for line in environment_lines(run)]]
        packages = run.fingerprint.get("packages") or {}
        if packages:
            parts.append("- packages: " + _esc(", ".join(f"{k} {v}" for k, v in packages.items())))
    parts += ["", _table(backend_settings(report.run))]
    return "\n".join(parts) + "\n"
