"""The report's one-screen overview: a heatmap of each backend's speed relative to the fastest, per workload × mode ×
precision (× device, where a run holds several), so that the first screen answers "who is fast where, and who did
not run" before the tables below say how much and how sure.

- Rows are backends (as the recommendation keeps them apart: a spec, and its version where pooled runs hold
  several); columns are workload × mode × precision, grouped by workload, with the sizes collapsed.
- Only clean figures rank (`Result.rankable`: measured and not disturbed). A cell with none shows what happened
  instead (disturbed, out of memory, failed verification, error, timeout, unsupported, not measured), and its
  tooltip says where and why.
- A ranked cell is speed ÷ the fastest backend's speed, taken at each exact case (same size) and, where a column
  has several sizes, geometric-mean'd over the sizes that every ranked backend of that column measured cleanly, so
  no backend is compared on a size another one skipped. A ranked backend that is not clean at some other size of
  the column is marked `*`. A backend whose clean sizes share none with the others' is left unranked (`≠`).
- Where only one backend has a clean figure, its cell says `only`: there is nothing to compare it with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape

from dlbench.core.cases import Case
from dlbench.core.results import Result, Run
from dlbench.report.recommend import label, who
from dlbench.runs.tables import STATUS_TEXT
from dlbench.workloads import WORKLOADS

SizeKey = tuple[tuple[str, int], ...]
ColumnKey = tuple[str, str, str, str]  # workload, mode, precision, device

# mark → (what the cell shows, why such a cell is not ranked), in the order the legend lists them
UNRANKED = {
    "disturbed": ("dist", "disturbed: other processes used its CPUs (or its GPU) in every timed window; the tables "
                  "show the figure, it is never ranked"),
    "oom": ("oom", "out of memory"),
    "unverified": ("unv", "failed verification against the float64 reference, so it was not timed"),
    "error": ("err", "error (the tooltip has the message)"),
    "timeout": ("t/o", "timeout: past the run's --timeout"),
    "unsupported": ("n/s", "unsupported here (a framework not installed, or a capability it lacks)"),
    "not measured": ("—", "planned, but the run has no result (interrupted: --resume measures it)"),
    "elsewhere": ("≠", "clean only at sizes the other ranked backends did not measure: nothing to compare with"),
}
MODE_SHORT = {"forward": "fwd", "train": "train"}
PRECISION_SHORT = {"amp-fp16": "amp16", "amp-bf16": "ampbf"}


@dataclass
class Cell:
    value: float | None  # speed ÷ fastest (1.0 = fastest); None: not ranked
    mark: str = ""  # "" ranked; "only"; else a key of UNRANKED
    partial: bool = False  # ranked, but not clean at some size of the column (tip says where)
    tip: str = ""


@dataclass
class Column:
    workload: str
    mode: str
    precision: str
    device: str
    sizes: list[SizeKey] = field(default_factory=list)  # every size a backend has a result at
    common: list[SizeKey] = field(default_factory=list)  # the sizes the ratios are taken over

    @property
    def name(self) -> str:
        return f"{self.workload} {self.mode} {self.precision} {self.device}"


@dataclass
class Overview:
    backends: list[str]  # row keys (recommend.who)
    columns: list[Column]
    cells: dict[tuple[str, int], Cell]  # (backend, column index); absent: not in the run's plan
    devices: list[str]
    unverified: bool = False  # the run was timed with --no-verify: its figures rank, and the legend says so


def size_text(size: SizeKey) -> str:
    return ",".join(f"{k}={v}" for k, v in size)


def status_of(result: Result) -> str:
    """The overview's word for a result: `ok` (rankable) or a key of UNRANKED."""
    if result.rankable:
        return "ok"
    if result.status == "ok":
        return "disturbed" if "disturbed" in result.flags else "error"  # ok without timed iterations: no figure
    if result.status == "error" and (result.error or "").startswith("failed verification"):
        return "unverified"
    return result.status if result.status in UNRANKED else "error"


def _why(result: Result) -> str:
    status = status_of(result)
    if status == "disturbed":
        return "disturbed (no clean window in any attempt)"
    text = STATUS_TEXT.get(result.status, result.status) if result.status != "ok" else "no timed iterations"
    error = (result.error or "").strip().splitlines()
    return f"{text}: {error[0][:160]}" if error and result.status != "oom" else text


def _column_order(key: ColumnKey) -> tuple[int, str, int, int, str]:
    workload, mode, precision, device = key
    names, modes = list(WORKLOADS), ["forward", "train"]
    return (names.index(workload) if workload in names else len(names), workload,
            modes.index(mode) if mode in modes else 9, 0 if precision == "fp32" else 1, precision + device)  # fmt: skip


def build(run: Run) -> Overview:
    backend_of = who(run.results)
    rows = list(dict.fromkeys(backend_of(r) for r in run.results))
    by_column: dict[ColumnKey, dict[str, dict[SizeKey, Result]]] = {}
    for r in run.results:
        key = (r.case.workload, r.case.mode, r.case.precision, r.case.device)
        by_column.setdefault(key, {}).setdefault(backend_of(r), {})[tuple(r.case.size.items())] = r
    missing: dict[ColumnKey, dict[str, list[Case]]] = {}
    for case in run.missing:  # planned, no result: counted for every row of its spec (each version), else its own
        key = (case.workload, case.mode, case.precision, case.device)
        mine = [b for b in rows if b == case.backend_spec or b.startswith(case.backend_spec + " ")]
        for b in mine or [case.backend_spec]:
            missing.setdefault(key, {}).setdefault(b, []).append(case)
            by_column.setdefault(key, {})
            if b not in rows:
                rows.append(b)
    columns: list[Column] = []
    cells: dict[tuple[str, int], Cell] = {}
    for i, key in enumerate(sorted(by_column, key=_column_order)):
        results = by_column[key]
        column = Column(*key, sizes=list(dict.fromkeys(s for mine in results.values() for s in mine)))
        columns.append(column)
        for b, cell in _column_cells(column, results, missing.get(key, {})).items():
            cells[(b, i)] = cell
    return Overview(rows, columns, cells, sorted({c.device for c in columns}), run.settings.get("verify") is False)


def _column_cells(column: Column, results: dict[str, dict[SizeKey, Result]],
                  missing: dict[str, list[Case]]) -> dict[str, Cell]:  # fmt: skip
    """Each backend's cell in one column; sets column.common."""
    clean = {b: {s: float(r.samples_per_s or 0) for s, r in mine.items() if status_of(r) == "ok"}
             for b, mine in results.items()}  # fmt: skip
    clean = {b: figures for b, figures in clean.items() if figures and min(figures.values()) > 0}
    ranked = list(clean)
    left_out: list[str] = []
    while ranked:  # the sizes every ranked backend measured; where none is shared, drop who has fewest
        common = set.intersection(*(set(clean[b]) for b in ranked))
        if common:
            break
        fewest = min(ranked, key=lambda b: len(clean[b]))
        ranked.remove(fewest)
        left_out.append(fewest)
    column.common = [s for s in column.sizes if all(s in clean[b] for b in ranked)] if ranked else []
    fastest = {s: max(clean[b][s] for b in ranked) for s in column.common}
    out: dict[str, Cell] = {}
    for b in dict.fromkeys([*results, *missing]):
        mine = results.get(b, {})
        problems = [f"{_why(r)} at {size_text(s)}" for s, r in mine.items() if status_of(r) != "ok"]
        problems += [f"not measured at {size_text(tuple(c.size.items()))}" for c in missing.get(b, [])]
        head = f"{label(b)} · {column.name}"
        if b in ranked:
            ratios = [clean[b][s] / fastest[s] for s in column.common]
            value = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
            extra = [size_text(s) for s in clean[b] if s not in column.common]
            figures = "; ".join(f"{clean[b][s]:,.4g} samples/s at {size_text(s)}" for s in column.common[:6])
            over = "" if len(column.common) == 1 else \
                f", geometric mean over the {len(column.common)} sizes every ranked backend measured cleanly"
            tip = (f"{head}: only backend with a clean figure here, nothing to compare ({figures})"
                   if len(ranked) == 1 else f"{head}: {value:.3f} × the fastest{over} ({figures})")
            notes = problems + ([f"also measured at {', '.join(extra)}, left out: not every ranked backend was"]
                                if extra else [])  # fmt: skip
            tip += "".join(f"; {n}" for n in notes)
            out[b] = Cell(value, "only" if len(ranked) == 1 else "", bool(problems), tip)
        elif b in left_out:
            sizes = ", ".join(size_text(s) for s in clean[b])
            out[b] = Cell(None, "elsewhere", tip=f"{head}: not ranked: clean only at {sizes}, which no other ranked "
                          "backend measured" + "".join(f"; {p}" for p in problems))  # fmt: skip
        else:
            marks = [status_of(r) for r in mine.values()] + ["not measured"] * len(missing.get(b, []))
            mark = min(marks, key=lambda m: (-marks.count(m), list(UNRANKED).index(m)))  # most common, then order
            out[b] = Cell(None, mark, tip=f"{head}: not ranked: " + "; ".join(problems))
    return out


# -- HTML --------------------------------------------------------------------------------------------------------

CSS = """
.ov{font-size:11px;line-height:1.2;margin:4px 0 8px}
.ov th,.ov td{padding:2px 2px;border:1px solid #fff;text-align:center;white-space:nowrap;vertical-align:middle}
.ov thead th{background:#f3f3f3;font-weight:600}.ov th.row{text-align:right;background:#fafafa;max-width:170px;
overflow:hidden;text-overflow:ellipsis}
.ov td{min-width:25px;font-variant-numeric:tabular-nums}.ov .g{border-left:2px solid #888}
.ov td.un{background:repeating-linear-gradient(135deg,#f4f4f4 0 3px,#e6e6e6 3px 6px);color:#8a1c12}
.ov td.un.soft{color:#666}.ov td.only{background:#e8e8e8;color:#333;font-style:italic}
.ov td.none{background:#fff;color:#bbb}
.ovlegend{font-size:12px;color:#444;margin:2px 0 6px}.ovlegend .sw{display:inline-block;width:26px;
text-align:center;margin-right:1px;font-size:11px}
.ovlegend b{font-weight:600}
"""
FLOOR = 0.02  # the palette's slowest shade: 50× slower than the fastest, or slower
# ColorBrewer YlGnBu: light = slow, dark = fast (the number is in every cell, so colour is never the only cue)
STOPS = ((0.0, (255, 255, 204)), (0.25, (161, 218, 180)), (0.5, (65, 182, 196)), (0.75, (44, 127, 184)),
         (1.0, (37, 52, 148)))  # fmt: skip
SOFT = {"disturbed", "unsupported", "not measured", "elsewhere"}  # grey text: not a failure of the backend


def shade(value: float) -> tuple[str, str]:
    """(background, text colour) for speed ÷ fastest; log scale from FLOOR (lightest) to 1 (darkest)."""
    t = 1 - min(1.0, max(0.0, math.log(max(value, 1e-12)) / math.log(FLOOR)))
    for (t0, c0), (t1, c1) in zip(STOPS, STOPS[1:], strict=False):
        if t <= t1:
            f = (t - t0) / (t1 - t0)
            rgb = [round(a + (b - a) * f) for a, b in zip(c0, c1, strict=True)]
            return "#{:02x}{:02x}{:02x}".format(*rgb), "#fff" if t > 0.55 else "#111"
    return "#253494", "#fff"


def _number(value: float) -> str:
    """`1`, `.83`, `<.01`: three characters keep ~34 columns within 1280 px."""
    if value >= 0.995:
        return "1"
    return f"{value:.2f}".removeprefix("0") if value >= 0.01 else "<.01"


def _cell(cell: Cell | None, group_start: bool) -> str:
    g = " g" if group_start else ""
    if cell is None:
        return f'<td class="none{g}" title="not in this run">·</td>'
    tip = escape(cell.tip)
    if cell.mark == "only":
        return f'<td class="only{g}" title="{tip}">only</td>'
    if cell.value is None:
        soft = " soft" if cell.mark in SOFT else ""
        return f'<td class="un{soft}{g}" data-mark="{escape(cell.mark)}" title="{tip}">{UNRANKED[cell.mark][0]}</td>'
    background, ink = shade(cell.value)
    text = _number(cell.value) + ("*" if cell.partial else "")
    text = f"<b>{text}</b>" if cell.value >= 0.9995 else text
    return (f'<td class="{g.strip()}" style="background:{background};color:{ink}" data-rel="{cell.value:.4f}" '
            f'title="{tip}">{text}</td>')  # fmt: skip


def _spans(keys: list[tuple[str, ...]]) -> list[tuple[tuple[str, ...], int, bool]]:
    """Runs of equal keys: (key, length, starts a workload group)."""
    out: list[tuple[tuple[str, ...], int, bool]] = []
    for i, key in enumerate(keys):
        if out and out[-1][0] == key:
            out[-1] = (key, out[-1][1] + 1, out[-1][2])
        else:
            out.append((key, 1, i == 0 or keys[i - 1][0] != key[0]))
    return out


MAX_COLUMNS = 34  # per grid: 34 × ~30 px beside a ≤170 px row header fit the page's 1240 px; more: a 2nd grid


def bands(columns: list[Column], most: int = MAX_COLUMNS) -> list[list[Column]]:
    """The columns in grids stacked one under the other, each at most `most` wide where a workload allows (a
    workload is never split), of about equal width: 8 backends fit twice within one screen's height."""
    groups: dict[str, list[Column]] = {}
    for c in columns:
        groups.setdefault(c.workload, []).append(c)
    width = math.ceil(len(columns) / math.ceil(len(columns) / most)) if columns else most
    out: list[list[Column]] = []
    for group in groups.values():
        if out and len(out[-1]) < width and len(out[-1]) + len(group) <= most:
            out[-1].extend(group)
        else:
            out.append(list(group))
    return out


def html(overview: Overview) -> str:
    parts = ['<h2 id="overview">Overview: each backend\'s speed ÷ the fastest</h2>']
    if not overview.columns:
        return parts[0] + "<p>No results: nothing to compare.</p>"
    parts += [_grid(overview, band) for band in bands(overview.columns)]
    parts.append(_legend(overview))
    return "".join(parts)


def _grid(overview: Overview, cols: list[Column]) -> str:
    several = len(overview.devices) > 1
    index = {id(c): i for i, c in enumerate(overview.columns)}
    starts = {i for i, c in enumerate(cols) if i == 0 or cols[i - 1].workload != c.workload}
    head1, head2 = ['<th rowspan="3">backend</th>'], []
    for (workload,), n, _ in _spans([(c.workload,) for c in cols]):
        sizes = {s for c in overview.columns if c.workload == workload for s in c.sizes}
        head1.append(f'<th class="g" colspan="{n}" title="{escape(workload)}: {len(sizes)} size(s)">'
                     f"{escape(workload)}</th>")  # fmt: skip
    for (_, mode, device), n, start in _spans([(c.workload, c.mode, c.device) for c in cols]):
        text = MODE_SHORT.get(mode, mode) + (f" {device}" if several else "")
        head2.append(f'<th class="{"g" if start else ""}" colspan="{n}" title="{escape(mode)}">{escape(text)}</th>')
    head3 = []
    for i, c in enumerate(cols):
        over = "the one size" if len(c.sizes) == 1 else f"{len(c.common)} of {len(c.sizes)} sizes"
        tip = f"{c.name}: compared over {over}" + (f" ({'; '.join(size_text(s) for s in c.common)})"
                                                    if c.common else ": no backend ranked")  # fmt: skip
        head3.append(f'<th class="{"g" if i in starts else ""}" title="{escape(tip)}">'
                     f"{escape(PRECISION_SHORT.get(c.precision, c.precision))}</th>")  # fmt: skip
    body = []
    for b in overview.backends:
        cells = "".join(_cell(overview.cells.get((b, index[id(c)])), i in starts) for i, c in enumerate(cols))
        body.append(f'<tr><th class="row" title="{escape(b)}">{escape(label(b))}</th>{cells}</tr>')
    return (f'<div class="wrap"><table class="ov"><thead><tr>{"".join(head1)}</tr><tr>{"".join(head2)}</tr>'
            f'<tr>{"".join(head3)}</tr></thead><tbody>{"".join(body)}</tbody></table></div>')


def _legend(overview: Overview) -> str:
    scale = "".join(f'<span class="sw" style="background:{shade(v)[0]};color:{shade(v)[1]}">{_number(v)}</span>'
                    for v in (1.0, 0.7, 0.5, 0.3, 0.1, FLOOR))  # fmt: skip
    shown = {c.mark for c in overview.cells.values() if c.value is None}
    marks = "; ".join(f"<b>{escape(text)}</b> {escape(why)}" for m, (text, why) in UNRANKED.items() if m in shown)
    several = any(len(c.sizes) > 1 for c in overview.columns)
    sizes = (" Where a column has several sizes, the ratio is taken at each size and geometric-mean'd over the sizes "
             "every ranked backend measured cleanly (hover a precision for which); <b>*</b>: ranked there, but not "
             "clean at some other size of the column." if several else "")  # fmt: skip
    precisions = [f"{short} = {p}" for p, short in PRECISION_SHORT.items() if any(c.precision == p
                                                                                 for c in overview.columns)]
    return (f'<p class="ovlegend">{scale} Each cell: the backend\'s samples/s ÷ the fastest backend\'s in that '
            f"workload, mode and precision (<b>1</b> = fastest; colour on a log scale, darkest = fastest).{sizes} "
            f"Only clean figures are ranked; <b>only</b>: the one backend with a clean figure, nothing to compare. "
            f"Hover a cell for its figures and why. {escape('; '.join(precisions))}</p>"
            + (f'<p class="ovlegend">Not ranked: {marks}.</p>' if marks else "")
            + ('<p class="ovlegend"><b>Timed with --no-verify</b>: no figure here was checked against the float64 '
               "reference; they are ranked as the tables rank them.</p>" if overview.unverified else ""))  # fmt: skip


__all__ = ["UNRANKED", "Cell", "Column", "Overview", "build", "html", "shade", "status_of"]
