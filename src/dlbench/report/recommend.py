"""The recommendation: per regime (workload × mode × size band × precision × device) the fastest backend, how much
faster than the next, and whether that lead is more than noise; then a summary that counts wins.

- Size bands: a workload's sizes in the run, sorted by the work of one step (forward FLOPs × batch), split
  into up to three bands of equal count (small, medium, large). A band's figure for a backend is the geometric
  mean of its samples/s over the band's sizes, so every size counts alike.
- A backend is ranked in a regime only if it has a measurement at every size of the band. One that failed
  (out of memory, an error such as failed verification, a timeout, unsupported) or was not measured there is
  named with the reason, never dropped silently.
- A disturbed figure (no clean window in any attempt: runner/attempts.py) is never ranked: the backend is named
  with that reason, like a failure.
- The lead is significant when the whole 95% interval of the leader ÷ runner-up ratio lies above 1 + the noise
  floor (statistics.throughput_ratio: Welch's interval from the spread between independent processes, so only
  with --repeat 2 or more, every figure from min_iters timed iterations or more; statistics.NOISE_FLOOR).
- The summary counts significant wins, weighted as the user says (`--weights lstm=2,train=2`); it claims a
  winner overall only when one backend holds most of the weight, and always says what the data covers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from dlbench.backends import BACKENDS
from dlbench.core.cases import DEVICES, MODES, split_spec
from dlbench.core.errors import UsageError
from dlbench.core.precisions import PRECISIONS
from dlbench.core.results import Result, Run
from dlbench.report.statistics import Ratio, Timed, throughput_ratio
from dlbench.runs.tables import STATUS_TEXT, row_identities
from dlbench.workloads import WORKLOADS

BAND_NAMES = {1: ["all"], 2: ["small", "large"], 3: ["small", "medium", "large"]}
MODE_TEXT = {"forward": "forward", "train": "forward + backward"}
Reason = tuple[str, str, str]  # why a backend is not ranked: (what happened, its detail, at which size)


def label(backend: str) -> str:
    """The framework's name for a row key of `who`: `torch`, `torch@old` or `torch 2.5.1` (two versions pooled)."""
    spec, _, version = backend.partition(" ")
    name, tag = split_spec(spec)
    info = BACKENDS.get(name)
    return (f"{info.label} {version}".strip() + (f" [{tag}]" if tag else "")) if info else backend


def who(results: list[Result]) -> Callable[[Result], str]:
    """Which backend a result counts for: its spec (`torch@old`: an env of its own), and its version too where the
    results hold that spec at several versions (pooled runs), so that versions are ranked apart, never mixed."""
    identity = row_identities(results)
    versions: dict[str, set[str]] = {}
    for spec, version in identity.values():
        versions.setdefault(spec, set()).add(version)

    def key(result: Result) -> str:
        spec, version = identity[id(result)]
        return f"{spec} {version}" if len(versions[spec]) > 1 and version else spec

    return key


def _work(result: Result) -> float:
    workload = WORKLOADS.get(result.case.workload)
    per_sample = workload.flops_per_sample(result.case.size, "forward") if workload else 1.0
    return per_sample * result.case.batch


def _size_text(size: dict[str, int]) -> str:
    return ",".join(f"{k}={v}" for k, v in size.items())


@dataclass
class Regime:
    workload: str
    mode: str
    band: str
    precision: str
    device: str
    sizes: list[dict[str, int]]
    ranking: list[tuple[str, float]] = field(default_factory=list)  # (backend, geometric-mean samples/s)
    lead: Ratio | None = None  # leader ÷ runner-up
    excluded: dict[str, list[Reason]] = field(default_factory=dict)  # backend → why it is not ranked
    weight: float = 1.0

    @property
    def name(self) -> str:
        sizes = "; ".join(_size_text(s) for s in self.sizes)
        return f"{self.workload} {MODE_TEXT.get(self.mode, self.mode)} {self.precision} {self.device}, " \
            f"{self.band} ({sizes})"

    @property
    def winner(self) -> str | None:
        return self.ranking[0][0] if self.ranking else None

    @property
    def contested(self) -> bool:
        return len(self.ranking) >= 2

    @property
    def significant(self) -> bool:
        return self.lead is not None and self.lead.significant and self.lead.value > 1

    def verdict(self) -> str:
        if not self.ranking:
            return "no backend has a measurement at every size"
        first = label(self.ranking[0][0])
        if not self.contested:
            return f"{first} (uncontested: the only backend measured at every size)"
        second = label(self.ranking[1][0])
        assert self.lead is not None
        if not self.lead.testable:
            return f"{first} ahead of {second} by ×{self.lead.value:.2f}, not tested ({self.lead.reason})"
        interval = f"95% CI {self.lead.low:.2f}–{self.lead.high:.2f}"
        if self.significant:
            return f"{first}, ×{self.lead.value:.2f} the speed of {second} ({interval})"
        return f"{first} ahead of {second} by ×{self.lead.value:.2f}, not significant ({interval})"


def parse_weights(text: str | None) -> dict[str, float]:
    """`lstm=2,vgg16=1,train=2` → weights by workload, mode, precision, device or size band."""
    allowed = {*WORKLOADS, *MODES, *PRECISIONS, *DEVICES, *(b for names in BAND_NAMES.values() for b in names)}
    weights: dict[str, float] = {}
    if text is not None and not text.strip():
        raise UsageError("bad --weights '': give KEY=NUMBER items, e.g. --weights lstm=2,vgg16=1")
    for item in (text or "").split(","):
        if not item.strip():
            continue
        key, eq, value = (part.strip() for part in item.partition("="))
        if not eq or key not in allowed:
            raise UsageError(f"bad --weights item {item.strip()!r}: expected KEY=NUMBER with KEY one of "
                             f"{', '.join(sorted(allowed))}")  # fmt: skip
        try:
            weights[key] = float(value)
        except ValueError:
            raise UsageError(f"bad --weights item {item.strip()!r}: {value!r} is not a number") from None
        if not math.isfinite(weights[key]) or weights[key] < 0:
            raise UsageError(f"bad --weights item {item.strip()!r}: a weight must be a number ≥ 0")
    for kind in (WORKLOADS, MODES, PRECISIONS, DEVICES):  # a weight multiplies the default 1 of its kind's others
        if all(weights.get(name, 1) == 0 for name in kind):
            raise UsageError(f"bad --weights {text!r}: every one of {', '.join(kind)} weighs 0, so nothing would "
                             "count; give one > 0")  # fmt: skip
    return weights


def _bands(results: list[Result]) -> dict[str, list[dict[str, int]]]:
    by_size: dict[tuple[tuple[str, int], ...], float] = {}
    for r in results:
        by_size[tuple(r.case.size.items())] = _work(r)
    ordered = sorted(by_size, key=lambda s: (by_size[s], s))
    groups = [list(g) for g in np.array_split(np.arange(len(ordered)), min(3, len(ordered))) if len(g)]
    names = BAND_NAMES[len(groups)]
    return {names[i]: [dict(ordered[j]) for j in g] for i, g in enumerate(groups)}


def _reason(result: Result) -> Reason:
    if result.status == "ok" and "disturbed" in result.flags:  # shown in the tables, never ranked
        return "disturbed", "no clean window in any attempt", _size_text(result.case.size)
    status = STATUS_TEXT.get(result.status, result.status) if result.status != "ok" else "no timed iterations"
    error = (result.error or "").strip().splitlines()
    detail = error[0][:160] if error and result.status != "oom" else ""
    return status, detail, _size_text(result.case.size)


def reasons_text(reasons: list[Reason], sizes: int) -> str:
    """`out of memory at batch=8,image=32; unsupported at 4 of 4 sizes (X is not installed)`."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for status, detail, size in reasons:
        grouped.setdefault((status, detail), []).append(size)
    parts = []
    for (status, detail), at in grouped.items():
        where = at[0] if len(at) == 1 else f"{len(at)} of {sizes} sizes"
        parts.append(f"{status} at {where}" + (f" ({detail})" if detail else ""))
    return "; ".join(parts)


def regimes(run: Run, weights: dict[str, float] | None = None) -> list[Regime]:
    weights = weights or {}
    out: list[Regime] = []
    groups: dict[tuple[str, str, str, str], list[Result]] = {}
    for r in run.results:
        groups.setdefault((r.case.workload, r.case.mode, r.case.precision, r.case.device), []).append(r)
    backend_of = who(run.results)
    for (workload, mode, precision, device), results in groups.items():
        bands = _bands([r for r in run.results if r.case.workload == workload and r.case.device == device])
        for band, sizes in bands.items():
            in_band = [r for r in results if r.case.size in sizes]
            if not in_band:
                continue
            regime = Regime(workload, mode, band, precision, device, [s for s in sizes
                                                                      if any(r.case.size == s for r in in_band)])
            regime.weight = math.prod(weights.get(k, 1.0) for k in (workload, mode, precision, device, band))
            cases: dict[str, list[Timed]] = {}
            for backend in dict.fromkeys(backend_of(r) for r in in_band):
                mine = {tuple(r.case.size.items()): r for r in in_band if backend_of(r) == backend}
                reasons = [_reason(r) for r in mine.values() if not r.rankable]
                reasons += [("not measured", "", _size_text(s)) for s in regime.sizes if tuple(s.items()) not in mine]
                if reasons:
                    regime.excluded[backend] = reasons
                    continue
                cases[backend] = [Timed.of(mine[tuple(s.items())]) for s in regime.sizes]
            regime.ranking = sorted(((b, math.exp(float(np.mean([t.log_throughput() for t in ts]))))
                                     for b, ts in cases.items()), key=lambda bv: -bv[1])  # fmt: skip
            if regime.contested:
                regime.lead = throughput_ratio(cases[regime.ranking[0][0]], cases[regime.ranking[1][0]])
            out.append(regime)
    order = {name: i for i, name in enumerate(["all", "small", "medium", "large"])}
    return sorted(out, key=lambda g: (g.workload, g.device, g.precision, g.mode, order.get(g.band, 9)))


@dataclass
class Summary:
    lines: list[str]
    wins: dict[str, float]  # backend → weight of the regimes it won significantly
    total_weight: float


def summarize(run: Run, found: list[Regime], weights: dict[str, float] | None = None) -> Summary:
    contested = [g for g in found if g.contested and g.weight > 0]
    total = sum(g.weight for g in contested)
    wins: dict[str, float] = {}
    counts: dict[str, int] = {}
    for g in contested:
        if g.significant and g.winner:
            wins[g.winner] = wins.get(g.winner, 0.0) + g.weight
            counts[g.winner] = counts.get(g.winner, 0) + 1
    lines: list[str] = []
    if not run.results:
        return Summary([f"Run {run.run_id} has no results (yet): there is nothing to recommend."], wins, total)
    if weights:
        lines.append("Weights: " + ", ".join(f"{k}={v:g}" for k, v in weights.items())
                     + " (a regime's weight is the product of those that apply; others count 1).")  # fmt: skip
    if not contested:
        lines.append("No regime had two backends measured at every size: there is nothing to rank.")
    else:
        undecided = [g for g in contested if not g.significant]
        for backend, weight in sorted(wins.items(), key=lambda kv: -kv[1]):
            lines.append(f"{label(backend)}: significantly fastest in {counts[backend]} of {len(contested)} "
                         f"contested regimes ({weight / total:.0%} of their weight).")  # fmt: skip
        if undecided:
            lines.append(f"{len(undecided)} of {len(contested)} contested regimes have no significant winner.")
        best = max(wins.items(), key=lambda kv: kv[1], default=None)
        if best and best[1] > total / 2:
            lines.append(f"Overall: {label(best[0])} is the fastest choice in most of what was measured "
                         f"({best[1] / total:.0%} of the weight); the table says where it is not.")  # fmt: skip
        else:
            lines.append("Overall: no backend is significantly fastest in most of what was measured; "
                         "choose by regime (the table).")
    uncontested = [g for g in found if not g.contested]
    if uncontested:
        lines.append(f"{len(uncontested)} regime(s) had fewer than two backends measured at every size "
                     "and are not counted.")
    failing: dict[str, list[Reason]] = {}
    for g in found:
        for backend, reasons in g.excluded.items():
            failing.setdefault(backend, []).extend(reasons)
    for backend, reasons in failing.items():
        kinds = ", ".join(dict.fromkeys(r[0] for r in reasons))
        lines.append(f"Not ranked where it did not complete: {label(backend)} ({len(reasons)} regime-size(s): "
                     f"{kinds}; the table says where and why).")  # fmt: skip
    devices = sorted({r.case.device for r in run.results})
    cpu = (run.fingerprint.get("cpu") or {}).get("model", "?")
    gpus = sorted({str(g.get("name")) for g in run.fingerprint.get("gpus") or []})
    machine = f"{cpu}" + (f" with {', '.join(gpus)}" if gpus and "cuda" in devices else "")
    lines.append(f"Scope: these runs only ({', '.join(devices)} on {machine}; the sizes, precisions and backends "
                 "above). It says nothing of other hardware, sizes or backends.")  # fmt: skip
    note = run.settings.get("note")
    if note:
        lines.append(str(note))
    return Summary(lines, wins, total)
