"""What every backend that runs on PyTorch shares (`torch`, `torch-compile`, `keras-torch`): the case's device,
synchronization, the allocator's peak, the settings and versions in force, and how torch says out of memory or
"no kernel for this dtype". Worker-side only.
"""

from __future__ import annotations

import re
from typing import Any

import torch

from dlbench.backends.base import Unsupported, exception_chain
from dlbench.measure import device_memory

# Out of memory, in torch's words: "CUDA out of memory" (the caching allocator), "CUDA error: out of memory" (the
# driver, e.g. while creating a context or a cuDNN workspace), cuBLAS and cuDNN failing to allocate their own
# workspace or handle, and the CPU allocator's refusal.
_OOM_TEXT = ("out of memory", "CUBLAS_STATUS_ALLOC_FAILED", "CUDNN_STATUS_ALLOC_FAILED",
             "CUDNN_STATUS_NOT_ENOUGH_WORKSPACE", "DefaultCPUAllocator: can't allocate memory")  # fmt: skip
# torch's ways of saying a kernel lacks a dtype: `"addmm_impl_cpu_" not implemented for 'Half'` (a
# NotImplementedError in torch 2.x, a RuntimeError before), `linalg.inv: Low precision dtypes not supported.
# Got Half`, `Unsupported dtype BFloat16`.
_NO_KERNEL_TEXT = re.compile(r"not implemented for|(?i:not supported|unsupported dtype).*\b(Half|BFloat16)\b")


def check_device(device: str, backend: str) -> None:
    """Unsupported unless torch can run on the case's device ("cpu", or "cuda" with a usable GPU)."""
    if device == "cpu":
        return
    if device != "cuda":
        raise Unsupported(f"device {device!r} is not implemented by the {backend} backend")
    if not torch.cuda.is_available():
        raise Unsupported(
            f"CUDA is not available to torch {torch.__version__}: "
            + (
                "this is a CPU-only build"
                if torch.version.cuda is None
                else f"built for CUDA {torch.version.cuda}, but no usable GPU/driver was found"
            )
        )
    cap_device_memory()


DEVICE_CAP: dict[str, Any] = {}  # what --device-memory did in this process (settings() records it)


def cap_device_memory() -> None:
    """Under --device-memory (measure/device_memory.py): start CUDA, measure this process's device footprint
    outside the allocator (NVML's figure less torch's reserved bytes), and cap torch's caching allocator at the
    rest of SIZE. Once per process."""
    cap = device_memory.cap_bytes()
    if cap is None or DEVICE_CAP:
        return
    torch.zeros(1, device="cuda")  # CUDA's context and the allocator's first segment now exist
    total = int(torch.cuda.get_device_properties(0).total_memory)
    process = device_memory.process_bytes_now()
    footprint = max(0, process - torch.cuda.memory_reserved()) if isinstance(process, int) else None
    fraction = max(0.0, min(1.0, (cap - (footprint or 0)) / total))
    torch.cuda.set_per_process_memory_fraction(fraction)
    DEVICE_CAP.update(cap_bytes=cap, footprint_bytes=footprint, allocator_limit_bytes=int(fraction * total),
                      mechanism=f"torch.cuda.set_per_process_memory_fraction({fraction:.4f})",
                      footprint_note="NVML's figure for the process less torch.cuda.memory_reserved()"
                      if footprint is not None else "not measured (NVML gives no per-process figure here)")  # fmt: skip


def on_cuda(device: str) -> bool:
    return device == "cuda" and torch.cuda.is_available()


def synchronize(device: str) -> None:
    if on_cuda(device):
        torch.cuda.synchronize()


def reset_peak_memory(device: str) -> None:
    if on_cuda(device):
        torch.cuda.reset_peak_memory_stats()


def peak_memory(device: str) -> dict[str, Any]:
    """The CUDA caching allocator's peaks over the timed steps (reset_peak_memory ran before them), named as every
    framework's (measure/memory.py: DEVICE_FIGURES); {} on the CPU, where the worker measures RSS itself."""
    if not on_cuda(device):
        return {}
    return {
        "device_allocated_peak_bytes": torch.cuda.max_memory_allocated(),  # tensors
        "device_reserved_peak_bytes": torch.cuda.max_memory_reserved(),  # the caching allocator's segments
        "device_peak_covers": "timed steps",
        "device_peak_source": "torch.cuda.max_memory_allocated / max_memory_reserved",
    }


def matmul_tf32(enabled: bool) -> None:
    """TF32 on or off for CUDA matrix products only (`dlbench peak`'s tf32), through the installed torch's switch."""
    matmul = torch.backends.cuda.matmul
    if hasattr(matmul, "fp32_precision"):
        matmul.fp32_precision = "tf32" if enabled else "ieee"
    else:
        matmul.allow_tf32 = enabled


def _fp32_precision_api() -> bool:
    """Whether this torch has the fp32_precision switches (2.9 and later)."""
    return hasattr(torch.backends.cuda.matmul, "fp32_precision") and hasattr(torch.backends.cudnn, "conv")


def full_fp32() -> None:
    """fp32 means fp32 on CUDA (`tf32` is a precision of its own in dlbench's vocabulary): no TF32 in matmuls nor
    in cuDNN's convolutions and RNNs, which torch runs in TF32 by default on Ampere and later. Through the API of
    the installed torch: `fp32_precision = "ieee"` from 2.9 (whose allow_tf32 switches are deprecated, and may not
    be mixed with it), the allow_tf32 switches before. `tf32_settings()` records what is in force."""
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    if _fp32_precision_api():
        matmul.fp32_precision = "ieee"
        cudnn.conv.fp32_precision = "ieee"
        cudnn.rnn.fp32_precision = "ieee"
    else:
        matmul.allow_tf32 = False
        cudnn.allow_tf32 = False


def tf32_settings() -> dict[str, Any]:
    """Whether CUDA fp32 work may run in TF32, in the installed torch's own terms (see full_fp32)."""
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    if _fp32_precision_api():
        return {"cuda.matmul.fp32_precision": matmul.fp32_precision,
                "cudnn.conv.fp32_precision": cudnn.conv.fp32_precision,
                "cudnn.rnn.fp32_precision": cudnn.rnn.fp32_precision}  # fmt: skip
    return {"cuda.matmul.allow_tf32": matmul.allow_tf32, "cudnn.allow_tf32": cudnn.allow_tf32}


def settings(device: str) -> dict[str, Any]:
    """torch's own settings in force: threads, oneDNN, matmul precision, determinism; on CUDA, cuDNN and TF32."""
    found: dict[str, Any] = {
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "mkldnn.enabled": torch.backends.mkldnn.enabled,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
    }
    if device == "cuda":  # these flags change nothing on cpu
        found.update({
            "cudnn.enabled": torch.backends.cudnn.enabled,
            "cudnn.benchmark": torch.backends.cudnn.benchmark,
            "cudnn.deterministic": torch.backends.cudnn.deterministic,
            **tf32_settings(),
        })  # fmt: skip
        if DEVICE_CAP:
            found["device_memory_cap"] = dict(DEVICE_CAP)
    return found


def versions() -> dict[str, str]:
    return {
        "torch": torch.__version__,
        "cuda": torch.version.cuda or "",
        "cudnn": str(torch.backends.cudnn.version() or ""),
    }


def classify(exc: BaseException) -> str | None:
    chain = exception_chain(exc)
    for e in chain:
        if isinstance(e, (torch.cuda.OutOfMemoryError, MemoryError)):
            return "oom"
        if isinstance(e, RuntimeError) and any(text in str(e) for text in _OOM_TEXT):
            return "oom"
    for e in chain:
        if isinstance(e, NotImplementedError):
            return "unsupported"
        if isinstance(e, RuntimeError) and _NO_KERNEL_TEXT.search(str(e)):
            return "unsupported"
    return None
