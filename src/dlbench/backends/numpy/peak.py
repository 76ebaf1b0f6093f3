"""NumPy's steps for `dlbench peak`: an fp32 n×n matrix product through the BLAS NumPy was built with (sgemm), and
one copy of a large array (np.copyto, one thread).

Only fp32: NumPy multiplies float16 matrices in its own scalar loops, not in a BLAS, and has no bfloat16; those
precisions are `unsupported` here, saying so. The BLAS's thread count is set to the CPUs this worker is pinned to
where NumPy's own OpenBLAS exposes the setter (scipy-openblas wheels), and recorded.
Worker-side module: NumPy and the standard library.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dlbench.backends.base import Unsupported

_SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads", "openblas_set_num_threads64_",
            "openblas_set_num_threads")  # fmt: skip


def _blas_threads(threads: int) -> dict[str, Any]:
    """Set NumPy's OpenBLAS to `threads` threads where its library is found beside NumPy; what was done."""
    libs = sorted((Path(np.__file__).parent.parent / "numpy.libs").glob("*openblas*"))
    for path in libs:
        try:
            lib = ctypes.CDLL(str(path))  # already loaded by NumPy: this is the same library
        except OSError:
            continue
        setter = next((name for name in _SETTERS if hasattr(lib, name)), None)
        if setter is not None:
            getattr(lib, setter)(threads)
            return {"blas_threads": threads, "blas_threads_set_by": setter}
    return {"blas_threads": None, "blas_threads_note": "no OpenBLAS thread setter found beside NumPy: its default"}


def _settings() -> dict[str, Any]:
    found: dict[str, Any] = {}
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        found["blas"] = f"{blas.get('name')} {blas.get('version') or ''}".strip()
    except Exception:  # noqa: BLE001 — NumPy before 1.26 cannot say; the figure stands without it
        found["blas"] = None
    return found


def matmul(precision: str, device: str, n: int) -> tuple[Callable[[], Any], dict[str, Any]]:
    """A step computing A @ B for n×n float32 A and B (sgemm), and the settings in force."""
    if device != "cpu":
        raise Unsupported("NumPy runs on the CPU only")
    if precision == "bf16":
        raise Unsupported("NumPy has no bfloat16 dtype")
    if precision != "fp32":
        raise Unsupported(f"NumPy multiplies {precision} matrices in its own loops, not through a BLAS: its peak is "
                          "fp32 only")  # fmt: skip
    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    settings = {**_settings(), **_blas_threads(threads)}
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
    out = np.empty((n, n), dtype=np.float32)

    def step() -> np.ndarray:
        return np.matmul(a, b, out=out)

    return step, settings


def copy(device: str, nbytes: int) -> tuple[Callable[[], Any], dict[str, Any]]:
    """A step copying one array of `nbytes` into another (np.copyto: one thread)."""
    if device != "cpu":
        raise Unsupported("NumPy runs on the CPU only")
    src = np.ones(nbytes // 4, dtype=np.float32)
    dst = np.empty_like(src)

    def step() -> np.ndarray:
        np.copyto(dst, src)
        return dst

    return step, {"threads": 1}
