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


class AsyncDevice(FakeClock):
    """A device with asynchronous dispatch: a step costs `launch` on the host to queue and `work` on the device;
    sync waits until the device has done all that is queued, then costs `latency` more."""

    def __init__(self, launch: float, work: float, latency: float) -> None:
        super().__init__([])
        self.launch, self.work, self.latency, self.device_free = launch, work, latency, 0.0

    def step(self) -> str:
        self.calls += 1
        self.now += self.launch
        self.device_free = max(self.device_free, self.now) + self.work
        return "result"

    def sync(self, value: object) -> None:
        self.synced += 1
        self.now = max(self.now, self.device_free) + self.latency


def test_blocks_time_a_short_device_step_without_its_launch_and_sync_latency() -> None:
    """A 50 µs step with 20 µs launch and 30 µs sync latency: one step per clock read says 100 µs; blocks
    of 5 ms say the step's own 50 µs within 2% (a block still holds one launch and one sync: 50 µs ÷ 50 steps),
    and the result records the block size."""
    config = MeasureConfig(min_time_s=0.05, min_iters=10, max_time_s=1.0, warmup_iters=2, target_rel_ci=0.5)
    single = measure((d := AsyncDevice(20e-6, 50e-6, 30e-6)).step, d.sync, config, clock=d.clock)
    assert single.block_steps == 1 and single.samples_s[0] == pytest.approx(100e-6)
    blocked_config = MeasureConfig(**{**config.to_dict(), "block_min_s": 0.005})
    blocked = measure((d := AsyncDevice(20e-6, 50e-6, 30e-6)).step, d.sync, blocked_config, clock=d.clock)
    assert blocked.block_steps == 50  # 5 ms ÷ the fastest untimed step (100 µs, latency included)
    assert blocked.samples_s[0] == pytest.approx(51e-6, rel=1e-6)
    assert d.synced == 1 + 2 + len(blocked.samples_s)  # first step, warm-ups, then one sync per block


def test_blocks_are_sized_from_an_extra_untimed_step_when_there_is_no_warm_up() -> None:
    fake = FakeClock([5.0] + [0.001] * 10000)  # the first step compiles: it must not size the blocks
    t = measure(fake.step, fake.sync, MeasureConfig(min_time_s=0.1, min_iters=5, max_time_s=1.0, warmup_iters=0,
                                                     block_min_s=0.01), clock=fake.clock)  # fmt: skip
    assert t.warmup_s == [pytest.approx(0.001)] and t.block_steps == 10
    assert t.samples_s[0] == pytest.approx(0.001)
