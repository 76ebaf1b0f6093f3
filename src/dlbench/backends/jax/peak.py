"""JAX's steps for `dlbench peak`: one jitted n×n matrix product, and one jitted copy of a large array.

The worker (dlbench.peak.worker) times them; the backend's synchronize is block_until_ready on the output, so a
timed window never ends on JAX's asynchronous dispatch.
- fp32 is full fp32 (`precision=HIGHEST`: XLA would use TF32 units for f32 on Ampere and later GPUs otherwise);
  tf32 is the explicit TF32 algorithm (DotAlgorithmPreset.TF32_TF32_F32) on a GPU of compute capability 8.0 or
  later; fp16 and bf16 are products of that type at XLA's default precision.
Worker-side module: jax, NumPy and the standard library.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from dlbench.backends.base import Unsupported
from dlbench.backends.jax import helpers

DTYPES: dict[str, Any] = {"fp32": jnp.float32, "tf32": jnp.float32, "fp16": jnp.float16, "bf16": jnp.bfloat16}


def _settings(device: Any) -> dict[str, Any]:
    return {"platform": device.platform, "device_kind": device.device_kind, "threads_note": helpers.THREADS_NOTE}


def _precision(precision: str, device: Any) -> Any:
    if precision == "fp32":
        return jax.lax.Precision.HIGHEST
    if precision != "tf32":
        return None
    if device.platform == "cpu":
        raise Unsupported("tf32 is a mode of NVIDIA GPUs' matrix units: a CPU has none")
    capability = str(getattr(device, "compute_capability", "") or "")
    if capability and float(capability) < 8.0:
        raise Unsupported(f"tf32 needs a GPU of compute capability 8.0 or later; this one is {capability}")
    preset = getattr(jax.lax, "DotAlgorithmPreset", None)
    if preset is None:
        raise Unsupported(f"jax {jax.__version__} has no DotAlgorithmPreset to ask for TF32 explicitly")
    return preset.TF32_TF32_F32


def matmul(precision: str, device: str, n: int) -> tuple[Callable[[], Any], dict[str, Any]]:
    """A step computing A @ B for n×n A and B of `precision` on `device` (jitted), and the settings in force."""
    if precision not in DTYPES:
        raise Unsupported(f"no precision {precision!r} in jax's peak (has: {', '.join(DTYPES)})")
    dev = helpers.device(device, "jax")
    how = _precision(precision, dev)
    keys = jax.random.split(jax.random.key(0))
    a, b = (jax.device_put(jax.random.normal(k, (n, n), jnp.float32).astype(DTYPES[precision]), dev) for k in keys)
    product = jax.jit(lambda x, y: jax.lax.dot(x, y, precision=how))
    jax.block_until_ready((a, b))

    def step() -> jax.Array:
        return product(a, b)

    return step, {**_settings(dev), "precision_argument": str(how)}


def copy(device: str, nbytes: int) -> tuple[Callable[[], Any], dict[str, Any]]:
    """A step copying one array of `nbytes` into a new one on `device` (jitted: XLA writes a fresh buffer)."""
    dev = helpers.device(device, "jax")
    src = jax.device_put(jnp.ones(nbytes // 4, jnp.float32), dev)
    copied = jax.jit(jnp.copy)
    jax.block_until_ready(src)

    def step() -> jax.Array:
        return copied(src)

    return step, _settings(dev)
