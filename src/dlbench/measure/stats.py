"""Statistics derived from raw per-iteration times. The raw times are always kept; everything here is derived.

Worker-side module (the timing loop's stopping rule uses `median_ci`): NumPy and the standard library only.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

Z95 = 1.959963984540054
# Student's t, 97.5th percentile, for 1..30 degrees of freedom (two-sided 95% intervals from few processes).
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def _betacf(a: float, b: float, x: float) -> float:
    """The continued fraction of the regularized incomplete beta function (modified Lentz)."""
    tiny, c, d = 1e-300, 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):  # fmt: skip
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-12:
            break
    return h


def t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with `df` degrees of freedom (t >= 0), through the incomplete beta function."""
    if t <= 0:
        return 0.5
    x = df / (df + t * t)
    a, b = df / 2, 0.5
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    ibeta = front * _betacf(a, b, x) / a if x < (a + 1) / (a + b + 2) else 1 - front * _betacf(b, a, 1 - x) / b
    return ibeta / 2


def t_quantile(p: float, df: float) -> float:
    """The `p` quantile (p > 0.5) of Student's t with `df` degrees of freedom, by bisection on t_sf."""
    low, high = 0.0, 1.0
    while t_sf(high, df) > 1 - p:
        high *= 2
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if t_sf(mid, df) > 1 - p else (low, mid)
    return (low + high) / 2


def t95(df: float) -> float:
    """The two-sided 95% quantile of Student's t with `df` degrees of freedom (a fractional df is rounded down:
    the wider interval), from a table up to 30 and a close approximation above."""
    if not df >= 1:
        return math.inf
    whole = int(df)
    return _T975[whole - 1] if whole <= len(_T975) else Z95 + 2.4 / whole


def between_interval(medians_s: list[float]) -> tuple[float, float]:
    """95% interval of the typical iteration time from independent processes' medians: a t interval on their
    logarithms (times are positive and spread multiplicatively). (nan, nan) from fewer than two processes."""
    x = np.log(np.asarray(medians_s, dtype=float))
    k = len(x)
    if k < 2:
        return math.nan, math.nan
    centre, half = float(x.mean()), t95(k - 1) * float(x.std(ddof=1)) / math.sqrt(k)
    return math.exp(centre - half), math.exp(centre + half)


def median_ci(samples: list[float] | np.ndarray) -> tuple[float, float]:
    """Distribution-free 95% CI of the median: the order statistics around n/2 ± 1.96·√n/2.

    Exact enough for n ≥ 6 and cheap (one sort), so the timing loop can ask it while measuring.
    Returns (lowest, highest) sample for n < 6: no claim of precision from so few samples.
    """
    x = np.sort(np.asarray(samples, dtype=float))
    n = len(x)
    if n == 0:
        return math.nan, math.nan
    if n < 6:
        return float(x[0]), float(x[-1])
    half = Z95 * math.sqrt(n) / 2
    lo = max(0, math.floor(n / 2 - half) - 1)  # 1-based rank floor(n/2 - half) → 0-based index
    hi = min(n - 1, math.ceil(n / 2 + half))
    return float(x[lo]), float(x[hi])


def relative_ci_half_width(samples: list[float] | np.ndarray) -> float:
    """Half the width of the median's 95% CI, relative to the median (0.01 = ±1%)."""
    lo, hi = median_ci(samples)
    med = float(np.median(samples)) if len(samples) else math.nan
    if not med or math.isnan(med):
        return math.inf
    return (hi - lo) / 2 / med


def bootstrap_median_ci(
    samples: np.ndarray, resamples: int = 2000, seed: int = 0, budget: int = 4_000_000
) -> tuple[float, float]:
    """Percentile bootstrap 95% CI of the median (seeded: the same samples give the same interval)."""
    n = len(samples)
    if n < 2:
        v = float(samples[0]) if n else math.nan
        return v, v
    resamples = max(200, min(resamples, budget // n))
    rng = np.random.default_rng(seed)
    medians = np.empty(resamples)
    chunk = max(1, budget // (4 * n))
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        medians[start:stop] = np.median(samples[idx], axis=1)
    lo, hi = np.percentile(medians, [2.5, 97.5])
    return float(lo), float(hi)


def summarize(samples: list[float], batch: int) -> dict[str, Any]:
    """Median, IQR, mean, stdev, min/max, 95% bootstrap CI of the median, samples/s = batch / median,
    and pyperf-style warnings when the spread makes the median untrustworthy."""
    x = np.asarray(samples, dtype=float)
    n = len(x)
    if n == 0:
        return {"n": 0, "warnings": ["no timed iterations"]}
    median = float(np.median(x))
    q1, q3 = (float(v) for v in np.percentile(x, [25, 75]))
    mean = float(x.mean())
    stdev = float(x.std(ddof=1)) if n > 1 else 0.0
    ci_low, ci_high = bootstrap_median_ci(x)
    stats: dict[str, Any] = {
        "n": n,
        "median_s": median,
        "q1_s": q1,
        "q3_s": q3,
        "iqr_s": q3 - q1,
        "mean_s": mean,
        "stdev_s": stdev,
        "min_s": float(x.min()),
        "max_s": float(x.max()),
        "ci95_low_s": ci_low,
        "ci95_high_s": ci_high,
        "samples_per_s": batch / median if median > 0 else math.inf,
        # A lower time bound is a higher throughput bound.
        "samples_per_s_ci95": [
            batch / ci_high if ci_high > 0 else math.inf,
            batch / ci_low if ci_low > 0 else math.inf,
        ],
        "rel_ci95_half_width": (ci_high - ci_low) / 2 / median if median > 0 else math.inf,
    }
    stats["warnings"] = spread_warnings(stats)
    return stats


def spread_warnings(stats: dict[str, Any]) -> list[str]:
    """pyperf's checks, adapted: unstable when stdev > 10% of the mean, or outliers far from the median."""
    warnings: list[str] = []
    n, mean, median = stats["n"], stats["mean_s"], stats["median_s"]
    if n < 3:
        warnings.append(f"only {n} timed iteration{'s' if n != 1 else ''}: no spread can be estimated")
        return warnings
    if mean > 0 and stats["stdev_s"] / mean > 0.10:
        warnings.append(
            f"the standard deviation is {stats['stdev_s'] / mean:.0%} of the mean: the result may be unstable"
        )
    if median > 0 and stats["max_s"] > 1.5 * median:
        warnings.append(f"the slowest iteration took {stats['max_s'] / median:.1f}× the median")
    if stats["rel_ci95_half_width"] > 0.05:
        warnings.append(
            f"the 95% CI of the median is ±{stats['rel_ci95_half_width']:.0%}: run longer for a tighter figure"
        )
    return warnings
