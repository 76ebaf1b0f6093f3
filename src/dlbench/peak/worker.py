"""The worker side of `dlbench peak`: one framework's matrix product at one precision, or its array copy, timed in a
worker process by the generic `call` task (dlbench.runner.worker.call) on the backend it instantiated and
configured (threads set for the CPUs the worker is pinned to).

The framework's registry entry names its peak module (Framework.peak), whose matmul(precision, device, n) and
copy(device, nbytes) return (step, settings): `step()` starts the work and returns its output. Timing is here, the
same for every framework:
- each size is called once untimed (allocation, kernel choice, compilation), then once more to learn a call's
  cost; then samples, each a block of calls long enough (BLOCK_S) that a GPU's launch and synchronisation costs
  vanish in it, ended by the backend's synchronize on the last output (torch.cuda.synchronize,
  block_until_ready): an asynchronous launch is never what is timed. A sample is the block's time ÷ its calls.
- at least MIN_SAMPLES samples per size; more while the size's share of the time budget lasts;
- matrix sizes are tried smallest first; a size whose predicted time (the last size's call × (n'/n)³) would not
  fit MIN_SAMPLES + 2 calls into what is left of the budget is skipped, and so are the larger ones. A size that
  fails (out of memory) ends the sizes; the figures of those measured stand.
- a size's figure is 2·n³ ÷ its median sample; the matmul figure is the best size's (a sustained median, not one
  lucky call). The copy's figure is 2·nbytes (read + written) ÷ its median sample.
- the samples' window is watched as a case's is (measure/disturbance.py): what other processes took of the CPUs
  (or, on a GPU, who else used it) is recorded with each figure, and judged at MAX_OUTSIDE_SHARE, as `dlbench run`
  judges by default: a disturbed peak is lower than the machine's, so the tables' percentages are too high.
Worker-side module: NumPy, the standard library, and the framework (through its peak module).
"""

from __future__ import annotations

import gc
import importlib
import math
import statistics
import time
from collections.abc import Callable
from typing import Any

from dlbench.backends import framework_of
from dlbench.backends.base import Backend, Unsupported
from dlbench.core.cases import Case
from dlbench.measure.disturbance import Watch, judge

BLOCK_S = 0.02  # a sample lasts at least this long (several calls between synchronisations when calls are short)
MAX_CALLS = 10_000  # calls per sample, at most
MIN_SAMPLES = 3
MAX_SAMPLES = 200
MAX_OUTSIDE_SHARE = 0.10  # a window in which others used more of the CPUs is `disturbed` (as `dlbench run` judges)


def _samples(step: Callable[[], Any], sync: Callable[[Any], None], budget_s: float, device: str) -> dict[str, Any]:
    start = time.perf_counter()
    sync(step())
    first_s = time.perf_counter() - start  # untimed for the figure: allocation, kernel choice, compilation
    t0 = time.perf_counter()
    sync(step())
    one_s = time.perf_counter() - t0
    calls = max(1, min(MAX_CALLS, math.ceil(BLOCK_S / max(one_s, 1e-9))))
    deadline = start + budget_s
    samples: list[float] = []
    watch = Watch(device)
    watch.start()
    while len(samples) < MIN_SAMPLES or (len(samples) < MAX_SAMPLES and time.perf_counter() < deadline):
        t0 = time.perf_counter()
        out = None
        for _ in range(calls):
            out = step()
        sync(out)
        samples.append((time.perf_counter() - t0) / calls)
    window = watch.stop()
    return {"first_s": first_s, "calls_per_sample": calls, "median_s": statistics.median(samples),
            "samples_s": samples, "window": window, "disturbance": judge(window, MAX_OUTSIDE_SHARE)}  # fmt: skip


def _text(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text if len(text) <= 600 else text[:600] + " …"


def _one_size(module: Any, backend: Backend, precision: str, device: str, n: int,
              budget_s: float) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
    step, settings = module.matmul(precision, device, n)
    return _samples(step, backend.synchronize, budget_s, device), settings


def _matmul(module: Any, backend: Backend, precision: str, device: str, seconds: float,
            sizes: list[int]) -> dict[str, Any]:  # fmt: skip
    deadline = time.perf_counter() + seconds
    rows: list[dict[str, Any]] = []
    settings: dict[str, Any] = {}
    predicted: float | None = None  # the next size's call, in seconds
    ordered = sorted(sizes)
    for i, n in enumerate(ordered):
        left = deadline - time.perf_counter()
        if predicted is not None and predicted * (MIN_SAMPLES + 2) > left:
            rows += [{"n": m, "skipped": f"would not fit the {seconds:g} s budget"} for m in ordered[i:]]
            break
        try:
            timing, settings = _one_size(module, backend, precision, device, n, left / (len(ordered) - i))
        except Unsupported:
            raise
        except Exception as exc:  # noqa: BLE001 — a size that fails (memory) ends the sizes, unless it is the first
            if not any("flops_per_s" in r for r in rows):
                raise
            rows.append({"n": n, "error": _text(exc)})
            break
        finally:
            gc.collect()  # this size's arrays are gone before the next size's are made
        rows.append({"n": n, "flops_per_s": 2.0 * n**3 / timing["median_s"], **timing})
        if i + 1 < len(ordered):
            predicted = timing["median_s"] * (ordered[i + 1] / n) ** 3
    best = max((r for r in rows if "flops_per_s" in r), key=lambda r: r["flops_per_s"])
    return {"flops_per_s": best["flops_per_s"], "n": best["n"], "disturbance": best["disturbance"], "sizes": rows,
            "settings": settings}  # fmt: skip


def _copy(module: Any, backend: Backend, device: str, seconds: float, nbytes: int) -> dict[str, Any]:
    step, settings = module.copy(device, nbytes)
    timing = _samples(step, backend.synchronize, seconds, device)
    return {"bytes_per_s": 2.0 * nbytes / timing["median_s"], "nbytes": nbytes, **timing, "settings": settings}


def measure_peak(case: Case, backend: Backend, quantity: str, seconds: float, sizes: list[int],
                 nbytes: int) -> dict[str, Any]:  # fmt: skip
    """`matmul` at case.precision, or `copy`, of the case's framework on case.device, within about `seconds`."""
    name = framework_of(case.backend).peak
    if name is None:
        raise Unsupported(f"the {case.backend} backend's framework declares no peak module")
    module = importlib.import_module(name)
    started = time.perf_counter()
    if quantity == "matmul":
        found = _matmul(module, backend, case.precision, case.device, seconds, sizes)
    else:
        found = _copy(module, backend, case.device, seconds, nbytes)
    try:
        found["versions"] = backend.versions()
    except Exception as exc:  # noqa: BLE001 — a version reader must not hide the figure
        found["versions"] = {"error": _text(exc)}
    return {**found, "wall_s": time.perf_counter() - started}
