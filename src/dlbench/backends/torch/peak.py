"""PyTorch's steps for `dlbench peak`: one n×n matrix product, and one copy of a large array.

The worker (dlbench.peak.worker) times them: each call returns its output, and the backend's synchronize waits for
it (torch.cuda.synchronize on a GPU: a timed window never ends on an asynchronous launch).
- fp32 is IEEE fp32 (TF32 off, as every fp32 case runs: helpers.full_fp32); tf32 is fp32 storage on the TF32
  matrix units (a GPU of compute capability 8.0 or later); fp16 and bf16 are pure (inputs and product in that type).
- On the CPU, whatever kernel torch has for the type runs (oneDNN, or torch's own loops where there is none): the
  figure is what this torch gets, not what the chip could.
Worker-side module: torch, NumPy and the standard library.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from dlbench.backends.base import Unsupported
from dlbench.backends.torch import helpers

DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "tf32": torch.float32, "fp16": torch.float16,
                                  "bf16": torch.bfloat16}  # fmt: skip


def _settings(device: str) -> dict[str, Any]:
    found: dict[str, Any] = {"threads": torch.get_num_threads()}
    if helpers.on_cuda(device):
        found["gpu"] = torch.cuda.get_device_name(0)
        found.update(helpers.tf32_settings())
    return found


def matmul(precision: str, device: str, n: int) -> tuple[Callable[[], Any], dict[str, Any]]:
    """A step computing A @ B for n×n A and B of `precision` on `device`, and the settings in force."""
    helpers.check_device(device, "torch")
    if precision not in DTYPES:
        raise Unsupported(f"no precision {precision!r} in torch's peak (has: {', '.join(DTYPES)})")
    on_cuda = helpers.on_cuda(device)
    if precision == "tf32":
        if not on_cuda:
            raise Unsupported("tf32 is a mode of NVIDIA GPUs' matrix units: a CPU has none")
        major, minor = torch.cuda.get_device_capability(0)
        if major < 8:
            raise Unsupported(f"tf32 needs a GPU of compute capability 8.0 or later; this one is {major}.{minor}")
    if on_cuda:
        if precision == "tf32":
            helpers.matmul_tf32(True)
        else:
            helpers.full_fp32()
    generator = torch.Generator(device=device).manual_seed(0)
    a, b = (torch.randn(n, n, generator=generator, device=device, dtype=torch.float32).to(DTYPES[precision])
            for _ in range(2))  # fmt: skip
    out = torch.empty(n, n, device=device, dtype=DTYPES[precision])

    def step() -> torch.Tensor:
        return torch.matmul(a, b, out=out)

    return step, _settings(device)


def copy(device: str, nbytes: int) -> tuple[Callable[[], Any], dict[str, Any]]:
    """A step copying one array of `nbytes` into another on `device` (nbytes read, nbytes written)."""
    helpers.check_device(device, "torch")
    src = torch.ones(nbytes // 4, device=device, dtype=torch.float32)
    dst = torch.empty_like(src)

    def step() -> torch.Tensor:
        return dst.copy_(src)

    return step, _settings(device)
