"""The timing loop: first step (compile/trace time lives here), warm-up, then adaptive timed iterations.

Worker-side module. The backend synchronizes the device before every clock read, so asynchronous dispatch is
never timed; the clock is injectable so the stopping rule can be tested with a fake one.

Blocks (`MeasureConfig.block_min_s` > 0): a GPU step of tens of microseconds is shorter than launching it and
synchronising after it, so one step per clock read would time mostly that latency and forbid what a training loop
does (queue the next step while this one runs). Then `block_steps` steps run between two synchronisations, enough
for a block to last block_min_s by the fastest untimed step, at most MAX_BLOCK_STEPS; each sample is the block's
time ÷ block_steps (recorded with the result). The soumith/convnet-benchmarks of 2016 timed likewise, over steps.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from dlbench.core.cases import MeasureConfig
from dlbench.measure.stats import relative_ci_half_width

MAX_BLOCK_STEPS = 1000


@dataclass
class Timing:
    first_step_s: float
    warmup_s: list[float] = field(default_factory=list)
    samples_s: list[float] = field(default_factory=list)
    stopped_by: str = ""  # converged | max_time | max_iters
    block_steps: int = 1  # steps per sample (per clock read); samples_s are per step
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
    if config.block_min_s > 0:
        if not timing.warmup_s:  # the first step holds the compilation: time one more, untimed, to size blocks
            timing.warmup_s.append(timed())
        fastest = max(min(timing.warmup_s), 1e-9)
        timing.block_steps = max(1, min(MAX_BLOCK_STEPS, math.ceil(config.block_min_s / fastest)))

    def block() -> float:
        start = clock()
        result = None
        for _ in range(timing.block_steps):
            result = step()
        synchronize(result)
        return (clock() - start) / timing.block_steps

    sample = block if timing.block_steps > 1 else timed
    if window is not None:
        window.start()
    start = clock()
    next_check = config.min_iters
    while True:
        timing.samples_s.append(sample())
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
