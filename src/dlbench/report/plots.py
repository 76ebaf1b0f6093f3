"""The report's plots, built from a run: LSTM samples/s against hidden size (one panel per sequence length ×
batch × mode), VGG-16 samples/s and memory against batch (per precision), first-step (compile) time per
backend, and % of the measured peak per backend (where `dlbench peak` measured this machine). Error bars are the
95% CIs the run stored (stats.samples_per_s_ci95)."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dlbench.backends import BACKENDS
from dlbench.core.results import Result, Run
from dlbench.peak.figures import Peaks, achieved, percent
from dlbench.peak.lookup import lookup
from dlbench.report.recommend import MODE_TEXT, who
from dlbench.report.recommend import label as backend_label
from dlbench.report.svg import MARKERS, PALETTE, Panel, Point, Series
from dlbench.runs.tables import MIB, STATUS_TEXT, memory_figure


@dataclass
class Figure:
    title: str
    caption: str
    panels: list[Panel]
    legend: list[Series]


def style(backend: str) -> tuple[str, str, str]:
    """(label, colour, marker), the same for a backend in every plot; a backend in another env or at another
    version (a key of recommend.who: `torch@old`, `torch 2.5.1`) gets a colour and marker of its own."""
    names = list(BACKENDS)
    index = names.index(backend) if backend in names else len(names) + sum(map(ord, backend))
    name = BACKENDS[backend].label if backend in BACKENDS else backend_label(backend)
    return name, PALETTE[index % len(PALETTE)], MARKERS[index % len(MARKERS)]


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _reason(result: Result) -> str:
    text = STATUS_TEXT.get(result.status, result.status)
    error = (result.error or "").strip().splitlines()
    return text + (f": {error[0][:200]}" if error else "")


def _throughput_point(result: Result, x: float | str, what: str) -> Point:
    label = style(result.case.backend)[0]
    if result.status != "ok" or not result.samples_per_s:
        return Point(x, None, tip=f"{label} · {what}: {_reason(result)}")
    value = result.samples_per_s
    low, high = (result.stats.get("samples_per_s_ci95") or [None, None])[:2]
    ci = f" (95% CI {_fmt(low)}–{_fmt(high)})" if low and high else ""
    return Point(x, value, low, high, f"{label} · {what}: {_fmt(value)} samples/s{ci}, n={result.stats.get('n')}")


def _panels(results: list[Result], group: Callable[[Result], tuple[Any, ...]], title: Callable[[tuple[Any, ...]], str],
            x: Callable[[Result], float], point: Callable[[Result, float], Point], x_label: str,
            y_label: str) -> tuple[list[Panel], list[Series]]:  # fmt: skip
    groups: dict[tuple[Any, ...], list[Result]] = {}
    for r in results:
        groups.setdefault(group(r), []).append(r)
    panels: list[Panel] = []
    legend: dict[str, Series] = {}
    backend_of = who(results)  # two envs or versions of one backend: two series
    for key in sorted(groups, key=lambda k: tuple((1, 0.0, v) if isinstance(v, str) else (0, v, "") for v in k)):
        series: dict[str, Series] = {}
        for r in sorted(groups[key], key=x):
            name, color, shape = style(backend_of(r))
            s = series.setdefault(backend_of(r), Series(name, color, shape))
            s.points.append(point(r, x(r)))
        panels.append(Panel(title(key), x_label, y_label, list(series.values())))
        for b, s in series.items():
            legend.setdefault(b, Series(s.name, s.color, s.marker))
    return panels, list(legend.values())


def lstm_figure(run: Run) -> Figure | None:
    results = [r for r in run.results if r.case.workload == "lstm"]
    if not results:
        return None
    precisions = len({r.case.precision for r in results}) > 1

    def title(k: tuple[Any, ...]) -> str:
        seq, batch, mode, precision = k
        return f"seq {seq}, batch {batch}, {MODE_TEXT.get(mode, mode)}" + (f", {precision}" if precisions else "")

    panels, legend = _panels(
        results, lambda r: (r.case.size["seq_len"], r.case.size["batch"], r.case.mode, r.case.precision), title,
        lambda r: float(r.case.size["hidden"]), lambda r, x: _throughput_point(r, x, f"hidden {x:g}"),
        "hidden size", "samples / s")  # fmt: skip
    return Figure("LSTM: samples/s against hidden size", "One panel per sequence length × batch × mode; "
                  "bars: 95% CI of the median; a cross on the axis: no figure (hover for why).", panels, legend)


def vgg_figures(run: Run) -> list[Figure]:
    results = [r for r in run.results if r.case.workload == "vgg16"]
    if not results:
        return []
    images = len({r.case.size["image"] for r in results}) > 1

    def title(k: tuple[Any, ...]) -> str:
        precision, mode, image = k
        return f"{precision}, {MODE_TEXT.get(mode, mode)}" + (f", {image}×{image}" if images else "")

    speed, legend = _panels(
        results, lambda r: (r.case.precision, r.case.mode, r.case.size["image"]), title,
        lambda r: float(r.case.batch), lambda r, x: _throughput_point(r, x, f"batch {x:g}"), "batch", "samples / s")
    memory_results: dict[tuple[str, int, int, str], list[Result]] = {}
    for r in results:
        memory_results.setdefault((r.case.precision, r.case.size["image"], r.case.batch, r.case.backend_spec),
                                  []).append(r)  # fmt: skip
    firsts = [rs[0] for rs in memory_results.values()]
    by_first = {id(rs[0]): rs for rs in memory_results.values()}

    def memory_point(r: Result, x: float) -> Point:
        rs = by_first[id(r)]
        figures = [f for f in (memory_figure(m) for m in rs if m.status == "ok") if f]
        label = style(r.case.backend)[0]
        if not figures:
            bad = next((m for m in rs if m.status != "ok"), rs[0])
            return Point(x, None, tip=f"{label} · batch {x:g}: {_reason(bad)}")
        name, value = max(figures, key=lambda f: f[1])
        return Point(x, value / MIB, tip=f"{label} · batch {x:g}: {value / MIB:,.0f} MiB ({name})")

    memory, _ = _panels(firsts, lambda r: (r.case.precision, r.case.size["image"]),
                        lambda k: f"{k[0]} memory" + (f", {k[1]}×{k[1]}" if images else ""),
                        lambda r: float(r.case.batch), memory_point, "batch", "max memory MiB")  # fmt: skip
    return [
        Figure("VGG-16: samples/s against batch", "One panel per precision × mode; bars: 95% CI of the median.",
               speed, legend),
        Figure("VGG-16: memory against batch", "The larger of the forward and forward+backward peaks (the "
               "figure the table shows: device allocator on a GPU, worker RSS on a CPU).", memory, legend),
    ]


def first_step_figure(run: Run) -> Figure | None:
    groups: dict[tuple[str, str], dict[str, list[float]]] = {}
    failed: dict[tuple[str, str], dict[str, Result]] = {}
    for r in run.results:
        key = (r.case.workload, r.case.mode)
        if r.status == "ok" and r.first_step_s is not None:
            groups.setdefault(key, {}).setdefault(r.case.backend_spec, []).append(r.first_step_s)
        else:
            failed.setdefault(key, {}).setdefault(r.case.backend_spec, r)
    if not groups:
        return None
    panels: list[Panel] = []
    legend: dict[str, Series] = {}
    for (workload, mode), by_backend in sorted(groups.items()):
        series = []
        for backend, values in by_backend.items():
            label, color, shape = style(backend)
            med = statistics.median(values)
            tip = (f"{label}: first step median {med:.3g} s over {len(values)} case(s) "
                   f"(range {min(values):.3g}–{max(values):.3g} s)")  # fmt: skip
            series.append(Series(label, color, shape, [Point(label, med, min(values), max(values), tip)], line=False))
            legend.setdefault(backend, Series(label, color, shape, line=False))
        for backend, bad in failed.get((workload, mode), {}).items():
            if backend not in by_backend:  # no first step anywhere: a cross, with why
                label, color, shape = style(backend)
                series.append(Series(label, color, shape, [Point(label, None, tip=f"{label}: {_reason(bad)}")],
                                     line=False))  # fmt: skip
        panels.append(Panel(f"{workload}, {MODE_TEXT.get(mode, mode)}", "backend", "first step s", series))
    return Figure("First step (compile/trace) time", "Median over the run's sizes; bars: the range over sizes.",
                  panels, list(legend.values()))


def peak_figure(run: Run, peaks: Peaks | None = None) -> Figure | None:
    """% of peak per backend: one panel per workload × mode × precision, a point per backend at the median over
    the run's sizes, its bar the range; None when no result has a peak to be held against (the legend says so)."""
    peaks = lookup(run) if peaks is None else peaks
    groups: dict[tuple[str, str, str], dict[str, list[tuple[float, Result]]]] = {}
    backend_of = who(run.results)
    for r in run.results:
        share = percent(r, peaks.of(run, r))
        if share is not None:
            key = (r.case.workload, r.case.mode, r.case.precision)
            groups.setdefault(key, {}).setdefault(backend_of(r), []).append((share, r))
    if not groups:
        return None
    panels: list[Panel] = []
    legend: dict[str, Series] = {}
    for (workload, mode, precision), by_backend in sorted(groups.items()):
        series = []
        for backend, shares in by_backend.items():
            label, color, shape = style(backend)
            values = [v for v, _ in shares]
            med = statistics.median(values)
            fastest = max(shares, key=lambda s: s[0])[1]
            tip = (f"{label}: median {med:.3g}% of the {precision} peak over {len(values)} size(s) (range "
                   f"{min(values):.3g}–{max(values):.3g}%; best {(achieved(fastest) or 0) / 1e9:.3g} GFLOP/s at "
                   + ", ".join(f"{k}={v}" for k, v in fastest.case.size.items()) + ")")  # fmt: skip
            series.append(Series(label, color, shape, [Point(label, med, min(values), max(values), tip)], line=False))
            legend.setdefault(backend, Series(label, color, shape, line=False))
        panels.append(Panel(f"{workload}, {MODE_TEXT.get(mode, mode)}, {precision}", "backend", "% of peak", series))
    return Figure("Achieved FLOP/s as % of the measured peak", "Median over the run's sizes; bars: the range over "
                  "sizes. The peak is `dlbench peak`'s matrix-multiply FLOP/s on this machine for the precision; "
                  "FLOPs counted 2 per multiply-add, convolutions as direct ones (so a Winograd or FFT kernel may "
                  "pass 100%).", panels, list(legend.values()))  # fmt: skip


def figures(run: Run) -> list[Figure]:
    found = [lstm_figure(run), *vgg_figures(run), first_step_figure(run), peak_figure(run)]
    return [f for f in found if f is not None]
