"""`--device-memory SIZE` / `--emulate NAME`: a smaller GPU than the one present, the same for every framework.

The seed's cell "out of memory at VGG-16 batch 128" was a 12 GB Pascal Titan X. To ask whether today's frameworks
still run out on such a card, each case runs on a GPU whose memory is capped at SIZE, by two means:

1. each framework's own allocator is capped by its own mechanism (the parent sets DEVICE_MEMORY_ENV for the
   worker, and the framework's helpers apply it before the first allocation): torch's
   `set_per_process_memory_fraction` to SIZE minus the process's own footprint outside the allocator (CUDA
   context, cuDNN/cuBLAS handles: NVML's figure for the process less torch's reserved bytes, measured after CUDA
   starts); XLA's XLA_PYTHON_CLIENT_MEM_FRACTION = SIZE ÷ the card's memory (JAX starts its GPU client later, so
   its footprint cannot be measured first, and is caught by 2.); TensorFlow's logical device `memory_limit`;
2. whatever the caps leave, the whole process is held to SIZE as nvidia-smi would show it: a case whose
   `device_process_peak_bytes` (measure/memory.py's NvmlPeak) went past SIZE is `oom` ("it would not fit"),
   because on the emulated card it would have run out. Where NVML gives no per-process figure, the result says
   that only the allocator's cap held it.

Every result records the cap, the preset, what each framework was told, and the footprint measured.
Worker-side module: standard library (and nvidia-ml-py where installed).
"""

from __future__ import annotations

import os
from typing import Any

from dlbench.measure.memory import nvml_device, process_device_bytes

DEVICE_MEMORY_ENV = "DLBENCH_DEVICE_MEMORY_BYTES"  # set by the parent for the workers of a capped run

# Named GPUs a run can emulate: preset -> (bytes, what it is).
PRESETS: dict[str, tuple[int, str]] = {
    "titanx-pascal": (12 << 30, "NVIDIA TITAN X (Pascal), the 2016 study's card: 12 GB GDDR5X"),
}


def cap_bytes() -> int | None:
    """The device memory this worker's cases may use (None: the whole card)."""
    value = os.environ.get(DEVICE_MEMORY_ENV, "")
    return int(value) if value.isdigit() and int(value) > 0 else None


def total_device_bytes() -> int | None:
    """The card's memory through NVML, before any framework starts CUDA; None where NVML cannot say."""
    try:
        import pynvml  # nvidia-ml-py

        return int(pynvml.nvmlDeviceGetMemoryInfo(nvml_device()).total)
    except Exception:  # noqa: BLE001 — no NVML: the caller says what it could not do
        return None


def process_bytes_now() -> int | None:
    """This process's device memory as nvidia-smi shows it, read once; None where NVML cannot say."""
    try:
        return process_device_bytes(nvml_device())
    except Exception:  # noqa: BLE001 — no NVML: the caller records that the footprint was not measured
        return None


def xla_fraction(cap: int, total: int) -> str:
    """XLA_PYTHON_CLIENT_MEM_FRACTION for a cap on a card of `total` bytes (at most the whole card)."""
    return f"{min(1.0, cap / total):.4f}"


def process_verdict(memory: dict[str, Any], cap: int) -> str | None:
    """The error of a case whose process went past the emulated card, as nvidia-smi shows it; None if it fit (or
    no per-process figure exists: then the allocator's cap alone held it, and the result says so)."""
    used = memory.get("device_process_peak_bytes")
    if isinstance(used, int) and used > cap:
        return (f"the process held {used / 2**30:.2f} GiB of the device at its peak (NVML), more than the "
                f"{cap / 2**30:.2f} GiB of --device-memory: on that card it would not fit")
    return None


__all__ = ["DEVICE_MEMORY_ENV", "PRESETS", "cap_bytes", "process_verdict", "total_device_bytes", "xla_fraction"]
