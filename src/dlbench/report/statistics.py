"""Statistics for comparing measurements: the ratio of two throughputs (B ÷ A of one case; leader ÷ runner-up over
the sizes of a regime) with a 95% interval, and whether it is more than noise.

The unit of evidence is an independent process, not an iteration (pyperf's model). Iterations inside one timed
window resemble each other: a neighbour that spans the window, the process's memory layout, its threads'
placement move all of them together, so an interval built from them is far too narrow (measured: two runs of the
same code differed by up to 27% while those intervals claimed ±1%). So a ratio is tested only when every figure
in it comes from two or more processes (`--repeat`), none of them disturbed and each with at least min_iters
timed iterations (core.results.Result.untestable_reason); the interval is Welch's t interval on the logarithm of
the throughputs, from the spread between each figure's processes. From one process a ratio may still rank, but
is never called significant. NumPy only (no SciPy in the parent process).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from dlbench.core.results import Result
from dlbench.measure.stats import t95

# Repetitions inside one run are interleaved; two runs are not, and what changes between them (the machine's
# state, a neighbour that came and went) moves every process of one run alike. A difference therefore counts only
# when its whole 95% interval also lies beyond ±NOISE_FLOOR (criterion.rs's noise_threshold, the same rule).
NOISE_FLOOR = 0.02
MIN_SAMPLES = 3  # a repetition with fewer timed iterations than this makes no claim of significance


@dataclass(frozen=True)
class Ratio:
    """A ratio of throughputs (> 1: the numerator is faster) with its 95% interval (nan when not testable)."""

    value: float
    low: float
    high: float
    testable: bool = True  # False when a figure may not back a claim (why: `reason`)
    noise: float = NOISE_FLOOR
    reason: str = ""
    variance: float = math.nan  # of the log ratio (Welch), and its degrees of freedom: what the interval came from
    df: float = math.nan

    @property
    def significant(self) -> bool:
        """The whole interval lies beyond 1 ± the noise floor: more than this data's noise, and more than two
        runs of the same code differ by."""
        return self.testable and (self.low > 1.0 + self.noise or self.high < 1.0 - self.noise)

    @property
    def verdict(self) -> str:
        if not self.testable:
            return "not tested: " + (self.reason or "too few samples")
        if not self.significant:
            return "no significant difference"
        return "faster" if self.value > 1 else "slower"

    def text(self) -> str:
        if not self.testable:
            return f"×{self.value:.3f} (not tested)"
        return f"×{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"


@dataclass(frozen=True)
class Timed:
    """One figure's evidence: each independent process's timed iterations, its batch (throughput = batch / time),
    and why it may not back a significance claim ("" when it may)."""

    key: str
    repetitions: list[list[float]]
    batch: int
    untestable: str = field(default="")

    @classmethod
    def of(cls, result: Result, prefix: str = "") -> Timed:
        reps = [r for r in result.repetitions if r]
        reason = result.untestable_reason()
        if not reason and any(len(r) < MIN_SAMPLES for r in reps):
            reason = f"fewer than {MIN_SAMPLES} timed iterations in a process"
        return cls(prefix + result.case.key, reps, result.case.batch, reason)

    def why_untestable(self) -> str:
        if self.untestable:
            return self.untestable
        return "" if len(self.repetitions) >= 2 else "one process per case (run with --repeat 2 or more to test)"

    def log_throughputs(self) -> np.ndarray:
        """log(batch / median time) of each process."""
        medians = np.array([np.median(r) for r in self.repetitions], dtype=float)
        logs: np.ndarray = math.log(self.batch) - np.log(medians)
        return logs

    def log_throughput(self) -> float:
        """log of the figure: batch / the geometric mean of the processes' medians (runner/attempts.py)."""
        return float(np.mean(self.log_throughputs()))


def throughput_ratio(numerator: list[Timed], denominator: list[Timed], noise: float = NOISE_FLOOR) -> Ratio:
    """Ratio of geometric-mean throughputs over matched cases (one case each: the plain ratio of the figures),
    with Welch's 95% t interval from the spread between each figure's processes."""
    if not numerator or not denominator:
        raise ValueError("throughput_ratio needs cases on both sides")
    centre = float(np.mean([t.log_throughput() for t in numerator])
                   - np.mean([t.log_throughput() for t in denominator]))  # fmt: skip
    value = math.exp(centre)
    reasons = list(dict.fromkeys(t.why_untestable() for t in (*numerator, *denominator) if t.why_untestable()))
    if reasons:
        return Ratio(value, math.nan, math.nan, testable=False, noise=noise, reason="; ".join(reasons))
    parts = []  # each figure's share of the variance of the difference: (var_i / K_i / m², K_i - 1)
    for side in (numerator, denominator):
        for t in side:
            logs = t.log_throughputs()
            parts.append((float(logs.var(ddof=1)) / len(logs) / len(side) ** 2, len(logs) - 1))
    variance = sum(v for v, _ in parts)
    if variance <= 0:
        return Ratio(value, value, value, noise=noise, variance=0.0, df=math.inf)
    df = variance**2 / sum(v**2 / d for v, d in parts if v > 0)
    half = t95(df) * math.sqrt(variance)
    return Ratio(value, math.exp(centre - half), math.exp(centre + half), noise=noise, variance=variance, df=df)
