"""Other published benchmarks beside today's figures: convnet-benchmarks' CNN table (GTX Titan X, Maxwell),
rnn-benchmarks' LSTM table (the same GPU) and DeepBench's cuDNN LSTM kernels (Titan X, Pascal).

Facts with their sources (dlbench/data/published/: each CSV's comment lines, sources.csv, README.md), never
measurements of this machine. A published row is set against a case (today ÷ then) only where the model, the size
and the precision are the same and the case ran on a GPU; even then the GPUs differ, and the notes say so. Where
nothing matches, the table says plainly why ("not comparable: cpu (…) vs GTX Titan X (Maxwell), input 8x3x64x64 vs
128x3x224x224"). Today's backward is derived: the train case's time less the forward case's.

This lives in `runs`, not `report`, because `dlbench run` and `dlbench show` print the CNN table (runs/render.py)
and `runs` may not import `report`; the report's section (report/published.py) is built from these tables.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

from dlbench.backends import BACKENDS
from dlbench.core.results import Result, Run
from dlbench.core.tables import Table
from dlbench.runs.tables import STATUS_TEXT, framework_label, row_identities

# convnet-benchmarks' model names → dlbench's workloads of the same layers (today's train differs: CNN_TODAY)
CNN_WORKLOADS = {"alexnet-owt": "alexnet", "overfeat-fast": "overfeat", "vgg-a": "vgga", "googlenet-v1": "googlenet"}
CNN_PARAMS = ("batch", "image")
LSTM_PARAMS = ("seq_len", "batch", "hidden")
RATIO = "today ÷ then, fwd / total"
CNN_TODAY = ("Today's total is one training step: mean(output)'s gradient w.r.t. every weight, none for the image "
             "(as convnet-benchmarks' Torch rows but GoogLeNet's, and its TensorFlow rows), no optimizer step, "
             "timed as one step; today's backward is derived: that step's time less the forward case's.")  # fmt: skip
LSTM_TODAY = ("Today: µs per sample = 10⁶ ÷ samples per second; forward + backward is one training step (gradients "
              "of a scalar loss w.r.t. every parameter), no optimizer step.")  # fmt: skip


@dataclass(frozen=True)
class Source:
    name: str  # convnet-benchmarks, rnn-benchmarks, DeepBench
    gpu: str
    citation: str
    timed: str  # what was timed, and how

    def note(self) -> str:
        return f"{self.name}: {self.citation}, one {self.gpu}. {self.timed}."


@dataclass(frozen=True)
class Published:
    """One published row, as seconds per batch: forward, and forward + backward (`train`)."""

    source: Source
    model: str  # as published: alexnet-owt, lstm
    workload: str  # dlbench's
    size: tuple[tuple[str, int], ...]
    library: str  # cuDNN R4 (Torch), Theano, cuDNN LSTM kernels
    precision: str
    forward_s: float
    train_s: float
    backward_s: float | None = None  # where the source gives its own (convnet-benchmarks)
    shape: str = ""  # the CNN input as published, NxCxHxW

    @property
    def size_dict(self) -> dict[str, int]:
        return dict(self.size)

    @property
    def lineage(self) -> str:
        """The framework a row's library belongs to: `cuDNN R4 (Torch)` → Torch, `TensorFlow` → TensorFlow."""
        return self.library[self.library.rfind("(") + 1 : -1] if self.library.endswith(")") else self.library


def _read(name: str) -> list[dict[str, str]]:
    text = resources.files("dlbench").joinpath("data").joinpath("published").joinpath(name).read_text("utf-8")
    return list(csv.DictReader(line for line in text.splitlines() if not line.startswith("#")))


def _row(source: Source, defaults: dict[str, str], row: dict[str, str]) -> Published:
    if "model" in row:  # convnet-benchmarks: ms per batch
        n, _, h, _ = (int(v) for v in row["input"].split("x"))
        return Published(source, row["model"], CNN_WORKLOADS[row["model"]], (("batch", n), ("image", h)),
                         row["library"], row["precision"], float(row["forward_ms"]) / 1e3,
                         float(row["total_ms"]) / 1e3, float(row["backward_ms"]) / 1e3, row["input"])  # fmt: skip
    fixed = dict(item.split("=") for item in defaults["size"].split(";") if item)
    size = {p: int(row.get(p) or fixed[p]) for p in LSTM_PARAMS}
    batch = size["batch"]
    if "train_us_per_sample" in row:  # rnn-benchmarks: µs per sample
        forward, train = (float(row[c]) * batch / 1e6 for c in ("forward_us_per_sample", "train_us_per_sample"))
    else:  # DeepBench: samples per second
        forward, train = (batch / float(row[c]) for c in ("forward_samples_per_s", "total_samples_per_s"))
    return Published(source, "lstm", "lstm", tuple(size.items()), row.get("framework") or defaults["library"],
                     row.get("precision") or defaults["precision"], forward, train)  # fmt: skip


@functools.cache
def published() -> tuple[Published, ...]:
    """Every published row, in the files' order (sources.csv names the files)."""
    rows: list[Published] = []
    for spec in _read("sources.csv"):
        source = Source(spec["source"], spec["gpu"], spec["citation"], spec["timed"])
        rows += [_row(source, spec, row) for row in _read(spec["file"])]
    return tuple(rows)


def seconds(result: Result | None) -> float | None:
    """Seconds per batch of a measured result (batch ÷ its samples per second, the figure every table shows)."""
    if result is None or result.status != "ok" or not result.samples_per_s:
        return None
    return result.case.batch / result.samples_per_s


def device_text(run: Run, device: str) -> str:
    if device == "cuda":
        names = [str(g["name"]) for g in run.fingerprint.get("gpus") or [] if g.get("name")]
        return ", ".join(dict.fromkeys(names)) or "a CUDA GPU"
    model = (run.fingerprint.get("cpu") or {}).get("model")
    return f"{device} ({model})" if model else device


def reference(rows: list[Published], backend: str) -> Published:
    """The published row set against a backend's: the one of the framework it continues (the registry's seed_row),
    else the fastest."""
    info = BACKENDS.get(backend)
    heirs = [p for p in rows if info is not None and info.seed_row and p.lineage == info.seed_row]
    return heirs[0] if heirs else min(rows, key=lambda p: p.train_s)


def _figure(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _micro(value: float) -> str:
    """µs per sample to a tenth, as rnn-benchmarks gives them."""
    return f"{value:.1f}" if value >= 10 else f"{value:.3g}"


def _cell(result: Result | None, scale: float, figure: Callable[[float], str]) -> str:
    if result is None:
        return "—"
    value = seconds(result)
    if value is None:
        return STATUS_TEXT.get(result.status, result.status)
    return figure(value * scale) + (" [disturbed]" if "disturbed" in result.flags else "")


def _clean(result: Result | None) -> float | None:
    """Seconds per batch where the figure may be compared (measured, not disturbed)."""
    return seconds(result) if result is not None and result.rankable else None


class _Comparison:
    """Today's rows against the published ones: the ratio cell, or a numbered reason why there is none."""

    def __init__(self, run: Run, describe: Callable[[dict[str, int], Published | None], str], what: str = "") -> None:
        self.run, self.describe, self.what = run, describe, what
        self.reasons: list[str] = []
        self.gpus: set[str] = set()  # today's GPUs where a ratio was shown

    def cell(self, label: str, by_mode: dict[str, Result], rows: list[Published]) -> str:
        case = next(iter(by_mode.values())).case
        size = {k: case.size.get(k, 0) for k in rows[0].size_dict} if rows else dict(case.size)
        same = [p for p in rows if p.size_dict == size]
        matches = [p for p in same if p.precision == case.precision]
        if case.device == "cuda" and matches:
            ref = reference(matches, case.backend)
            forward, train = _clean(by_mode.get("forward")), _clean(by_mode.get("train"))
            if forward is None and train is None:
                return "— (no clean figure)"
            self.gpus.add(device_text(self.run, case.device))
            parts = [f"×{then / now:.2f}" if now else "—" for then, now in
                     ((ref.forward_s, forward), (ref.train_s, train))]  # fmt: skip
            return " / ".join(parts) + f" vs {ref.library}"
        parts = []
        if case.device != "cuda":
            gpus = " / ".join(dict.fromkeys(p.source.gpu for p in rows))
            parts.append(f"{device_text(self.run, case.device)} vs {gpus}")
        if not same:
            theirs = " / ".join(dict.fromkeys(self.describe(p.size_dict, p) for p in rows))
            parts.append(f"{self.what}{self.describe(size, None)} vs {theirs}")
        elif not matches:
            parts.append(f"{case.precision} vs {'/'.join(dict.fromkeys(p.precision for p in same))}")
        reason = f"{label}: not comparable: " + ", ".join(parts)
        if reason not in self.reasons:
            self.reasons.append(reason)
        return f"not comparable [{self.reasons.index(reason) + 1}]"

    def notes(self, then: str) -> list[str]:
        lines = [f"[{i}] {reason}" for i, reason in enumerate(self.reasons, 1)]
        if self.gpus:
            lines.insert(0, f"today ÷ then: the published time ÷ today's (> 1: faster today), against the published "
                         "row of the framework today's backend continues, else the fastest; only where the size and "
                         f"precision match on a GPU. Even then the GPUs differ ({', '.join(sorted(self.gpus))} vs "
                         f"{then}): the ratio is hardware and software together.")  # fmt: skip
        return lines


def _groups(results: list[Result], params: tuple[str, ...]) -> list[dict[str, Result]]:
    """Today's rows: results grouped by size, backend (and version), precision and device; modes side by side."""
    identity = row_identities(results)
    order = list(dict.fromkeys(identity[id(r)] for r in results))
    groups: dict[tuple[object, ...], dict[str, Result]] = {}
    for r in results:
        key = (*(r.case.size.get(p, 0) for p in params), order.index(identity[id(r)]), r.case.precision,
               r.case.device)  # fmt: skip
        groups.setdefault(key, {})[r.case.mode] = r
    return [groups[key] for key in sorted(groups)]


def _today_row(run: Run, label: str, by_mode: dict[str, Result], scale: float, derived: bool) -> list[str]:
    """Today's row: forward, (derived backward,) forward + backward; ms per batch (CNN) or µs per sample (LSTM)."""
    forward, train = by_mode.get("forward"), by_mode.get("train")
    any_result = next(iter(by_mode.values()))
    figure = _figure if derived else _micro
    row = [label, framework_label(any_result), device_text(run, any_result.case.device), any_result.case.precision,
           _cell(forward, scale, figure)]  # fmt: skip
    if derived:
        f, t = seconds(forward), seconds(train)
        row.append("—" if f is None or t is None else "< 0" if t < f else _figure((t - f) * scale))
    row.append(_cell(train, scale, figure))
    return row


def _cases(by_mode: dict[str, Result], columns: dict[str, int]) -> dict[int, str]:
    return {columns[m]: r.case.key for m, r in by_mode.items() if m in columns}


def _shape(size: dict[str, int], channels: str = "3") -> str:
    return f"{size.get('batch')}x{channels}x{size.get('image')}x{size.get('image')}"


def convnet_table(run: Run) -> Table | None:
    """convnet-benchmarks' layout, ms per batch: today's rows per model, then the published rows for that model."""
    rows = [p for p in published() if p.workload in CNN_WORKLOADS.values()]
    models = list(dict.fromkeys(p.workload for p in rows))
    results = [r for r in run.results if r.case.workload in models]
    if not results:
        return None
    columns = ["model (input NxCxHxW)", "framework", "device", "precision", "fwd ms", "bwd ms", "total ms", RATIO]
    table = Table("Beside convnet-benchmarks (2016): ms per batch (total = forward + backward), its layout", columns)
    channels = rows[0].shape.split("x")[1]  # every published input is an RGB image
    compare = _Comparison(run, lambda size, p: p.shape if p else _shape(size, channels), "input ")
    for model in [m for m in models if any(r.case.workload == m for r in results)]:
        theirs = [p for p in rows if p.workload == model]
        for by_mode in _groups([r for r in results if r.case.workload == model], CNN_PARAMS):
            label = f"{model} ({_shape(next(iter(by_mode.values())).case.size, channels)})"
            table.rows.append([*_today_row(run, label, by_mode, 1e3, True), compare.cell(model, by_mode, theirs)])
            table.cases.append(_cases(by_mode, {"forward": 4, "train": 6}))
        for p in theirs:
            table.rows.append([f"{p.model} ({p.shape})", f"{p.library}, 2016", p.source.gpu, p.precision,
                               _figure(p.forward_s * 1e3), _figure((p.backward_s or 0) * 1e3),
                               _figure(p.train_s * 1e3), "(published)"])  # fmt: skip
            table.cases.append({})
    table.notes = [CNN_TODAY, rows[0].source.note(), *compare.notes(rows[0].source.gpu)]
    return table


def _lstm_size(size: dict[str, int]) -> str:
    return ", ".join(f"{p}={size[p]}" for p in LSTM_PARAMS if p in size)


def lstm_table(run: Run) -> Table | None:
    """rnn-benchmarks' and DeepBench's rows beside today's LSTM cases of the same batch and hidden size."""
    rows = [p for p in published() if p.workload == "lstm"]
    shared = {(p.size_dict["batch"], p.size_dict["hidden"]) for p in rows}
    results = [r for r in run.results if r.case.workload == "lstm"
               and (r.case.size.get("batch"), r.case.size.get("hidden")) in shared]  # fmt: skip
    if not results:
        return None
    columns = ["size", "framework", "device", "precision", "fwd µs / sample", "total µs / sample", RATIO]
    table = Table(
        "LSTM beside rnn-benchmarks (2016) and DeepBench: µs per sample (total = forward + backward)", columns
    )
    # batch and hidden are the same in every row set beside a case: a mismatch is the sequence length's
    compare = _Comparison(run, lambda size, p: f"{size['seq_len']}" + (f" ({p.source.name})" if p else ""), "seq_len ")
    for batch, hidden in sorted({(r.case.size["batch"], r.case.size["hidden"]) for r in results}):
        theirs = [p for p in rows if (p.size_dict["batch"], p.size_dict["hidden"]) == (batch, hidden)]
        mine = [r for r in results if (r.case.size["batch"], r.case.size["hidden"]) == (batch, hidden)]
        for by_mode in _groups(mine, LSTM_PARAMS):
            case = next(iter(by_mode.values())).case
            label = _lstm_size(case.size)
            table.rows.append([*_today_row(run, label, by_mode, 1e6 / case.batch, False),
                               compare.cell(label, by_mode, theirs)])  # fmt: skip
            table.cases.append(_cases(by_mode, {"forward": 4, "train": 5}))
        for p in theirs:
            table.rows.append(
                [
                    _lstm_size(p.size_dict),
                    f"{p.library} ({p.source.name})",
                    p.source.gpu,
                    p.precision,
                    _micro(p.forward_s / batch * 1e6),
                    _micro(p.train_s / batch * 1e6),
                    "(published)",
                ]
            )
            table.cases.append({})
    sources = list(dict.fromkeys(p.source for p in rows))
    table.notes = [LSTM_TODAY, *(s.note() for s in sources),
                   *compare.notes(" / ".join(s.gpu for s in sources))]  # fmt: skip
    return table


def lstm_grid_text() -> str:
    """The published LSTM sizes, for saying why a run's cases have no published row beside them."""
    parts = []
    for source in dict.fromkeys(p.source for p in published() if p.workload == "lstm"):
        sizes = [p.size_dict for p in published() if p.source == source]
        parts.append(
            f"{source.name}: "
            + ", ".join(
                f"{param} ∈ {{{', '.join(map(str, sorted({s[param] for s in sizes})))}}}" for param in LSTM_PARAMS
            )
        )
    return "; ".join(parts)


def published_tables(run: Run) -> list[Table]:
    """What `dlbench run` and `dlbench show` print after the seed's tables (the CNN table, when the run has CNNs)."""
    return [t for t in (convnet_table(run),) if t is not None]
