"""The timing loop's rules, with a fake clock: no real time passes, so these are exact."""

from __future__ import annotations

import pytest

from dlbench.core.cases import MeasureConfig
from dlbench.measure.timing import measure


class FakeClock:
    """Each step advances time by the next duration in `durations`; sync records that it was called."""

    def __init__(self, durations: list[float]) -> None:
        self.now, self.durations, self.calls, self.synced = 0.0, list(durations), 0, 0

    def clock(self) -> float:
        return self.now

    def step(self) -> str:
        self.calls += 1
        self.now += self.durations[min(self.calls - 1, len(self.durations) - 1)]
        return "result"

    def sync(self, value: object) -> None:
        assert value == "result"  # the backend is handed what the step returned
        self.synced += 1


def test_first_step_is_kept_apart_from_steady_state() -> None:
    fake = FakeClock([5.0, 0.5] + [0.01] * 1000)
    config = MeasureConfig(min_time_s=0.1, min_iters=10, max_time_s=10, warmup_iters=1, target_rel_ci=0.01)
    t = measure(fake.step, fake.sync, config, clock=fake.clock)
    assert t.first_step_s == 5.0
    assert t.warmup_s == [0.5]
    assert all(abs(s - 0.01) < 1e-9 for s in t.samples_s)  # compile time never enters the samples
    assert fake.synced == fake.calls  # every timed step synchronized before the clock was read


def test_stops_early_when_the_median_ci_is_tight() -> None:
    fake = FakeClock([0.01] * 100000)
    config = MeasureConfig(min_time_s=0.5, min_iters=10, max_time_s=100, warmup_iters=0)
    t = measure(fake.step, fake.sync, config, clock=fake.clock)
    assert t.stopped_by == "converged"
    assert sum(t.samples_s) >= 0.5  # but not before the minimum time
    assert len(t.samples_s) < 100


def test_minimum_iterations_are_respected() -> None:
    fake = FakeClock([1.0] * 100)
    config = MeasureConfig(min_time_s=0.0, min_iters=7, max_time_s=1000, warmup_iters=0)
    t = measure(fake.step, fake.sync, config, clock=fake.clock)
    assert len(t.samples_s) == 7


def test_noisy_steps_run_until_the_time_cap() -> None:
    durations = [0.01 if i % 2 else 0.03 for i in range(100000)]
    fake = FakeClock(durations)
    config = MeasureConfig(min_time_s=0.1, min_iters=5, max_time_s=2.0, warmup_iters=0)
    t = measure(fake.step, fake.sync, config, clock=fake.clock)
    assert t.stopped_by == "max_time"
    assert sum(t.samples_s) == pytest.approx(2.0, abs=0.04)


def test_cap_wins_over_minimum_iterations() -> None:
    fake = FakeClock([3.0] * 100)
    config = MeasureConfig(min_time_s=0.1, min_iters=10, max_time_s=5.0, warmup_iters=0)
    t = measure(fake.step, fake.sync, config, clock=fake.clock)
    assert len(t.samples_s) == 2 and t.stopped_by == "max_time"
