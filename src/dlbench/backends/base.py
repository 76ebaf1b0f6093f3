"""The one protocol every backend implements. Only modules under backends/ import a framework.

A backend object lives in a worker process, for one case. The worker calls, in order:
    configure(threads)            set the framework's thread knobs (before any work)
    prepare(case, workload, weights, inputs) -> step
    step() ... synchronize(out)   timed; step() returns the output (forward) or (output, grads) (train)
    first_step_phases()           what the first step (compile, first execution) was made of, where it can tell
    peak_memory(), settings(), versions(), compile_cache()

Option `cache_dir` (every backend): the folder for the framework's persistent compilation cache(s), so that a
process can start with an empty cache ("cold") or with one an earlier process filled ("warm"); `dlbench compile`
uses it. Backends whose framework keeps no persistent cache ignore it, and their compile_cache() says so ({}).
Worker-side module: standard library and NumPy only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from dlbench.core.cases import Case
from dlbench.workloads.base import Workload

# What a prepared step returns: forward -> output; train -> (output, {weight name: gradient}).
Step = Callable[[], Any]


def exception_chain(exc: BaseException, limit: int = 10) -> list[BaseException]:
    """The exception and what it was raised from or during (frameworks wrap the errors of the code they run,
    e.g. torch.compile), for `classify` to look through."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < limit:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


class NotProbed(Exception):
    """A usability probe's path needs something that is not installed here (the message names it): not a failure."""


@dataclass(frozen=True)
class ExportCase:
    """What a usability probe's `export(case, path, directory)` gets: the configured backend, the workload at one
    size, and the workload's seeded float32 weights and inputs."""

    backend: Any
    workload: Workload
    size: dict[str, int]
    weights: dict[str, Any]
    inputs: dict[str, Any]


def needs(*modules: str) -> None:
    """Raise NotProbed unless every module is importable (checked without importing it)."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise NotProbed(f"needs {', '.join(missing)} (not installed: pip install {' '.join(missing)})")


class Unsupported(Exception):
    """This backend cannot run this combination (precision, device, workload); the message is the reason,
    quoting the framework's own error where there is one. Recorded as status `unsupported`, never a crash."""


def first_call(step: Step, first: Step) -> Step:
    """`step`, except that its first call runs `first` instead (which must do what `step` does, and may time the
    stages of compiling it): the one-shot wrapper behind every first-step phase breakdown."""
    done = False

    def wrapped() -> Any:
        nonlocal done
        if done:
            return step()
        done = True
        return first()

    return wrapped


class Backend:
    """Base class with harmless defaults; subclasses override what their framework offers."""

    name: ClassVar[str]

    def __init__(self, device: str, options: Mapping[str, Any] | None = None) -> None:
        self.device = device
        self.options = dict(options or {})
        # Common to every backend, so taken out before a backend checks the options that are its own.
        cache_dir = self.options.pop("cache_dir", None)
        self.cache_dir: str | None = str(cache_dir) if cache_dir is not None else None
        # Filled by the backend while it prepares and runs its first step; read by first_step_phases().
        self.phases: dict[str, float] = {}

    def configure(self, threads: int) -> None:
        """Set the framework's CPU thread knobs to `threads` (the worker has pinned itself to that many CPUs)."""

    def prepare(
        self, case: Case, workload: Workload, weights: dict[str, np.ndarray], inputs: dict[str, np.ndarray]
    ) -> Step:
        raise NotImplementedError

    def check_supported(
        self, case: Case, workload: Workload, precisions: Iterable[str], workloads: Iterable[str]
    ) -> None:
        """Unsupported, naming what, unless this backend implements the case's precision and workload."""
        if case.precision not in precisions:
            raise Unsupported(f"precision {case.precision!r} is not implemented by the {self.name} backend")
        if workload.name not in workloads:
            raise Unsupported(f"workload {workload.name!r} is not implemented by the {self.name} backend")

    def synchronize(self, result: Any = None) -> None:
        """Block until the work that produced `result` (the step's return value) and everything queued before it
        has finished. Called before every clock read that ends a timed step (jax: block_until_ready; cuda:
        torch.cuda.synchronize)."""

    def to_numpy(self, value: Any) -> np.ndarray:
        return np.asarray(value)

    def dtype_name(self, value: Any) -> str:
        """The element type a step's output or gradient came back in, as NumPy names it ("float16", "bfloat16"):
        what "stored in that precision" is checked against."""
        return str(np.asarray(value).dtype)

    def first_step_phases(self) -> dict[str, float]:
        """Seconds per phase of compiling and first running the step, as far as the framework lets them be seen
        apart (JAX: trace and lower, compile, first execution; ...), each measured, never apportioned. Names that
        start with "prepare_" were measured inside prepare() and are part of setup_s; every other phase lies
        inside the first step, and together they take at most first_step_s (the rest is the step's own
        overhead: Python, dispatch, synchronization). {}: no breakdown. Called by the worker after the first step."""
        return dict(self.phases)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time the block as phase `name` (seconds added to self.phases)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.phases[name] = self.phases.get(name, 0.0) + time.perf_counter() - start

    def time_first_call(self, step: Step, name: str = "first_execute_s") -> Step:
        """`step`, with its first call timed as phase `name`, synchronized so that the phase ends when its work
        has. Later calls cost one Python call and a flag test more than `step` (~0.1 µs)."""

        def timed() -> Any:
            with self.phase(name):
                result = step()
                self.synchronize(result)
            return result

        return first_call(step, timed)

    def compile_cache(self) -> dict[str, str]:
        """The persistent compilation cache in force: {"what": what it holds, "dir": its folder}; {} where the
        framework keeps none (its compiled code lives in the process only, so every process compiles afresh)."""
        return {}

    def reset_peak_memory(self) -> None:
        """Forget the device allocator's peak so far (called after the model is built)."""

    def peak_memory(self) -> dict[str, Any]:
        """Peak device memory figures in bytes, named alike in every framework (measure/memory.py's
        DEVICE_FIGURES: `device_allocated_peak_bytes`, ...), with `device_peak_covers` (the timed steps, or the
        process's life where the framework cannot reset its peak) and `device_peak_source`."""
        return {}

    def settings(self) -> dict[str, Any]:
        """The settings actually in force for this case (threads, cudnn.benchmark, TF32, jit, ...)."""
        return {}

    def versions(self) -> dict[str, str]:
        """Framework versions and the device libraries it uses (CUDA, cuDNN), read from the framework itself."""
        return {}

    def classify(self, exc: BaseException) -> str | None:
        """Map a framework exception to a status: "oom", "unsupported", or None (a plain error)."""
        return None

    def describe_error(self, exc: BaseException) -> str:
        """The exception as one message that leads with its reason (`Type: reason`): what a result's `error`
        says. Frameworks that bury the reason under their own traceback text (TensorFlow's graph errors)
        override it."""
        return f"{type(exc).__name__}: {exc}".strip()
