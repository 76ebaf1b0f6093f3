"""The seed's two tables, built from a run's results.

LSTM: framework × seq × batch × hidden → forward and forward+backward samples/s (the seed's layout).
VGG-16: framework × precision × batch → forward, forward+backward samples/s and max memory; each layer stack (the
CNNs, the transformer block) the same, a table per workload.
All end with the achieved FLOP/s of each row's two cases and their % of this machine's measured peak (dlbench.peak:
the newest `dlbench peak` run of the same machine in the run's store; none: the legend says so).
A cell that is not a measurement says what happened instead ("out of memory", "unsupported", ...), with the
reason in a numbered note under the table. Nothing here knows any framework by name: labels come from the
backend registry and the versions each worker reported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dlbench.backends import BACKENDS
from dlbench.core.results import Result, Run
from dlbench.core.tables import Table
from dlbench.measure.memory import DEVICE_FIGURES
from dlbench.peak.figures import Peaks, flops_unit, legend_lines
from dlbench.peak.figures import cell as flops_cell
from dlbench.peak.lookup import lookup
from dlbench.workloads.convnets import STACKS

STATUS_TEXT = {"oom": "out of memory", "unsupported": "unsupported", "error": "error", "timeout": "timeout"}
MIB = 1024 * 1024


def version_of(result: Result) -> str:
    """The framework version the worker reported (the first entry of `versions`), "" where none was."""
    versions = result.document.get("versions") or {}
    return next((v for v in versions.values() if isinstance(v, str) and v), "")


def framework_label(result: Result, version: str | None = None) -> str:
    """`Torch (PyTorch 2.13.0)`: the seed's name for the framework's line, then today's framework and version;
    `Theano 1.0.5` where the backend is the seed's framework itself. A tagged env (`torch@old`) is named too."""
    info = BACKENDS.get(result.case.backend)
    if info is None:
        return result.case.backend_spec
    version = version_of(result) if version is None else version
    name = f"{info.label} {version}".strip() + (f" [{result.case.env}]" if result.case.env else "")
    return f"{info.seed_row} ({name})" if info.seed_row and info.seed_row != info.label else name


def row_identities(results: list[Result]) -> dict[int, tuple[str, str]]:
    """id(result) → (backend spec, version): the rows a table keeps apart. One backend at two versions (two envs
    of a run, or pooled runs) makes two rows. A result with no version (a timeout: its worker never said) takes
    its backend spec's version where the other results show exactly one."""
    known: dict[str, set[str]] = {}
    for r in results:
        if version_of(r):
            known.setdefault(r.case.backend_spec, set()).add(version_of(r))
    out = {}
    for r in results:
        versions = known.get(r.case.backend_spec, set())
        version = version_of(r) or (next(iter(versions)) if len(versions) == 1 else "")
        out[id(r)] = (r.case.backend_spec, version)
    return out


class _Notes:
    """Numbered reasons for cells that are not measurements; identical reasons share a number."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def cell(self, result: Result | None) -> str:
        if result is None:
            return "—"
        if result.status == "ok":
            stats = result.stats
            value = stats["samples_per_s"]
            text = f"{value:,.0f}" if value >= 100 else f"{value:.3g}"
            flags, spread = result.flags, stats.get("between_rel_spread")
            if isinstance(spread, (int, float)) and spread >= 0.01:  # two or more processes: how far they disagree
                text += f" ±{spread / 2:.0%}"
            if "disturbed" in flags:
                text += " [disturbed]"
            if "few-iterations" in flags:
                text += f" [n={min(stats.get('n_per_repetition') or [stats.get('n', 0)])}]"
            elif spread is None and stats.get("warnings") and "disturbed" not in flags:
                text += " ~"
            return text
        reason = f"{result.case.backend}: {STATUS_TEXT.get(result.status, result.status)}: {result.error or ''}"
        reason = reason.strip().splitlines()[0][:300]
        if reason not in self.items:
            self.items.append(reason)
        return f"{STATUS_TEXT.get(result.status, result.status)} [{self.items.index(reason) + 1}]"

    def lines(self) -> list[str]:
        return [f"[{i}] {text}" for i, text in enumerate(self.items, 1)]


# Device figures of stores written before they were named alike (measure/memory.py: DEVICE_FIGURES).
_LEGACY_FIGURES = ("torch_cuda_max_allocated", "tensorflow_gpu_peak", "jax_peak_bytes_in_use")


def memory_figure(result: Result) -> tuple[str, int] | None:
    """The figure the memory column shows: on a device, the process's memory as nvidia-smi shows it (what the
    2016 study read) where NVML gave it, else the framework allocator's peak; on the CPU the worker's peak RSS.
    Each is named in the table's note."""
    memory = result.memory
    for key in (*DEVICE_FIGURES, *_LEGACY_FIGURES, "rss_peak_bytes"):
        value = memory.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return key, value
    return None


def _group(results: list[Result], key: Callable[[Result], tuple[Any, ...]]) -> dict[tuple[Any, ...], dict[str, Result]]:
    groups: dict[tuple[Any, ...], dict[str, Result]] = {}
    for r in results:
        groups.setdefault(key(r), {})[r.case.mode] = r
    return groups


def _row_cases(columns: list[str], by_mode: dict[str, Result]) -> dict[int, str]:
    cells = {"forward": "forward samples / sec", "train": "forward + backward samples / sec"}
    return {columns.index(cells[m]): r.case.key for m, r in by_mode.items() if m in cells}


def _first_step(by_mode: dict[str, Result]) -> str:
    parts = [f"{by_mode[m].first_step_s:.2f}" if m in by_mode and by_mode[m].first_step_s is not None else "—"
             for m in ("forward", "train")]  # fmt: skip
    return " / ".join(parts)


def lstm_table(run: Run, peaks: Peaks | None = None) -> Table | None:
    results = [r for r in run.results if r.case.workload == "lstm"]
    if not results:
        return None
    peaks = lookup(run) if peaks is None else peaks
    unit, scale = flops_unit(results)
    multi_precision = len({r.case.precision for r in results}) > 1
    columns = ["framework", *(["precision"] if multi_precision else []), "sequence length", "batch size",
               "hidden layer size", "forward samples / sec", "forward + backward samples / sec",
               "first step s (fwd / fwd+bwd)", f"{unit} (% of peak), fwd / fwd+bwd"]  # fmt: skip
    table = Table("LSTM: a single layer", columns)
    notes = _Notes()
    identity = row_identities(results)
    order = list(dict.fromkeys(identity[id(r)] for r in results))
    groups = _group(results, lambda r: (r.case.size["seq_len"], r.case.size["batch"], r.case.size["hidden"],
                                        r.case.precision, order.index(identity[id(r)])))  # fmt: skip
    for key in sorted(groups):
        by_mode = groups[key]
        any_result = next(iter(by_mode.values()))
        seq, batch, hidden, precision, index = key
        row = [framework_label(any_result, order[index][1]), *([precision] if multi_precision else []), str(seq),
               str(batch), str(hidden), notes.cell(by_mode.get("forward")), notes.cell(by_mode.get("train")),
               _first_step(by_mode), flops_cell(run, [by_mode.get("forward"), by_mode.get("train")], peaks, scale)
               ]  # fmt: skip
        table.rows.append(row)
        table.cases.append(_row_cases(columns, by_mode))
    table.notes = notes.lines()
    return table


def vgg_table(run: Run, peaks: Peaks | None = None) -> Table | None:
    results = [r for r in run.results if r.case.workload == "vgg16"]
    if not results:
        return None
    images = sorted({r.case.size["image"] for r in results})
    return sized_table(run, results, f"VGG-16 convolutional body ({', '.join(f'{i}×{i}' for i in images)} input)",
                       peaks)  # fmt: skip


# How a size parameter heads its column (others by their own name).
_SIZE_COLUMNS = {"batch": "batch size", "seq_len": "sequence length", "d_model": "d_model", "image": "image"}


def sized_table(run: Run, results: list[Result], title: str, peaks: Peaks | None = None) -> Table:
    """One workload's results, a row per framework × size × precision: samples/s forward and forward + backward, max
    memory, first step, FLOP/s and % of peak. The batch size always has a column; another size parameter only
    where it varies."""
    peaks = lookup(run) if peaks is None else peaks
    unit, scale = flops_unit(results)
    keys = list(results[0].case.size)
    shown = [k for k in keys if k == "batch" or len({r.case.size.get(k) for r in results}) > 1]
    columns = ["framework", "precision", *(_SIZE_COLUMNS.get(k, k) for k in shown),
               "forward samples / sec", "forward + backward samples / sec", "max memory usage (MiB)",
               "first step s (fwd / fwd+bwd)", f"{unit} (% of peak), fwd / fwd+bwd"]  # fmt: skip
    table = Table(title, columns)
    notes = _Notes()
    identity = row_identities(results)
    order = list(dict.fromkeys(identity[id(r)] for r in results))
    precision_order = list(dict.fromkeys(r.case.precision for r in results))
    groups = _group(results, lambda r: (order.index(identity[id(r)]), *(r.case.size.get(k, 0) for k in keys),
                                        precision_order.index(r.case.precision)))  # fmt: skip
    figures: set[str] = set()
    for key in sorted(groups):
        by_mode = groups[key]
        any_result = next(iter(by_mode.values()))
        memory = [f for f in (memory_figure(r) for r in by_mode.values() if r.status == "ok") if f]
        if memory:
            figures.update(name for name, _ in memory)
            memory_cell = f"{max(v for _, v in memory) / MIB:,.0f}"
        else:
            statuses = {r.status for r in by_mode.values()}
            memory_cell = "out of memory" if "oom" in statuses else "—"
        row = [framework_label(any_result, order[key[0]][1]), any_result.case.precision,
               *(str(any_result.case.size[k]) for k in shown),
               notes.cell(by_mode.get("forward")), notes.cell(by_mode.get("train")), memory_cell,
               _first_step(by_mode), flops_cell(run, [by_mode.get("forward"), by_mode.get("train")], peaks, scale)
               ]  # fmt: skip
        table.rows.append(row)
        table.cases.append(_row_cases(columns, by_mode))
    table.notes = notes.lines()
    if figures:
        table.notes.insert(0, "max memory: the larger of the forward and forward+backward cases' peak, read as "
                           + ", ".join(sorted(_FIGURE_TEXT.get(f, f) for f in figures)))  # fmt: skip
    return table


def stack_tables(run: Run, peaks: Peaks | None = None) -> list[Table]:
    """A table per layer-stack workload in the run (the CNNs, the transformer block), in the registry's order."""
    tables = []
    for workload in STACKS:
        results = [r for r in run.results if r.case.workload == workload.name]
        if results:
            fixed = [f"{k} {v}" for k, v in results[0].case.size.items()
                     if k != "batch" and len({r.case.size.get(k) for r in results}) == 1]  # fmt: skip
            sizes = f" ({', '.join(fixed)})" if fixed else ""
            title = f"{workload.name}{sizes}: {workload.description}"
            tables.append(sized_table(run, results, title, peaks))
    return tables


_FIGURE_TEXT = {
    **DEVICE_FIGURES,
    "rss_peak_bytes": "the worker process's peak resident memory (RSS) during the timed steps, "
    "framework import baseline included",
}


def seed_tables(run: Run, peaks: Peaks | None = None) -> list[Table]:
    """`peaks`: what the FLOP/s column's % of peak is held against; None: looked up in the run's store."""
    peaks = lookup(run) if peaks is None and run.results else peaks
    return [t for t in (lstm_table(run, peaks), vgg_table(run, peaks)) if t is not None] + stack_tables(run, peaks)


def legend(run: Run, peaks: Peaks | None = None) -> list[str]:
    lines = []
    note = run.settings.get("note")
    if note:
        lines.append(note)
    measure = run.settings.get("measure") or {}
    repeat = int(measure.get("repeat", 1))
    kept = max((len(r.stats.get("repetition_medians_s") or []) for r in run.results), default=0) or repeat
    if repeat > 1:
        lines.append(f"each figure: the geometric mean of {min(kept, repeat)} independent processes' medians (measured "
                     "in rounds across the run); its interval comes from the spread between them")  # fmt: skip
    if 1 < kept < repeat:
        lines.append(f"--repeat {repeat} asked; rounds beyond {kept} were left out: on this machine they would have "
                     f"ended the run past its budget of {float(measure.get('budget_s', 0)):g} s (`budget_s`)")
    if any("disturbed" in r.flags for r in run.results):
        share = float(measure.get("max_outside_share", 0.10))
        lines.append(f"[disturbed]: in every attempt, other processes used more than {share:.0%} of the case's CPUs "
                     "while it was timed; shown, never ranked (`dlbench show RUN --attempts` lists each attempt)")
    if any("few-iterations" in r.flags for r in run.results):
        lines.append(f"[n=K]: only K timed iterations (fewer than min_iters={measure.get('min_iters')}): "
                     "no spread can be trusted, never used for significance")
    if repeat > 1:
        lines.append("±N%: half the spread between the figure's processes (how much this machine varies from one "
                     "process to the next); figures closer than that are not told apart")  # fmt: skip
    if any(r.stats.get("warnings") and r.stats.get("between_rel_spread") is None
           and not {"disturbed", "few-iterations"} & set(r.flags) for r in run.results):  # fmt: skip
        lines.append("~ marks a figure whose spread was large (see `dlbench show RUN --format json` for the warnings)")
    lines += legend_lines(run, lookup(run) if peaks is None and run.results else peaks or Peaks())
    missing = len(run.missing)
    if missing:
        lines.append(f"{missing} planned case(s) have no result yet (status {run.status}): "
                     f"`dlbench run --resume {run.run_id}` measures them")  # fmt: skip
    return lines


def attempts_table(run: Run, attempts: list[dict[str, Any]]) -> Table:
    """One row per process that timed a case: what `dlbench show RUN --attempts` prints."""
    columns = ["case", "repetition", "attempt", "status", "n", "median ms", "others' share of its CPUs",
               "its share of its CPUs", "window", "why"]  # fmt: skip
    table = Table(f"Attempts of run {run.run_id}", columns)
    for doc in attempts:
        window, verdict, stats = doc.get("window") or {}, doc.get("disturbance") or {}, doc.get("stats") or {}

        def share(key: str, w: dict[str, Any] = window) -> str:
            value = w.get(key)
            return f"{value:.0%}" if isinstance(value, (int, float)) else "—"

        median = stats.get("median_s")
        table.rows.append([
            doc.get("case_key", ""), str(doc.get("repetition", 1)), str(doc.get("attempt", 1)), doc["status"],
            str(stats.get("n", "—")), f"{median * 1e3:.3g}" if isinstance(median, (int, float)) else "—",
            share("outside_share"), share("cpu_share"), verdict.get("verdict", "—"),
            "; ".join(verdict.get("reasons") or []) or ((doc.get("error") or "").splitlines() or [""])[0][:120],
        ])  # fmt: skip
        table.classes.append({8: {"clean": "good", "disturbed": "bad", "unwatched": "warn"}.get(
            verdict.get("verdict", ""), "neutral")})
    thresholds = (attempts[0].get("disturbance") or {}).get("thresholds") if attempts else None
    if thresholds:
        table.notes.append(f"disturbed: others used more than {thresholds['max_outside_share']:.0%} of the case's "
                           "CPUs during its timed window" + (f", or it got less than {thresholds['min_cpu_share']:.0%}"
                           if thresholds.get("min_cpu_share") else ""))  # fmt: skip
    return table
