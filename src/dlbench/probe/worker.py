"""The worker side of the probe: one layer of one backend at one precision, forward and backward, run in a worker
process by the generic `call` task (dlbench.runner.worker.call), on the backend it instantiated and configured. It
returns what it observed — relative errors against the float64 reference, the dtypes returned, step times — and
the parent decides the verdicts (probe/verdict.py), because `slow` needs the fp32 time from another call.

Timing: the first call (compile, trace, cache fill) is kept apart as first_s; then synchronized steps (the
backend's own synchronize) until at least `min_iters` and `min_time_s`, never past `max_time_s` (a step slower
than that is timed once); the median is the step time.
Worker-side module: NumPy, the standard library, and the backend's framework (through its layers module).
"""

from __future__ import annotations

import importlib
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from dlbench.backends import layers_of
from dlbench.backends.base import Backend, Unsupported
from dlbench.core.cases import Case
from dlbench.probe.verdict import DIRECTIONS
from dlbench.workloads.layers import LAYERS, make_arrays
from dlbench.workloads.reference import layer_reference, relative_error

# Exceptions that say the probe's own layer code is broken, not that the framework refused a dtype: `error`.
_PROBE_BUGS = (NameError, KeyError, AttributeError, IndexError, AssertionError, ImportError)


def _error_text(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text if len(text) <= 1500 else text[:1500] + " …"


def _time_steps(step: Callable[[], Any], sync: Callable[[Any], None], min_iters: int, min_time_s: float,
                max_time_s: float) -> list[float]:  # fmt: skip
    samples: list[float] = []
    started = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        sync(step())
        samples.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - started
        if elapsed >= max_time_s or (len(samples) >= min_iters and elapsed >= min_time_s):
            return samples


def _direction(backend: Backend, build: Callable[..., Any], layer: str, direction: str, arrays: dict[str, np.ndarray],
               cotangent: np.ndarray, expected: dict[str, np.ndarray], case: Case, variant: str,
               timing: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    try:
        step, fetch = build(layer, direction, arrays, cotangent, case.precision, case.device, variant)
        t0 = time.perf_counter()
        value = step()
        backend.synchronize(value)
        first_s = time.perf_counter() - t0
        fetched = fetch(value)
        missing = sorted(set(expected) - set(fetched))
        if missing:
            raise RuntimeError(f"no gradient for {', '.join(missing)}")
        errors = {name: relative_error(fetched[name][0], ref) for name, ref in expected.items()}
        dtypes = {name: fetched[name][1] for name in expected}
        samples = _time_steps(step, backend.synchronize, **timing)
    except Unsupported as exc:
        return {"status": "unsupported", "message": str(exc)}
    except _PROBE_BUGS as exc:  # the probe's own code failed: no finding about the framework
        return {"status": "error", "message": _error_text(exc), "exception": type(exc).__name__}
    except Exception as exc:  # noqa: BLE001 — what the framework cannot do is the finding, quoted
        kind = backend.classify(exc)
        status = "oom" if kind == "oom" or isinstance(exc, MemoryError) else "unsupported"
        return {"status": status, "message": _error_text(exc), "exception": type(exc).__name__}
    return {"status": "ok", "errors": {k: (v if np.isfinite(v) else None) for k, v in errors.items()},
            "dtypes": dtypes, "first_s": first_s, "time_s": statistics.median(samples), "best_s": min(samples),
            "samples_s": samples}  # fmt: skip


def probe_layer(case: Case, backend: Backend, layer: str, timing: dict[str, Any]) -> dict[str, Any]:
    """`layer` of case.backend at case.precision on case.device: {layer, forward: {...}, backward: {...}}. The
    backend is configured as for every case (thread knobs; Keras imported on its engine)."""
    module_name, variant = layers_of(case.backend)
    if module_name is None:
        raise Unsupported(variant)  # the parent asks only backends with layers: a guard, not a path
    build = importlib.import_module(module_name).build
    arrays, cotangent = make_arrays(layer, case.seed)
    ref_out, ref_grads = layer_reference(layer, arrays, cotangent)
    spec = LAYERS[layer]
    result: dict[str, Any] = {"layer": layer}
    for direction in DIRECTIONS:
        expected = {"output": ref_out} if direction == "forward" else {k: ref_grads[k] for k in spec.differentiable}
        result[direction] = _direction(backend, build, layer, direction, arrays, cotangent, expected, case, variant,
                                       timing)  # fmt: skip
    try:
        result["versions"] = backend.versions()
    except Exception as exc:  # noqa: BLE001 — a version reader must not hide the findings
        result["versions"] = {"error": _error_text(exc)}
    return result
