from __future__ import annotations

import math

import numpy as np
import pytest

from dlbench.measure.stats import bootstrap_median_ci, median_ci, relative_ci_half_width, summarize


def test_summarize_known_samples() -> None:
    samples = [0.010, 0.011, 0.009, 0.010, 0.012, 0.010, 0.008, 0.010, 0.011, 0.009]
    stats = summarize(samples, batch=32)
    assert stats["n"] == 10
    assert stats["median_s"] == pytest.approx(0.010)
    assert stats["samples_per_s"] == pytest.approx(3200)
    assert stats["mean_s"] == pytest.approx(np.mean(samples))
    assert stats["stdev_s"] == pytest.approx(np.std(samples, ddof=1))
    assert stats["iqr_s"] == pytest.approx(np.percentile(samples, 75) - np.percentile(samples, 25))
    assert stats["ci95_low_s"] <= stats["median_s"] <= stats["ci95_high_s"]
    low, high = stats["samples_per_s_ci95"]
    assert low <= stats["samples_per_s"] <= high


def test_bootstrap_ci_covers_true_median_and_shrinks_with_n() -> None:
    rng = np.random.default_rng(1)
    small = rng.lognormal(0, 0.1, 50)
    large = rng.lognormal(0, 0.1, 5000)
    lo_s, hi_s = bootstrap_median_ci(small)
    lo_l, hi_l = bootstrap_median_ci(large)
    assert lo_l <= 1.0 <= hi_l  # the lognormal's median is exp(0) = 1
    assert hi_l - lo_l < (hi_s - lo_s) / 3


def test_bootstrap_is_deterministic() -> None:
    x = np.random.default_rng(2).normal(1, 0.1, 200)
    assert bootstrap_median_ci(x) == bootstrap_median_ci(x)


def test_order_statistic_ci_is_conservative_about_few_samples() -> None:
    assert median_ci([1.0, 5.0, 3.0]) == (1.0, 5.0)
    assert relative_ci_half_width([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]) == 0.0
    assert math.isinf(relative_ci_half_width([]))


def test_large_spread_warns_and_tight_spread_does_not() -> None:
    tight = summarize([1.0 + 0.001 * (i % 3) for i in range(30)], batch=1)
    assert tight["warnings"] == []
    noisy = summarize([1.0] * 20 + [3.0] * 10, batch=1)
    assert any("standard deviation" in w for w in noisy["warnings"])
    assert any("slowest iteration" in w for w in noisy["warnings"])
    assert summarize([1.0], batch=1)["warnings"]  # one sample: no claim about spread


def test_t_quantile_matches_the_table_and_known_tails() -> None:
    from dlbench.measure.stats import t95, t_quantile, t_sf

    for df in (1, 2, 3, 4, 7, 12, 30):
        assert t_quantile(0.975, df) == pytest.approx(t95(df), abs=2e-3)
    assert t_quantile(1 - 0.025 / 57, 1) == pytest.approx(math.tan(math.pi * (0.5 - 0.025 / 57)), rel=1e-6)
    assert t_sf(0.0, 5) == pytest.approx(0.5) and t_sf(1.0, 1) == pytest.approx(0.25)  # Cauchy: atan(1)/π
