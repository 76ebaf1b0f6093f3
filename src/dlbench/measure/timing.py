"""The timing loop: first step (compile/trace time lives here), warm-up, then adaptive timed iterations.

Worker-side module. The backend synchronizes the device before every clock read, so asynchronous dispatch is
never timed; the clock is injectable so the stopping rule can be tested with a fake one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from dlbench.core.cases import MeasureConfig
from dlbench.measure.stats import relative_ci_half_width


@dataclass
class Timing:
    first_step_s: float
    warmup_s: list[float] = field(default_factory=list)
    samples_s: list[float] = field(default_factory=list)
    stopped_by: str = ""  # converged | max_time | max_iters
    total_s: float = 0.0
    window: dict[str, Any] = field(default_factory=dict)  # what else the machine did meanwhile (Window.stop())


class Window(Protocol):
    """Watches the timed iterations' window (measure/disturbance.py's Watch)."""

    def start(self) -> None: ...

    def stop(self) -> dict[str, Any]: ...


def measure(
    step: Callable[[], Any],
    synchronize: Callable[[Any], None],
    config: MeasureConfig,
    clock: Callable[[], float] = time.perf_counter,
    window: Window | None = None,
) -> Timing:
    def timed() -> float:
        start = clock()
        synchronize(step())
        return clock() - start

    t0 = clock()
    timing = Timing(first_step_s=timed())
    if config.max_iters == 0:  # the first step alone: what a max-batch probe asks for (maxbatch/api.py)
        timing.stopped_by, timing.total_s = "max_iters", clock() - t0
        return timing
    for _ in range(config.warmup_iters):
        timing.warmup_s.append(timed())

    if window is not None:
        window.start()
    start = clock()
    next_check = config.min_iters
    while True:
        timing.samples_s.append(timed())
        n, elapsed = len(timing.samples_s), clock() - start
        if elapsed >= config.max_time_s:
            timing.stopped_by = "max_time"
            break
        if n >= config.max_iters:
            timing.stopped_by = "max_iters"
            break
        if elapsed >= config.min_time_s and n >= next_check:
            # Sorting every iteration would cost O(n² log n); checking at ~10% growth costs O(n log n) overall.
            next_check = n + max(1, n // 10)
            if relative_ci_half_width(timing.samples_s) <= config.target_rel_ci:
                timing.stopped_by = "converged"
                break
    if window is not None:
        timing.window = window.stop()
    timing.total_s = clock() - t0
    return timing
