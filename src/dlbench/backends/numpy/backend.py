"""The NumPy backend: the workloads' math from dlbench.workloads.numpy_math, run in fp32 or fp16 on the CPU.

It needs no framework, so it is also the harness's own test backend: its fault-injection options make a worker
die, hang, fail or run slow for real, which is how the runner's fault handling is tested end to end.
Worker-side module: NumPy and the standard library only.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from dlbench.backends import get_backend
from dlbench.backends.base import Backend, Step, Unsupported
from dlbench.backends.numpy import FAULTS
from dlbench.core.cases import Case
from dlbench.workloads import numpy_math, stack_math
from dlbench.workloads.base import Workload
from dlbench.workloads.convnets import StackWorkload

_DTYPES: dict[str, type[np.floating[Any]]] = {"fp32": np.float32, "fp16": np.float16}
OPTIONS: tuple[str, ...] = tuple(get_backend("numpy").options)

# Bytes that no machine can allocate: 2**60 is beyond even a 57-bit (5-level paging) address space, so the
# allocation fails up front, a real MemoryError from NumPy, even with memory overcommit, touching no memory.
_IMPOSSIBLE_BYTES = 1 << 60


class NumpyBackend(Backend):
    """NumPy on the CPU: fp32 (float32) and fp16 (float16: real, but slow, as NumPy has no fp16 BLAS);
    no bf16, as NumPy has no bfloat16 dtype.

    Fault injection, from the case's options (all real, none simulated):
      fault="crash"   the first step kills its own process with SIGSEGV, as a segfault would;
      fault="exit"    the first step ends the process at once with os._exit(3), skipping all cleanup;
      fault="hang"    the first step sleeps for ~11 days (the runner's timeout must end it);
      fault="raise"   the first step raises RuntimeError("injected failure");
      fault="oom"     the first step allocates 2**60 bytes; NumPy raises MemoryError, classified "oom";
      sleep_s=<s>     every step sleeps that many seconds on top of its work (a real slow-down, for testing
                      regression detection);
      hold_mib_per_sample=<MiB>  every step also fills (so really holds) batch × that many MiB, kept until the
                      next step replaces it: resident memory that grows with the batch, as activations do, for
                      testing --memory-limit and the max-batch search.
    """

    name = "numpy"

    def __init__(self, device: str, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(device, options)
        if device != "cpu":
            raise Unsupported("NumPy runs on the CPU only")
        unknown = sorted(set(self.options) - set(OPTIONS))
        if unknown:
            allowed = ", ".join(OPTIONS)
            raise ValueError(f"unknown numpy backend option(s) {', '.join(unknown)} (allowed: {allowed})")
        self.fault: str | None = self.options.get("fault")
        if self.fault is not None and self.fault not in FAULTS:
            raise ValueError(f"unknown fault {self.fault!r} (allowed: {', '.join(FAULTS)})")
        raw = self.options.get("sleep_s", 0.0)
        try:
            self.sleep_s = float(raw)  # also from text, as a command line may give it
        except (TypeError, ValueError):
            self.sleep_s = -1.0
        if isinstance(raw, bool) or not 0 <= self.sleep_s < 1e9:
            raise ValueError(f"bad sleep_s={raw!r}: must be a number of seconds ≥ 0")
        self.hold_bytes_per_sample = _megabytes(self.options.get("hold_mib_per_sample", 0)) * 2**20
        self.dtype: type[np.floating[Any]] | None = None

    def prepare(
        self, case: Case, workload: Workload, weights: dict[str, np.ndarray], inputs: dict[str, np.ndarray]
    ) -> Step:
        if case.precision == "bf16":
            raise Unsupported("NumPy has no bfloat16 dtype")
        if case.precision not in _DTYPES:
            have = ", ".join(_DTYPES)
            raise Unsupported(f"the numpy backend has no precision {case.precision!r} (has: {have})")
        if workload.name not in numpy_math.MODELS and not isinstance(workload, StackWorkload):
            have = ", ".join(numpy_math.MODELS)
            raise Unsupported(f"the numpy backend has no {workload.name!r} (has: {have} and the layer stacks)")
        self.dtype = _DTYPES[case.precision]
        name, train = workload.name, case.mode == "train"
        layers = workload.layers_for(workload.size(case.size)) if isinstance(workload, StackWorkload) else None
        weights = {k: np.asarray(v, dtype=self.dtype) for k, v in weights.items()}
        inputs = {k: np.asarray(v, dtype=self.dtype) for k, v in inputs.items()}
        first = True
        hold_bytes = int(self.hold_bytes_per_sample * case.batch)
        held: np.ndarray | None = None

        def step() -> Any:
            nonlocal first, held
            if first:
                first = False
                self._inject_fault()
            if self.sleep_s:
                time.sleep(self.sleep_s)
            if hold_bytes:
                held = None
                held = np.ones(hold_bytes, dtype=np.uint8)  # every page written: resident, not just reserved
            if layers is not None:  # a layer stack: computed from the workload's own records
                if train:
                    return stack_math.loss_and_grads(layers, weights, inputs["x"])
                return stack_math.output(layers, weights, inputs["x"])
            if train:
                return numpy_math.loss_and_grads(name, weights, inputs)
            return numpy_math.forward(name, weights, inputs)

        return step

    def _inject_fault(self) -> None:
        if self.fault == "crash":
            os.kill(os.getpid(), signal.SIGSEGV)
        elif self.fault == "exit":
            os._exit(3)
        elif self.fault == "hang":
            time.sleep(10**6)
        elif self.fault == "raise":
            raise RuntimeError("injected failure")
        elif self.fault == "oom":
            np.ones(_IMPOSSIBLE_BYTES, dtype=np.uint8)

    def settings(self) -> dict[str, Any]:
        result: dict[str, Any] = {}
        if self.dtype is not None:
            result["dtype"] = np.dtype(self.dtype).name
        blas = _blas_name()
        if blas:
            result["blas"] = blas
        return result

    def versions(self) -> dict[str, str]:
        return {"numpy": np.__version__}

    def classify(self, exc: BaseException) -> str | None:
        return "oom" if isinstance(exc, MemoryError) else None


def _megabytes(raw: Any) -> float:
    try:
        value = float(raw)  # also from text, as a command line may give it
    except (TypeError, ValueError):
        value = -1.0
    if isinstance(raw, bool) or not 0 <= value < 2**30:
        raise ValueError(f"bad hold_mib_per_sample={raw!r}: must be a number of MiB ≥ 0")
    return value


def _blas_name() -> str | None:
    """The BLAS NumPy was built with, e.g. "scipy-openblas 0.3.27", or None where NumPy cannot say
    (show_config(mode="dicts") is NumPy ≥ 1.26)."""
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    except Exception:
        return None
    name, version = blas.get("name"), blas.get("version")
    if not name:
        return None
    return f"{name} {version}" if version else str(name)
