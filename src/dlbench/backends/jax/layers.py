"""JAX's layers for `dlbench probe` (see backends/layers.py for the contract), as a JAX user writes them:
jnp matmuls, lax.conv_general_dilated (NCHW/OIHW), lax.scan LSTM, batch norm from jnp.mean/var, jax.nn.softmax,
attention from two matmuls and a softmax, jnp.take, lax.reduce_window; every step under jax.jit.

- fp32/fp16/bf16: inputs and weights stored in that dtype. amp-*: JAX has no autocast; mixed precision in JAX
  (as the jmp library does it) keeps float32 parameters and casts them and the inputs to the compute type inside
  the function, so the gradients come back in float32.
- XLA on CPU computes f16/bf16 dot and convolution in f32 and rounds the result: the returned dtype is the one
  asked, so the probe calls that `native` (see dlbench/probe/verdict.py).
- backward: jax.jit(jax.grad(Σ float32(output) · g)) over every float input and weight.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from dlbench.backends.base import Unsupported
from dlbench.backends.jax import helpers  # noqa: F401 — as the jax backend: GPU memory grows as needed
from dlbench.backends.layers import Built
from dlbench.workloads.layers import BN_EPS, LAYERS

DTYPES: dict[str, Any] = {"fp32": jnp.float32, "fp16": jnp.float16, "bf16": jnp.bfloat16,
                          "amp-fp16": jnp.float16, "amp-bf16": jnp.bfloat16}  # fmt: skip


def _lstm(t: dict[str, jax.Array]) -> jax.Array:
    x, w_ih, w_hh = t["x"], t["weight_ih"], t["weight_hh"]
    hidden = w_hh.shape[1]
    xs = x @ w_ih.T + (t["bias_ih"] + t["bias_hh"])  # the input projection of every step, before the scan

    def cell(carry: tuple[jax.Array, jax.Array], x_t: jax.Array) -> tuple[Any, jax.Array]:
        h, c = carry
        i, f, g, o = jnp.split(x_t + h @ w_hh.T, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), h

    zeros = jnp.zeros((x.shape[1], hidden), x.dtype)
    return lax.scan(cell, (zeros, zeros), xs)[1]


def _batchnorm(t: dict[str, jax.Array]) -> jax.Array:
    x = t["x"]
    mean = jnp.mean(x, (0, 2, 3), keepdims=True)
    var = jnp.var(x, (0, 2, 3), keepdims=True)
    return (x - mean) * lax.rsqrt(var + BN_EPS) * t["weight"][None, :, None, None] + t["bias"][None, :, None, None]


def _attention(t: dict[str, jax.Array]) -> jax.Array:
    q, k, v = t["q"], t["k"], t["v"]
    return jax.nn.softmax(q @ k.swapaxes(-1, -2) * q.shape[-1] ** -0.5, axis=-1) @ v


def _maxpool(t: dict[str, jax.Array]) -> jax.Array:
    # -inf as a Python scalar: jax then knows the reduction is max (a traced init value has no gradient rule)
    return lax.reduce_window(t["x"], -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")


_LAYERS: dict[str, Callable[[dict[str, jax.Array]], jax.Array]] = {
    "linear": lambda t: t["x"] @ t["weight"].T + t["bias"],
    "conv2d": lambda t: lax.conv_general_dilated(t["x"], t["weight"], (1, 1), ((1, 1), (1, 1)),
                                                 dimension_numbers=("NCHW", "OIHW", "NCHW"))
    + t["bias"][None, :, None, None],
    "lstm": _lstm,
    "batchnorm": _batchnorm,
    "softmax": lambda t: jax.nn.softmax(t["x"], axis=-1),
    "attention": _attention,
    "embedding": lambda t: jnp.take(t["weight"], t["ids"], axis=0),
    "maxpool": _maxpool,
}  # fmt: skip


def _numpy(value: jax.Array) -> tuple[np.ndarray, str]:
    return np.asarray(value).astype(np.float64), str(value.dtype)


def build(layer: str, direction: str, arrays: dict[str, np.ndarray], cotangent: np.ndarray, precision: str,
          device: str, variant: str) -> Built:  # fmt: skip
    try:
        dev = jax.devices({"cpu": "cpu", "cuda": "gpu"}[device])[0]
    except (KeyError, RuntimeError) as exc:
        raise Unsupported(f"jax {jax.__version__} has no device {device!r}: {exc}") from exc
    amp = precision.startswith("amp-")
    compute = DTYPES[precision]
    stored = jnp.float32 if amp else compute
    names = LAYERS[layer].differentiable
    put = {k: jax.device_put(v.astype(stored) if v.dtype.kind == "f" else v.astype(np.int32), dev)
           for k, v in arrays.items()}  # fmt: skip
    diff = {k: v for k, v in put.items() if k in names}
    rest = {k: v for k, v in put.items() if k not in names}
    layer_fn = _LAYERS[layer]

    def apply(diff: dict[str, jax.Array], rest: dict[str, jax.Array]) -> jax.Array:
        t = {**diff, **rest}
        if amp:  # cast at compute: float32 masters, compute in the low type
            t = {k: v.astype(compute) if jnp.issubdtype(v.dtype, jnp.floating) else v for k, v in t.items()}
        return layer_fn(t)

    if direction == "forward":
        forward = jax.jit(apply)
        return (lambda: forward(diff, rest)), lambda out: {"output": _numpy(out)}

    # g is an argument, not a constant in the closure: XLA would fold the bias gradients at compile time.
    g = jax.device_put(cotangent.astype(np.float32), dev)

    def loss(diff: dict[str, jax.Array], rest: dict[str, jax.Array], g: jax.Array) -> jax.Array:
        return jnp.sum(apply(diff, rest).astype(jnp.float32) * g)

    gradient = jax.jit(jax.grad(loss))
    return (lambda: gradient(diff, rest, g)), lambda grads: {k: _numpy(v) for k, v in grads.items()}
