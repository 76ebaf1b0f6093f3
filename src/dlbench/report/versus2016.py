"""Today beside 2016: ratios where a run's case has the seed's size, and the rankings (who wins) per size.

A ratio today ÷ 2016 needs the same workload, size, precision and mode, measured by the backend that continues
the 2016 framework (seed2016.continuations). Scaled suites (seed-cpu) rarely have the seed's sizes; then no ratio
is shown and the rankings, whose shape is comparable, are paired by grid position: the i-th value of each size
parameter in the run ↔ the i-th value in the seed's grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dlbench.backends import BACKENDS
from dlbench.core.results import Result, Run
from dlbench.core.tables import Table
from dlbench.report import seed2016
from dlbench.report.statistics import NOISE_FLOOR, Timed, throughput_ratio
from dlbench.runs.tables import MIB, STATUS_TEXT, framework_label, memory_figure
from dlbench.workloads import WORKLOADS

MODE_TEXT = {"forward": "forward", "train": "forward + backward"}

Size = tuple[tuple[str, int], ...]


def size_key(size: dict[str, int]) -> Size:
    return tuple(sorted(size.items()))


def _ordered(workload: str, size: dict[str, int] | Size) -> list[tuple[str, int]]:
    """A size's items in the workload's own parameter order (seq_len, batch, hidden)."""
    items = dict(size)
    params = [p.name for p in WORKLOADS[workload].params] if workload in WORKLOADS else sorted(items)
    return [(p, items[p]) for p in params if p in items] + [(k, v) for k, v in items.items() if k not in params]


def size_text(size: dict[str, int] | Size, workload: str = "") -> str:
    items = _ordered(workload, size) if workload else list(dict(size).items())
    return ", ".join(f"{k}={v}" for k, v in items)


def figure(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def timed(result: Result) -> Timed:
    return Timed.of(result)


def status_text(result: Result) -> str:
    return STATUS_TEXT.get(result.status, result.status)


@dataclass
class Ranking:
    """Ok results fastest first, with ">" between neighbours whose gap is significant, "≈" where it is not, and
    ">?" where it could not be tested; the results that are not measurements are named after them."""

    ordered: list[Result]
    separators: list[str]
    failed: list[Result] = field(default_factory=list)

    @property
    def winner(self) -> Result | None:
        return self.ordered[0] if self.ordered else None

    @property
    def significant_winner(self) -> bool:
        return bool(self.separators) and self.separators[0] == ">"

    def text(self, name: dict[str, str] | None = None) -> str:
        def label(r: Result) -> str:
            return (name or {}).get(r.case.backend) or BACKENDS[r.case.backend].label \
                if r.case.backend in BACKENDS else r.case.backend

        parts = [label(self.ordered[0])] if self.ordered else []
        for sep, r in zip(self.separators, self.ordered[1:], strict=True):
            parts += [sep, label(r)]
        text = " ".join(parts) or "none measured"
        if self.failed:
            text += " (" + "; ".join(f"{label(r)}: {status_text(r)}" for r in self.failed) + ")"
        return text


def rank(results: list[Result]) -> Ranking:
    ok = sorted((r for r in results if r.status == "ok" and r.samples_s), key=lambda r: -(r.samples_per_s or 0))
    ratios = [throughput_ratio([timed(a)], [timed(b)]) for a, b in zip(ok, ok[1:], strict=False)]
    seps = [">" if r.significant else "≈" if r.testable else ">?" for r in ratios]
    return Ranking(ok, seps, [r for r in results if r.status != "ok" or not r.samples_s])


def _index(run: Run) -> dict[tuple[str, Size, str, str, str], Result]:
    return {(r.case.workload, size_key(r.case.size), r.case.precision, r.case.mode, r.case.backend): r
            for r in run.results}  # fmt: skip


def ratio_table(run: Run) -> Table | None:
    """Today ÷ 2016 for every seed figure whose case the run has (continuation backends only)."""
    index, heirs = _index(run), seed2016.continuations()
    table = Table("Today ÷ 2016, where the run has the seed's case",
                  ["workload", "2016 framework → today", "size", "precision", "mode", "2016 samples / sec",
                   "today samples / sec (95% CI)", "today ÷ 2016", "max memory MiB (2016 → today)"])  # fmt: skip
    devices: set[str] = set()
    for fig in seed2016.seed_figures():
        backend = heirs.get(fig.framework)
        result = index.get((fig.workload, size_key(fig.size_dict), fig.precision, fig.mode, backend or ""))
        if result is None:
            continue
        devices.add(result.case.device)
        then = figure(fig.value) if fig.value is not None else "out of memory"
        if result.status == "ok" and result.samples_per_s:
            low, high = result.stats.get("samples_per_s_ci95") or (None, None)
            now = figure(result.samples_per_s) + (f" ({figure(low)}–{figure(high)})" if low and high else "")
            ratio = f"×{result.samples_per_s / fig.value:.2f}" if fig.value else "—"
        else:
            now, ratio = status_text(result), "—"
        memory = "—"
        if fig.workload == "vgg16":
            mem = memory_figure(result) if result.status == "ok" else None
            memory = (f"{fig.memory_mib:,.0f}" if fig.memory_mib else "out of memory") + " → " + \
                (f"{mem[1] / MIB:,.0f}" if mem else status_text(result) if result.status != "ok" else "—")
        label = framework_label(result)  # `Torch (PyTorch 2.x)`: today's name is the part in parentheses
        today = label[len(fig.framework) + 2:-1] if label.startswith(f"{fig.framework} (") else label
        table.rows.append([fig.workload, f"{fig.framework} → {today}", size_text(fig.size), fig.precision,
                           MODE_TEXT[fig.mode], then, now, ratio, memory])  # fmt: skip
    if not table.rows:
        return None
    if not any(row[0] == "vgg16" for row in table.rows):  # memory is in the seed's VGG-16 table only
        table.columns.pop()
        table.rows = [row[:-1] for row in table.rows]
    if devices - {"cuda"}:
        table.notes.append(f"Today's figures come from {', '.join(sorted(devices))}; 2016's from a GPU: the ratio "
                           "measures the hardware as much as the software.")  # fmt: skip
    if any(r[0] == "vgg16" for r in table.rows):
        table.notes.append("Today's memory is the figure the seed table's memory column shows (device allocator "
                           "peak on a GPU, the worker's peak RSS on a CPU); 2016's is as the study reported it.")
    return table


def no_match_text(run: Run) -> str:
    workloads = sorted({r.case.workload for r in run.results} & {f.workload for f in seed2016.seed_figures()})
    if not workloads:
        return "This run has no case of the seed's workloads: nothing to set beside the 2016 figures."
    sizes = "; ".join(f"{w}: {seed2016.describe_sizes(w)}" for w in workloads)
    return ("No case of this run has the seed's size, precision and mode with a backend that continues a 2016 "
            f"framework ({sizes}), so no ratio today ÷ 2016 is shown: only the rankings (who wins), whose shape "
            "is comparable.")  # fmt: skip


def _pairing(workload: str, sizes: list[Size]) -> dict[Size, tuple[Size | None, str]]:
    """Each of the run's sizes → (the seed's size, "exact" | "by grid position") or (None, "")."""
    seed_sizes = {size_key(f.size_dict) for f in seed2016.seed_figures() if f.workload == workload}
    params = [k for k, _ in sizes[0]] if sizes else []
    run_values = {p: sorted({dict(s)[p] for s in sizes}) for p in params}
    seed_values = {p: seed2016.seed_values(workload, p) for p in params}
    positional = all(len(run_values[p]) == len(seed_values[p]) for p in params)
    pairs: dict[Size, tuple[Size | None, str]] = {}
    for size in sizes:
        if size in seed_sizes:
            pairs[size] = (size, "exact")
        elif positional:
            mapped = tuple((p, seed_values[p][run_values[p].index(v)]) for p, v in size)
            pairs[size] = (mapped, "by grid position") if mapped in seed_sizes else (None, "")
        else:
            pairs[size] = (None, "")
    return pairs


def _seed_ranking(workload: str, size: Size, mode: str) -> list[seed2016.SeedFigure]:
    figures = [f for f in seed2016.seed_figures()
               if f.workload == workload and size_key(f.size_dict) == size and f.mode == mode and f.value]
    return sorted(figures, key=lambda f: -(f.value or 0))


def rankings_table(run: Run) -> tuple[Table | None, list[str]]:
    """Who wins per size and mode, 2016 vs today, for the workloads where 2016 ranked several frameworks.
    Also returns summary lines counting wins."""
    heirs = seed2016.continuations()
    heir_names = set(heirs.values())
    seed_of = {b: f for f, b in heirs.items()}
    names = {b: f if BACKENDS[b].label == f else f"{f} ({BACKENDS[b].label})" for b, f in seed_of.items()}
    table = Table("Who wins: 2016's ranking beside today's",
                  ["workload", "mode", "2016 size", "2016 ranking", "today's size", "today's ranking",
                   "same winner", "today's fastest of all backends"])  # fmt: skip
    summary: list[str] = []
    for workload in ("lstm", "vgg16"):
        if len(seed2016.seed_frameworks(workload)) < 2:
            continue
        precision = next(f.precision for f in seed2016.seed_figures() if f.workload == workload)
        results = [r for r in run.results if r.case.workload == workload and r.case.precision == precision]
        sizes = list(dict.fromkeys(size_key(r.case.size) for r in results))
        pairs = _pairing(workload, sizes)
        for mode in ("forward", "train"):
            wins_then: dict[str, int] = {}
            wins_now: dict[str, list[int]] = {}
            for size in sorted(sizes, key=lambda s: tuple(v for _, v in _ordered(workload, s))):
                at = [r for r in results if size_key(r.case.size) == size and r.case.mode == mode]
                today = rank([r for r in at if r.case.backend in heir_names])
                every = rank(at)
                if not today.ordered and not today.failed:
                    continue
                seed_size, how = pairs[size]
                then = _seed_ranking(workload, seed_size, mode) if seed_size else []
                if then:
                    wins_then[then[0].framework] = wins_then.get(then[0].framework, 0) + 1
                if today.winner:
                    count = wins_now.setdefault(seed_of[today.winner.case.backend], [0, 0])
                    count[0] += 1
                    count[1] += today.significant_winner
                same = "—"
                if then and today.winner:
                    won = seed_of[today.winner.case.backend] == then[0].framework
                    same = ("yes" if won else "no") + ("" if today.significant_winner or len(today.ordered) < 2 else
                                                       " (too few samples to test)" if today.separators[:1] == [">?"]
                                                       else " (not significant)")  # fmt: skip
                paired = size_text(seed_size, workload) + ("" if how == "exact" else f" ({how})") if seed_size else "—"
                table.rows.append([
                    workload, MODE_TEXT[mode], paired, " > ".join(f.framework for f in then) or "—",
                    size_text(size, workload),
                    today.text(names), same,
                    every.text() + ("" if not every.ordered or every.significant_winner or len(every.ordered) < 2
                                    else " (no significant lead)"),
                ])  # fmt: skip
            if wins_then:
                summary.append(f"2016, {workload} {MODE_TEXT[mode]}: " + ", ".join(
                    f"{f} fastest at {n} of {sum(wins_then.values())} sizes"
                    for f, n in sorted(wins_then.items(), key=lambda kv: -kv[1])))  # fmt: skip
            if wins_now:
                total = sum(c[0] for c in wins_now.values())
                summary.append(f"today, {workload} {MODE_TEXT[mode]}: " + ", ".join(
                    f"{names[heirs[f]]} fastest at {c[0]} of {total} sizes ({c[1]} significantly)"
                    for f, c in sorted(wins_now.items(), key=lambda kv: -kv[1][0])))  # fmt: skip
    if not table.rows:
        return None, summary
    table.notes.append("Today's ranking is among the backends that continue the 2016 frameworks: " + ", ".join(
        f"{f} → {BACKENDS[b].label}" for f, b in heirs.items()) + "; their variants (" + ", ".join(
        BACKENDS[v].label for vs in seed2016.variants().values() for v in vs) + ") and every other backend "
        "compete in the last column. '>' marks a significant gap (the whole 95% CI of the ratio, from the spread "
        f"between independent processes, lies beyond 1 ± {NOISE_FLOOR:.0%}), '≈' one within the noise, '>?' one "
        "that could not be tested (one process per case, a disturbed figure, or too few iterations).")  # fmt: skip
    if any("by grid position" in row[2] for row in table.rows):
        table.notes.append("This run's sizes are not the seed's: each is paired with the seed's size at the same "
                           "grid position (the i-th value of each size parameter), so the shapes compare, not the "
                           "figures.")  # fmt: skip
    return table, summary


def _speed_ratio(a: Result | None, b: Result | None) -> str:
    if a and b and a.status == b.status == "ok" and a.samples_per_s and b.samples_per_s:
        return f"×{a.samples_per_s / b.samples_per_s:.2f}"
    bad = [f"{r.case.precision} {status_text(r)}" for r in (a, b) if r is not None and r.status != "ok"]
    return "; ".join(bad) or "—"


def _peak(results: list[Result | None]) -> int | None:
    figures = [f[1] for f in (memory_figure(r) for r in results if r and r.status == "ok") if f]
    return max(figures, default=None)


def precision_table(run: Run) -> Table | None:
    """fp16 ÷ fp32 (speed and memory) per backend and batch, beside the seed's single-framework VGG-16 table.
    Batches pair with the seed's exactly, or by grid position when the run has as many batch sizes."""
    low, high, modes = "fp16", "fp32", ("forward", "train")
    seed = {(f.size_dict["batch"], f.precision, f.mode): f for f in seed2016.seed_figures() if f.workload == "vgg16"}
    results = [r for r in run.results if r.case.workload == "vgg16"]
    index = _index(run)
    batches = sorted({r.case.batch for r in results})
    seed_batches = seed2016.seed_values("vgg16", "batch")
    table = Table(f"VGG-16: {low} ÷ {high}, 2016 beside today",
                  ["today's backend", "batch (2016's)", f"forward {low}÷{high}: 2016 → today",
                   f"forward + backward {low}÷{high}: 2016 → today", f"max memory {low}÷{high}: 2016 → today"])
    for backend in dict.fromkeys(r.case.backend for r in results):
        for size in dict.fromkeys(size_key(r.case.size) for r in results if r.case.backend == backend):
            got = {(p, m): index.get(("vgg16", size, p, m, backend)) for p in (low, high) for m in modes}
            if not any(got[(low, m)] for m in modes) or not any(got[(high, m)] for m in modes):
                continue
            batch = dict(size)["batch"]
            pair = batch if batch in seed_batches else (
                seed_batches[batches.index(batch)] if len(batches) == len(seed_batches) else None)  # fmt: skip
            cells = []
            for mode in modes:
                then = _ratio_text(seed.get((pair, low, mode)), seed.get((pair, high, mode))) if pair else "—"
                cells.append(f"{then} → {_speed_ratio(got[(low, mode)], got[(high, mode)])}")
            mem_then = "—"
            if pair:
                a, b = seed.get((pair, low, "forward")), seed.get((pair, high, "forward"))
                mem_then = (f"×{a.memory_mib / b.memory_mib:.2f}" if a and b and a.memory_mib and b.memory_mib
                            else f"{high} out of memory")  # fmt: skip
            peaks = [_peak([got[(p, m)] for m in modes]) for p in (low, high)]
            mem_now = f"×{peaks[0] / peaks[1]:.2f}" if peaks[0] and peaks[1] else "—"
            label = framework_label(next(r for r in got.values() if r))
            table.rows.append([label, f"{batch} ({pair or '—'})", *cells, f"{mem_then} → {mem_now}"])
    if not table.rows:
        return None
    table.notes.append(f"2016's figures are one framework's ({seed2016.seed_frameworks('vgg16')[0]}); the study "
                       f"found {low} used less memory but ran slower per sample on its GPU.")  # fmt: skip
    if set(batches) - set(seed_batches):
        table.notes.append("This run's batch sizes are not the seed's: the 2016 batch in parentheses is the one "
                           "at the same grid position, so the shapes compare, not the figures.")  # fmt: skip
    return table


def _ratio_text(a: seed2016.SeedFigure | None, b: seed2016.SeedFigure | None) -> str:
    if a is None or b is None:
        return "—"
    if a.value is None or b.value is None:
        return f"{b.precision} out of memory" if b.value is None else f"{a.precision} out of memory"
    return f"×{a.value / b.value:.2f}"
