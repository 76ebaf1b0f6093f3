"""The comparison statistics: intervals from independent processes that find real differences, keep quiet about
noise (the A/A calibration: identical code compared with itself is called different at most ~5% of the time), and
make no claim from one process, a disturbed window or a lone iteration."""

from __future__ import annotations

import numpy as np
import pytest
from tests.synthetic import document

from dlbench.core.cases import Case
from dlbench.core.results import Result
from dlbench.measure.stats import between_interval, t95
from dlbench.report.statistics import Timed, throughput_ratio


def process(median: float, rng: np.random.Generator, n: int = 40, noise: float = 0.03) -> list[float]:
    return list(median * np.exp(rng.normal(0, noise, n)))


def timed(key: str, median: float, k: int = 3, between: float = 0.02, seed: int = 0, batch: int = 4) -> Timed:
    """k processes, each with its own median (between-process spread `between`), 40 iterations each."""
    rng = np.random.default_rng(seed)
    return Timed(key, [process(median * float(np.exp(rng.normal(0, between))), rng) for _ in range(k)], batch)


def test_a_twofold_slowdown_is_found_and_its_size_estimated() -> None:
    ratio = throughput_ratio([timed("b", 0.02, seed=1)], [timed("a", 0.01, seed=2)])
    assert ratio.verdict == "slower" and ratio.significant
    assert ratio.low <= 0.5 <= ratio.high
    assert ratio.value == pytest.approx(0.5, rel=0.06)


def test_a_a_calibration_identical_code_is_rarely_called_different() -> None:
    """The test of the statistics. Identical code, measured as dlbench sees it on this machine: each process has
    its own median (between-process spread 5%, more than the 3% iteration noise inside a window; a within-window
    interval, dlbench's old one, called 9 of 16 such A/A cases significant). Over 2000 A/A pairs with 2, 3 and 5
    processes per side, at most ~5% may be called significant (what a 95% interval promises; the noise floor makes
    it fewer), and the interval must cover the true ratio 1 at least 93% of the time."""
    for k in (2, 3, 5):
        rng = np.random.default_rng(k)
        calls = covered = 0
        for i in range(2000):
            a = Timed(f"a{i}", [process(0.01 * float(np.exp(rng.normal(0, 0.05))), rng) for _ in range(k)], 4)
            b = Timed(f"b{i}", [process(0.01 * float(np.exp(rng.normal(0, 0.05))), rng) for _ in range(k)], 4)
            ratio = throughput_ratio([b], [a], noise=0)
            calls += ratio.significant
            covered += ratio.low <= 1 <= ratio.high
            assert ratio.testable
        assert calls / 2000 <= 0.055, f"k={k}: {calls / 2000:.1%} of A/A pairs called significant"
        assert covered / 2000 >= 0.93, f"k={k}: coverage {covered / 2000:.1%}"  # conservative (df rounded down)


def test_pooling_iterations_would_fail_the_calibration() -> None:
    """The same A/A data judged as if all iterations were one process (the old model): far more than 5% called
    significant. This is what the calibration above guards against."""
    rng = np.random.default_rng(0)
    calls = 0
    for _ in range(300):
        a = [v for _ in range(3) for v in process(0.01 * float(np.exp(rng.normal(0, 0.05))), rng)]
        b = [v for _ in range(3) for v in process(0.01 * float(np.exp(rng.normal(0, 0.05))), rng)]
        chunks = [list(c) for c in np.array_split(a, 12)], [list(c) for c in np.array_split(b, 12)]
        calls += throughput_ratio([Timed("b", chunks[1], 4)], [Timed("a", chunks[0], 4)], noise=0).significant
    assert calls / 300 > 0.2


def test_differences_inside_the_noise_floor_are_not_significant() -> None:
    """A steady 1% difference, measured so tightly that its interval excludes 1, is still within the 2% by which
    two runs of the same code differ: not significant by default, significant with no floor."""
    fast, slow = timed("f", 0.0099, k=5, between=0.001, seed=1), timed("s", 0.01, k=5, between=0.001, seed=2)
    tight = throughput_ratio([fast], [slow], noise=0)
    assert tight.low > 1 and tight.verdict == "faster"
    assert throughput_ratio([fast], [slow]).verdict == "no significant difference"


def test_throughput_counts_the_batch() -> None:
    """Same time per step, twice the batch: twice the samples/s."""
    ratio = throughput_ratio([timed("b", 0.01, seed=1, batch=8)], [timed("a", 0.01, seed=2, batch=4)])
    assert ratio.value == pytest.approx(2.0, rel=0.06) and ratio.verdict == "faster"


def test_one_process_ranks_but_claims_nothing() -> None:
    ratio = throughput_ratio([timed("b", 0.02, k=1, seed=1)], [timed("a", 0.01, k=1, seed=2)])
    assert ratio.value == pytest.approx(0.5, rel=0.06)
    assert not ratio.significant and ratio.verdict.startswith("not tested")


@pytest.mark.parametrize("outcome, reason", [
    ({"disturbed": True}, "disturbed"),
    ({"n": 2}, "fewer timed iterations than min_iters"),
    ({"repeat": 1}, "one process per case"),
])  # fmt: skip
def test_a_figure_that_cannot_back_a_claim_says_why(outcome: dict[str, object], reason: str) -> None:
    case = Case("lstm", {"seq_len": 5, "batch": 4, "hidden": 8}, "numpy", "fp32", "forward")
    good = Timed.of(Result.from_document(document(case)))
    bad = Timed.of(Result.from_document(document(case, speed=1.0, **outcome)))  # type: ignore[arg-type]
    assert good.untestable == ""
    ratio = throughput_ratio([bad], [good])
    assert not ratio.testable and reason in ratio.reason and not ratio.significant


def test_geometric_mean_over_sizes() -> None:
    """A backend twice as fast at one size and equal at another leads by √2 overall."""
    fast = [timed("f1", 0.005, seed=1), timed("f2", 0.01, seed=2)]
    slow = [timed("s1", 0.01, seed=3), timed("s2", 0.01, seed=4)]
    assert throughput_ratio(fast, slow).value == pytest.approx(2**0.5, rel=0.05)


def test_t_quantiles_and_the_between_process_interval() -> None:
    assert t95(1) == pytest.approx(12.706) and t95(2.9) == pytest.approx(4.303)
    assert t95(1000) == pytest.approx(1.96, abs=0.01)
    low, high = between_interval([1.0, 1.1, 0.9])
    assert low < 1.0 < high
    assert np.isnan(between_interval([1.0])[0])
