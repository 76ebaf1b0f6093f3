"""What every backend that runs on JAX shares (`jax`, `keras-jax`, `pytensor-jax`): jit's stages timed one by one,
JAX's persistent compilation cache, the case's device, the allocator's peak, the types XLA really computes in,
versions, and how JAX says out of memory or "no kernel". Worker-side only.
"""

from __future__ import annotations

import os
import re
from typing import Any

import jax
import jaxlib

from dlbench.backends.base import Backend, Step, Unsupported, exception_chain, first_call
from dlbench.measure import device_memory

# Read when jax starts its GPU client (at the first device use, not at import): grow with need instead of
# taking 75% of the GPU up front, so that peak memory means something. A user's own setting wins.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")


def apply_device_memory() -> None:
    """Under --device-memory (measure/device_memory.py): XLA's memory fraction = SIZE ÷ the card's memory, set
    before JAX starts its GPU client (a user's own fraction wins). The footprint outside XLA's allocator cannot be
    measured first; the worker holds the whole process to SIZE afterwards. Recorded as the environment variable,
    and the allocator's resulting limit as device_limit_bytes."""
    cap = device_memory.cap_bytes()
    if cap is None or "XLA_PYTHON_CLIENT_MEM_FRACTION" in os.environ:
        return
    total = device_memory.total_device_bytes()
    if total:
        os.environ["XLA_PYTHON_CLIENT_MEM_FRACTION"] = device_memory.xla_fraction(cap, total)


apply_device_memory()

# Result element types of dot/convolution instructions in compiled HLO, including the library calls XLA GPU
# lowers them to (cuBLAS gemm, cuDNN conv), whose result is a tuple led by the output.
_COMPUTE_OP = re.compile(
    r"=\s*\(?(\w+)\[[^\n]*?\s(?:dot|convolution)\(|=\s*\(?(\w+)\[[^\n]*custom-call\([^\n]*"
    r"custom_call_target=\"__(?:cublas|cudnn)"
)
THREADS_NOTE = "XLA CPU sizes its thread pool from the CPU affinity; jax has no thread setting"


def device(name: str, backend: str) -> Any:
    """The jax device of a case's device ("cpu", "cuda"); Unsupported where jax has none."""
    platform = {"cpu": "cpu", "cuda": "gpu"}.get(name)
    if platform is None:
        raise Unsupported(f"device {name!r} is not implemented by the {backend} backend")
    try:
        return jax.devices(platform)[0]
    except RuntimeError as exc:  # "Unknown backend: 'gpu' requested, but no platforms ... are present"
        raise Unsupported(f"jax {jax.__version__}: {exc}") from exc


def full_fp32(dev: Any) -> None:
    """fp32 means fp32 off the CPU: XLA's default runs f32 dot/conv on TF32 units on Ampere and later GPUs (`tf32`
    is a precision of its own in dlbench's vocabulary). Recorded as `jax_default_matmul_precision`."""
    if dev.platform != "cpu":
        jax.config.update("jax_default_matmul_precision", "highest")


def enable_persistent_cache(cache_dir: str) -> None:
    """JAX's persistent compilation cache in <cache_dir>/jax, for every computation: by default JAX stores only
    those that took over a second to compile, which would leave small cases cold on a warm start."""
    jax.config.update("jax_compilation_cache_dir", os.path.join(cache_dir, "jax"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)  # no size threshold either


def persistent_cache() -> dict[str, str]:
    directory = jax.config.jax_compilation_cache_dir
    return {"what": "JAX persistent compilation cache (XLA executables)", "dir": directory} if directory else {}


def staged_first_call(backend: Backend, jitted: Any, args: tuple[Any, ...], step: Step) -> Step:
    """`step` (which calls `jitted(*args)`), whose first call runs jit's stages one at a time, each timed as a
    phase of `backend`: trace, lower, compile, then `step` itself, which finds the compiled executable in jit's
    caches. Later calls cost one Python call and a flag test more (~0.1 µs)."""

    def staged() -> Any:
        with backend.phase("trace_s"):
            traced = jitted.trace(*args)
        with backend.phase("lower_s"):
            lowered = traced.lower()
        with backend.phase("compile_s"):
            lowered.compile()
        with backend.phase("first_execute_s"):
            result = step()
            jax.block_until_ready(result)
        return result

    return first_call(step, staged)


def compute_types(hlo: str) -> list[str]:
    """The element types the compiled dots and convolutions produce (f32 for f16 operands on XLA CPU)."""
    return sorted({a or b for a, b in _COMPUTE_OP.findall(hlo)})


def compute_settings(hlo: str, dtype: str) -> dict[str, str]:
    """What a case's settings record of the compiled HLO: the dot/conv result types, and a note where XLA
    computes a low-precision `dtype` in f32."""
    types = compute_types(hlo)
    settings = {"hlo_dot_conv_result_types": ",".join(types)}
    if dtype != "float32" and "f32" in types:
        settings["compute_note"] = (
            f"XLA computes {dtype} dot/convolution in f32 on this device (compiled HLO: operands converted to f32, "
            f"results rounded back); storage stays {dtype}"
        )
    return settings


def peak_memory(dev: Any) -> dict[str, Any]:
    """The device allocator's peak and limit, named as every framework's (measure/memory.py: DEVICE_FIGURES);
    {} on the CPU, where the worker measures RSS itself. JAX cannot reset its peak: it covers the process's life
    (the parameters' upload and XLA's autotuning included), and says so."""
    if dev is None or dev.platform == "cpu":
        return {}
    stats = dev.memory_stats() or {}
    names = {"peak_bytes_in_use": "device_allocated_peak_bytes", "peak_pool_bytes": "device_reserved_peak_bytes",
             "bytes_limit": "device_limit_bytes"}  # fmt: skip
    found: dict[str, Any] = {new: int(stats[old]) for old, new in names.items() if old in stats}
    found.update(device_peak_covers="process life (JAX cannot reset its peak)",
                 device_peak_source="jax Device.memory_stats()")  # fmt: skip
    return found


def versions() -> dict[str, str]:
    return {"jax": jax.__version__, "jaxlib": jaxlib.__version__}


def classify(exc: BaseException) -> str | None:
    for e in exception_chain(exc):
        text = str(e)
        if isinstance(e, MemoryError) or "RESOURCE_EXHAUSTED" in text or "Out of memory" in text:
            return "oom"
        # jax raises NotImplementedError("Unsupported dtype float16.") for a kernel that lacks a dtype on a
        # platform (e.g. CPU LU in f16); XLA's runtime says UNIMPLEMENTED.
        if isinstance(e, NotImplementedError) or "UNIMPLEMENTED" in text:
            return "unsupported"
    return None


def thread_name(tid: str) -> str:
    try:
        with open(f"/proc/self/task/{tid}/comm") as f:
            return f.read().strip()
    except OSError:  # the thread ended meanwhile
        return ""
