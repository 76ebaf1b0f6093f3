"""The max-batch search with a fake prober: exact answers, the probes it takes, and where it must stop."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dlbench.maxbatch.search import find_max_batch


def fits_up_to(limit: int, calls: list[int] | None = None) -> Callable[[int], str]:
    def probe(batch: int) -> str:
        if calls is not None:
            calls.append(batch)
        return "ok" if batch <= limit else "oom"

    return probe


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 8, 9, 100, 1000, 1023, 1024])
def test_finds_the_largest_batch_that_runs_where_twice_it_does_not(limit: int) -> None:
    calls: list[int] = []
    found = find_max_batch(fits_up_to(limit, calls))
    assert found.verdict == "found"
    assert found.largest_ok == limit and found.smallest_oom == limit + 1
    assert (limit, "ok") in found.probes and (limit + 1, "oom") in found.probes
    assert len(calls) == len(set(calls))  # no batch probed twice
    assert len(calls) <= 2 * limit.bit_length() + 2  # doubling, then bisection: logarithmic


def test_doubles_from_start_then_bisects() -> None:
    found = find_max_batch(fits_up_to(100), start=4)
    assert [b for b, _ in found.probes] == [4, 8, 16, 32, 64, 128, 96, 112, 104, 100, 102, 101]


def test_nothing_fits() -> None:
    found = find_max_batch(fits_up_to(0))
    assert found.verdict == "none fits" and found.largest_ok is None and found.smallest_oom == 1
    assert found.probes == [(1, "oom")]


def test_a_start_that_does_not_fit_bisects_down() -> None:
    found = find_max_batch(fits_up_to(5), start=64)
    assert found.verdict == "found" and found.largest_ok == 5 and found.smallest_oom == 6
    assert found.probes[0] == (64, "oom")


def test_stops_at_max_batch_without_a_failure() -> None:
    found = find_max_batch(fits_up_to(10**6), max_batch=100)
    assert found.verdict == "max batch fits" and found.largest_ok == 100 and found.smallest_oom is None
    assert [b for b, _ in found.probes][-2:] == [64, 100]


@pytest.mark.parametrize("status", ["error", "timeout", "unsupported"])
@pytest.mark.parametrize(("bad_batch", "largest_ok"), [(1, None), (8, 4), (48, 32)])
def test_any_other_status_stops_the_search_and_is_no_fit(status: str, bad_batch: int, largest_ok: int | None) -> None:
    calls: list[int] = []

    def probe(batch: int) -> str:
        calls.append(batch)
        return status if batch == bad_batch else ("ok" if batch < 40 else "oom")

    found = find_max_batch(probe)
    assert found.verdict == "stopped" and found.stopped_at == bad_batch and found.stopped_status == status
    assert calls[-1] == bad_batch  # nothing probed after it
    assert found.largest_ok == largest_ok  # a lower bound, reported with the stop, never the stopped batch


def test_rejects_a_bad_range() -> None:
    with pytest.raises(ValueError):
        find_max_batch(fits_up_to(3), start=0)
    with pytest.raises(ValueError):
        find_max_batch(fits_up_to(3), start=8, max_batch=4)


@pytest.mark.parametrize("steps", [1, 2, 3])
def test_a_probe_runs_exactly_the_steps_asked_for(steps: int) -> None:
    from dlbench.maxbatch.api import probe_measure
    from dlbench.measure.timing import measure

    calls: list[int] = []
    ticks = iter(range(10**6))
    timing = measure(lambda: calls.append(1), lambda _: None, probe_measure(steps), clock=lambda: next(ticks) * 0.5)
    assert len(calls) == steps and len(timing.samples_s) == steps - 1
