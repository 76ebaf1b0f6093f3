"""The HTML report: one self-contained file (inline CSS and SVG, no script, no font or image from anywhere), so it
opens from disk with no network. A Content-Security-Policy forbids every fetch and every script, and every
string that came from a run (results, errors, environment) goes through html.escape.
"""

from __future__ import annotations

import re
from html import escape

from dlbench.core.results import Run
from dlbench.core.tables import Section, Table
from dlbench.report import overview, svg
from dlbench.report.content import Report, backend_settings, flatten, regime_table
from dlbench.report.plots import Figure, figures
from dlbench.report.statistics import NOISE_FLOOR

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'none'"
CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#222;margin:0 auto;
max-width:1280px;padding:0 20px 40px}
h1{font-size:24px;margin:20px 0 4px}h2{font-size:19px;margin:28px 0 8px;border-bottom:1px solid #ddd}
h3{font-size:15px;margin:18px 0 6px}nav a{margin-right:14px}
table{border-collapse:collapse;margin:6px 0 4px;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 7px;vertical-align:top}th{background:#f3f3f3;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.fail{background:#fdecea;color:#8a1c12}td.fail a{color:inherit}
td.good{background:#e3f4e6}td.info{background:#e4eefb}td.warn{background:#fff3d6}td.bad{background:#fdecea;color:#8a1c12}
td.neutral{background:#eee;color:#555}
tr:target,li:target{background:#fff3c4}
.notes{font-size:12.5px;color:#444;margin:4px 0 12px;padding-left:20px}
.summary li{margin:3px 0}.muted{color:#666;font-size:12.5px}
.figure{margin:12px 0 20px}.panels{display:flex;flex-wrap:wrap;gap:8px}
.plot{background:#fff;border:1px solid #e4e4e4}.plot .axis{stroke:#555}.plot .grid{stroke:#eee}
.plot text{font-size:10.5px;fill:#333}.plot .ptitle{font-size:12px;font-weight:600}
.legend{display:flex;flex-wrap:wrap;gap:14px;font-size:12.5px;margin:4px 0}
.legend span{display:inline-flex;align-items:center;gap:4px}
.kv td:first-child{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;white-space:nowrap}
.wrap{overflow-x:auto}
""" + overview.CSS
_REF = re.compile(r"\[(\d+)\]$")
_NOTE = re.compile(r"^\[(\d+)\] ")


def _table(table: Table, anchor: str) -> str:
    """A Table with its notes. A cell that ends in `[n]` (not a measurement) links to note n and shows the
    note as its tooltip; a cell that shows a case's figure carries that case's key in data-case."""
    notes = {m.group(1): note for note in table.notes if (m := _NOTE.match(note))}
    out = [f'<h3 id="{anchor}">{escape(table.title)}</h3><div class="wrap"><table><thead><tr>']
    out += [f"<th>{escape(c)}</th>" for c in table.columns]
    out.append("</tr></thead><tbody>")
    for i, row in enumerate(table.rows):
        cases = table.cases[i] if i < len(table.cases) else {}
        classes = table.classes[i] if i < len(table.classes) else {}
        out.append("<tr>")
        for j, cell in enumerate(row):
            attrs = f' data-case="{escape(cases[j])}"' if j in cases else ""
            ref = _REF.search(cell)
            if ref and ref.group(1) in notes:
                note = notes[ref.group(1)]
                css = escape(classes.get(j, "fail"))  # a cell class the table gives wins over the default
                out.append(f'<td class="{css}"{attrs} title="{escape(note)}"><a href="#{anchor}-n{ref.group(1)}">'
                           f"{escape(cell)}</a></td>")  # fmt: skip
                continue
            numeric = j > 0 and bool(cell) and (cell[0].isdigit() or cell[0] in "×~")
            names = " ".join(n for n in ("num" if numeric else "", classes.get(j, "")) if n)
            css = f' class="{escape(names)}"' if names else ""
            out.append(f"<td{css}{attrs}>{escape(cell)}</td>")
        out.append("</tr>")
    out.append("</tbody></table></div>")
    if table.notes:
        out.append('<ul class="notes">')
        for note in table.notes:
            m = _NOTE.match(note)
            ident = f' id="{anchor}-n{m.group(1)}"' if m else ""
            out.append(f"<li{ident}>{escape(note)}</li>")
        out.append("</ul>")
    return "".join(out)


def _figure(figure: Figure, anchor: str) -> str:
    legend = "".join(f"<span>{svg.legend_swatch(s)}{escape(s.name)}</span>" for s in figure.legend)
    panels = "".join(svg.render(p) for p in figure.panels)
    return (f'<div class="figure" id="{anchor}"><h3>{escape(figure.title)}</h3>'
            f'<p class="muted">{escape(figure.caption)}</p><div class="legend">{legend}</div>'
            f'<div class="panels">{panels}</div></div>')  # fmt: skip


def _environment(run: Run) -> str:
    rows = "".join(f"<tr><td>{escape(k)}</td><td>{escape(v)}</td></tr>" for k, v in flatten(run.fingerprint))
    settings = {k: v for k, v in run.settings.items() if k not in ("note", "description")}
    srows = "".join(f"<tr><td>{escape(k)}</td><td>{escape(v)}</td></tr>" for k, v in flatten(settings))
    return (f'<h3>Run {escape(run.run_id)} · suite {escape(run.suite)} · {escape(run.status)} · '
            f"{len(run.results)}/{len(run.plan)} cases</h3>"
            f'<p class="muted">{escape(str(run.settings.get("description") or ""))}</p>'
            f'<div class="wrap"><table class="kv"><thead><tr><th>fingerprint</th><th>value</th></tr></thead>'
            f"<tbody>{rows}</tbody></table></div>"
            f'<div class="wrap"><table class="kv"><thead><tr><th>run setting</th><th>value</th></tr></thead>'
            f"<tbody>{srows}</tbody></table></div>")  # fmt: skip


def _list(lines: list[str], cls: str = "summary") -> str:
    return f'<ul class="{cls}">' + "".join(f"<li>{escape(line)}</li>" for line in lines) + "</ul>" if lines else ""


def _section(section: Section) -> str:
    parts = [f'<h2 id="{escape(section.anchor)}">{escape(section.title)}</h2>']
    parts += [f"<p>{escape(p)}</p>" for p in section.paragraphs]
    parts += [_table(t, f"{section.anchor}-{i}") for i, t in enumerate(section.tables)]
    return "".join(parts)


def render(report: Report) -> str:
    body: list[str] = [
        f"<h1>{escape(report.title)}</h1>",
        f'<p class="muted">generated {escape(report.generated)} by dlbench {escape(report.version)} · suite '
        f"{escape(report.run.suite)} · {len(report.run.results)} results</p>",
        # The overview answers "who is fast where, and who did not run" on the first screen; the details follow,
        # unfolded, through the index of links below it. Not folded in <details>: a closed one gives its plots no
        # size until opened, leaves its tables out of printing, and Find-in-page reaches into it only in some
        # browsers, while a reader of a benchmark report mostly jumps to one table and searches for one case.
        overview.html(overview.build(report.run)),
        '<nav><a href="#recommendation">Recommendation</a><a href="#tables">The seed\'s tables</a>'
        '<a href="#versus-2016">Beside 2016</a><a href="#plots">Plots</a>'
        + "".join(f'<a href="#{escape(s.anchor)}">{escape(s.title)}</a>' for s in report.sections)
        + '<a href="#environment">Environment</a></nav>',
        _list(report.notes, "notes"),
        '<h2 id="recommendation">Recommendation</h2>',
        _list(report.summary.lines),
        _table(regime_table(report), "regimes"),
        '<p class="muted">A regime is workload × mode × precision × device × size band (sizes sorted by the work of '
        "one step, split into up to three bands); a backend's figure in it is the geometric mean of its samples/s "
        "over the band's sizes, and it is ranked only where it has a clean figure at every one (a disturbed figure is "
        "never ranked). Significant: the whole 95% CI of the leader ÷ runner-up ratio (Welch's interval from the "
        "spread between independent processes, --repeat) lies above 1 + the noise floor "
        f"({NOISE_FLOOR:.0%}); from one process per case a lead is never called significant.</p>",
        '<h2 id="tables">The seed\'s tables, from this run</h2>',
        *(_table(t, f"seed-{i}") for i, t in enumerate(report.tables)),
        '<h2 id="versus-2016">Beside the 2016 figures</h2>',
        f'<p class="muted">2016: {escape(report.citation)}.</p>',
        _table(report.ratio_table, "ratios") if report.ratio_table else f"<p>{escape(report.no_match)}</p>",
        _table(report.rankings, "rankings") if report.rankings else "",
        _list(report.win_counts),
        _table(report.precision_table, "precision") if report.precision_table else "",
        '<h2 id="plots">Plots</h2>',
        *(_figure(f, f"figure-{i}") for i, f in enumerate(figures(report.run))),
        *(_section(s) for s in report.sections),
        '<h2 id="environment">Environment</h2>',
        *(_environment(r) for r in report.runs),
        _table(backend_settings(report.run), "backend-settings"),
    ]
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<link rel="icon" href="data:,"><title>{escape(report.title)}</title><style>{CSS}</style></head>'
            f"<body>{''.join(body)}</body></html>\n")  # fmt: skip
