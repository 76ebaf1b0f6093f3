"""What a peak is, which results it applies to, and a result's achieved FLOP/s as a share of it. Pure: no store, no
framework (lookup.py finds the peak runs in a store; the run tables and the report call both).

- A peak run (suite `peak`, findings kind `peak`) holds one finding per framework × quantity × precision:
  `matmul` (FLOP/s of an n×n matrix product, the best over the sizes tried of each size's median) and `copy`
  (bytes read + written per second copying one large array). The machine's peak for a precision is the highest
  figure any framework reached (`best`), and the framework that reached it is named with it.
- A peak applies to a result when both ran on the same `Machine`: the same device kind; on the CPU the same CPU
  model, architecture, logical core count and number of CPUs given (a run pinned to one CPU is held against a peak
  measured on one CPU, not against the whole chip's); on a GPU the same GPU names. Host names and versions are
  not compared: identical machines share a peak, and the newest peak of a machine wins.
- % of peak = achieved FLOP/s ÷ the peak of the result's precision (amp-fp16 and amp-bf16 against their low type,
  tf32 against tf32), × 100. A precision without a measured peak shows no percentage: never an estimate.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dlbench.core.results import Result, Run

KIND = "peak"  # the suite of a peak run, and the kind of its findings
QUANTITIES = ("matmul", "copy")
PRECISIONS: dict[str, tuple[str, ...]] = {"cpu": ("fp32", "fp16", "bf16"), "cuda": ("fp32", "tf32", "fp16", "bf16")}
# A result's precision -> the peak it is held against: mixed precision computes its products in the low type.
AGAINST = {"fp32": "fp32", "tf32": "tf32", "fp16": "fp16", "bf16": "bf16", "amp-fp16": "fp16", "amp-bf16": "bf16"}

FLOP_CONVENTION = (
    "FLOPs are the workload's own count: 2 per multiply-add, a convolution counted as the direct convolution "
    "(Winograd and FFT kernels do fewer operations, so a figure may pass 100% of peak, as 2016's VGG-16 figures on "
    "a Pascal Titan X did), attention's products in full; a training step as 3× its forward pass for the LSTM "
    "and VGG-16, and as the gradient products it computes (no image gradient) for the CNNs and the transformer block"
)
NO_PEAK = "no peak (run dlbench peak)"


@dataclass(frozen=True)
class Machine:
    """What decides a peak, compared between a result and a peak run (see the module docstring)."""

    device: str
    cpu_model: str = ""
    arch: str = ""
    logical_cores: int | None = None
    cpus: int | None = None  # CPUs given (on the CPU only)
    gpus: tuple[str, ...] = ()  # GPU names (on a GPU only)

    def describe(self) -> str:
        if self.device == "cpu":
            return f"{self.cpu_model or '?'} ({self.arch}), {self.cpus} of {self.logical_cores} CPUs"
        return f"{self.device}: {', '.join(self.gpus) or '?'}"


def machine(fingerprint: Mapping[str, Any], device: str, cpus: int | None) -> Machine:
    """The Machine of a fingerprint, for work on `device` with `cpus` CPUs given (None: the fingerprint's allowed)."""
    if device != "cpu":
        return Machine(device, gpus=tuple(str(g.get("name", "")) for g in fingerprint.get("gpus") or []))
    cpu = fingerprint.get("cpu") or {}
    given = cpus or cpu.get("allowed_cpus") or cpu.get("logical_cores")
    return Machine("cpu", str(cpu.get("model", "")), str(cpu.get("arch", "")), cpu.get("logical_cores"),
                   int(given) if given else None)  # fmt: skip


def result_machine(run: Run, result: Result) -> Machine:
    """The Machine a result ran on: its run's fingerprint, its device, and the CPUs its worker was pinned to (the
    worker records them; else the run's --cpus; else every CPU the run could use)."""
    doc = result.document
    cpus = doc.get("cpus") or (doc.get("window") or {}).get("cpus") or run.settings.get("cpus")
    return machine(run.fingerprint, result.case.device, len(cpus) if isinstance(cpus, list) and cpus else None)


@dataclass(frozen=True)
class Peak:
    """One peak run's figures: precision -> (FLOP/s, framework), and the copy bandwidth (bytes/s, framework)."""

    run_id: str
    machine: Machine
    flops: dict[str, tuple[float, str]]
    bandwidth: tuple[float, str] | None = None
    created_at: float = 0.0
    disturbed: frozenset[str] = frozenset()  # precisions whose figure was timed while others used the machine

    def summary(self) -> str:
        """`fp32 41.2 GFLOP/s (torch), bf16 … [disturbed], copy 11.3 GB/s (torch)`."""
        parts = [f"{p} {rate(v, 'FLOP/s')} ({fw})" + (" [disturbed: too low]" if p in self.disturbed else "")
                 for p, (v, fw) in self.flops.items()]  # fmt: skip
        if self.bandwidth:
            parts.append(f"copy {rate(self.bandwidth[0], 'B/s')} ({self.bandwidth[1]})")
        return ", ".join(parts) or "nothing measured"


def best(findings: Iterable[Mapping[str, Any]]) -> tuple[dict[str, tuple[float, str]], tuple[float, str] | None]:
    """The highest matmul FLOP/s per precision and the highest copy bandwidth over every framework's findings,
    each with the framework that reached it. Failed or unsupported findings count for nothing."""
    flops: dict[str, tuple[float, str]] = {}
    bandwidth: tuple[float, str] | None = None
    for doc in findings:
        if doc.get("status") != "ok":
            continue
        framework = str(doc.get("framework", "?"))
        if doc.get("quantity") == "matmul":
            value, precision = _positive(doc.get("flops_per_s")), str(doc.get("precision"))
            if value and (precision not in flops or value > flops[precision][0]):
                flops[precision] = (value, framework)
        elif doc.get("quantity") == "copy":
            value = _positive(doc.get("bytes_per_s"))
            if value and (bandwidth is None or value > bandwidth[0]):
                bandwidth = (value, framework)
    order = [p for ps in PRECISIONS.values() for p in ps]
    return dict(sorted(flops.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else 99)), bandwidth


def disturbed(findings: Iterable[Mapping[str, Any]], flops: Mapping[str, tuple[float, str]]) -> frozenset[str]:
    """The precisions whose peak (the figure `best` chose) was timed in a disturbed window."""
    return frozenset(
        str(doc.get("precision"))
        for doc in findings
        if doc.get("quantity") == "matmul"
        and (doc.get("disturbance") or {}).get("verdict") == "disturbed"
        and flops.get(str(doc.get("precision"))) == (doc.get("flops_per_s"), doc.get("framework"))
    )


def _positive(value: Any) -> float | None:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return float(value) if number and math.isfinite(value) and value > 0 else None


def achieved(result: Result) -> float | None:
    """The result's achieved FLOP/s as the runner stored it (workload FLOPs per sample × samples/s); None if not ok."""
    return _positive(result.document.get("achieved_flops_per_s")) if result.status == "ok" else None


def percent(result: Result, peak: Peak | None) -> float | None:
    """Achieved FLOP/s as a percentage of the peak for the result's precision; None without both figures."""
    value = achieved(result)
    against = peak.flops.get(AGAINST.get(result.case.precision, "")) if peak is not None else None
    return 100.0 * value / against[0] if value is not None and against is not None else None


@dataclass
class Peaks:
    """The peaks that apply to one run's results, by Machine (lookup.py fills it); `problem`: why none could be
    looked up (an unreadable store), said in the legend."""

    found: dict[Machine, Peak] = field(default_factory=dict)
    problem: str = ""

    def of(self, run: Run, result: Result) -> Peak | None:
        return self.found.get(result_machine(run, result))


def rate(value: float, unit: str) -> str:
    """`41.2 GFLOP/s`, `1.31 TFLOP/s`, `11.3 GB/s` (decimal prefixes)."""
    for prefix, scale in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def flops_unit(results: Iterable[Result]) -> tuple[str, float]:
    """The unit a table's FLOP/s column uses: TFLOP/s once any figure reaches 1e12, else GFLOP/s."""
    top = max((v for r in results if (v := achieved(r)) is not None), default=0.0)
    return ("TFLOP/s", 1e12) if top >= 1e12 else ("GFLOP/s", 1e9)


def cell(run: Run, results: Iterable[Result | None], peaks: Peaks, scale: float) -> str:
    """One table cell: each result's achieved FLOP/s in the table's unit and its % of peak where there is one,
    `12.3 (41%) / 30.1 (52%)`; `—` for a result that has no figure."""
    parts = []
    for result in results:
        value = achieved(result) if result is not None else None
        if result is None or value is None:
            parts.append("—")
            continue
        share = percent(result, peaks.of(run, result))
        number = value / scale
        text = f"{number:,.0f}" if number >= 100 else f"{number:.3g}"
        parts.append(text + (f" ({share:.0f}%)" if share is not None and share >= 10 else
                             f" ({share:.2g}%)" if share is not None else ""))  # fmt: skip
    return " / ".join(parts)


def legend_lines(run: Run, peaks: Peaks) -> list[str]:
    """What the FLOP/s column means, which peak run it is held against, and what has no peak: once per table set."""
    measured = [r for r in run.results if achieved(r) is not None]
    if not measured:
        return []
    lines = [f"FLOP/s (% of peak): achieved FLOP/s = FLOPs per sample × samples/s; {FLOP_CONVENTION}."]
    used: dict[str, Peak] = {}
    missing_machines: set[Machine] = set()
    missing_precisions: dict[str, set[str]] = {}
    for r in measured:
        peak = peaks.of(run, r)
        if peak is None:
            missing_machines.add(result_machine(run, r))
        elif AGAINST.get(r.case.precision) not in peak.flops:
            missing_precisions.setdefault(peak.run_id, set()).add(r.case.precision)
        else:
            used[peak.run_id] = peak
    for peak in used.values():
        lines.append(f"% of peak: of the matrix-multiply FLOP/s `dlbench peak` measured for the result's precision "
                     f"(amp-* against its low type) on {peak.machine.describe()}, run {peak.run_id}: "
                     f"{peak.summary()}")  # fmt: skip
    for run_id, precisions in missing_precisions.items():
        lines.append(f"% of peak: peak run {run_id} has no figure for {', '.join(sorted(precisions))}: those rows "
                     "show FLOP/s only")  # fmt: skip
    if missing_machines:
        where = "; ".join(sorted(m.describe() for m in missing_machines))
        why = f"; {peaks.problem}" if peaks.problem else ""
        lines.append(f"% of peak: {NO_PEAK}: none stored for {where} (a peak counts for the same CPU model and "
                     f"number of CPUs given, or the same GPU){why}")  # fmt: skip
    return lines


__all__ = ["AGAINST", "FLOP_CONVENTION", "KIND", "NO_PEAK", "PRECISIONS", "QUANTITIES", "Machine", "Peak", "Peaks",
           "achieved", "best", "cell", "disturbed", "flops_unit", "legend_lines", "machine", "percent", "rate",
           "result_machine"]  # fmt: skip
