"""A layer stack (dlbench.workloads.stack) as one pure JAX function, `apply(params, x)`, written as a JAX (Flax) user
writes a network: `lax.conv_general_dilated`, `lax.reduce_window` max-pooling, `x @ kernel + bias`, batch and layer
norm from the batch's statistics, `jax.nn.gelu`, `jax.nn.dot_product_attention`, `jax.nn.log_softmax`; an
inception module concatenates its branches, a residual block adds its shortcut. The records are static Python
data: `apply` is a Python walk over them, traced once by `jax.jit` into one XLA computation.

Layouts (JAX's, converted ONCE when the model is built, never in a step):
- activations NHWC, conv kernels HWIO, linear kernels (in, out): Flax's `nn.Conv` and `nn.Dense` layouts, what a
  JAX user holds. On NVIDIA GPUs XLA's layout assignment wants NHWC for cuDNN's tensor-core convolutions (it would
  insert transposes around NCHW ones in fp16/bf16); XLA CPU computes its convolutions NHWC anyway ("b01f_01io->b01f",
  see backend.py on VGG-16), so NHWC is the layout that costs no transposes on either. The NCHW input is transposed
  once, before it is put on the device.
- Flatten of an NHWC map gives (H, W, C) order, the reference's is (C, H, W): the rows of the Linear right after a
  Flatten are permuted once at build (`Layout.flat`), so no step transposes activations (a Flatten followed by
  anything else transposes to NCHW first, which these networks never do).
- gradients come back from the step in JAX's layouts; `Layout.to_workload` converts one to the workload's (OIHW,
  (out, in), (C, H, W) rows), outside the timed step (JaxBackend.to_numpy).
- batch and layer norm compute their statistics and normalize in at least float32 and round the result back to the
  activations' type, as Flax's `nn.BatchNorm`/`nn.LayerNorm` do (what every framework's fp16 batch norm does).
Worker-side module: imports jax.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from dlbench.workloads import stack

CONV_DIMS = ("NHWC", "HWIO", "NHWC")
LAYOUT_NOTE = "NHWC activations, HWIO conv kernels, (in, out) linear kernels (Flax's layouts), converted at build"


@dataclass(frozen=True)
class Layout:
    """How one weight is held in JAX, relative to the workload's layout: `perm` transposes the workload's array into
    JAX's (None: the same array); `flat` = (C, H, W) for a Linear right after a Flatten, whose (out, C·H·W) weight
    becomes an (H·W·C, out) kernel."""

    perm: tuple[int, ...] | None = None
    flat: tuple[int, int, int] | None = None

    def to_jax(self, a: np.ndarray) -> np.ndarray:
        if self.flat is not None:
            c, h, w = self.flat
            return a.reshape(-1, c, h, w).transpose(2, 3, 1, 0).reshape(h * w * c, -1)
        return a if self.perm is None else a.transpose(self.perm)

    def to_workload(self, a: np.ndarray) -> np.ndarray:
        if self.flat is not None:
            c, h, w = self.flat
            return np.ascontiguousarray(a.reshape(h, w, c, -1).transpose(3, 2, 0, 1).reshape(-1, c * h * w))
        return a if self.perm is None else np.ascontiguousarray(a.transpose(np.argsort(self.perm)))


SAME = Layout()
KERNEL = Layout((1, 0))  # (out, in) -> (in, out)
HWIO = Layout((2, 3, 1, 0))  # OIHW -> HWIO
NCHW_FROM_NHWC = Layout((0, 3, 1, 2))  # an image output, back to the workload's layout


def _followed_by_linear(layers: tuple[stack.Layer, ...], i: int) -> bool:
    return i + 1 < len(layers) and isinstance(layers[i + 1], stack.Linear)


def _layouts(layers: tuple[stack.Layer, ...], shape: tuple[int, ...], found: dict[str, Layout]) -> None:
    """Each weight's Layout, found by walking the records with their (C, H, W) shapes (as stack.walk has them)."""
    flat: tuple[int, int, int] | None = None
    for i, layer in enumerate(layers):
        match layer:
            case stack.Conv(name, bias=bias):
                found[f"{name}.weight"] = HWIO
                if bias:
                    found[f"{name}.bias"] = SAME
            case stack.Flatten() if len(shape) == 3 and _followed_by_linear(layers, i):
                flat = (shape[0], shape[1], shape[2])
            case stack.Linear(name):
                found[f"{name}.weight"] = Layout(flat=flat) if flat is not None else KERNEL
                found[f"{name}.bias"] = SAME
            case stack.BatchNorm(name) | stack.LayerNorm(name):
                found[f"{name}.weight"] = found[f"{name}.bias"] = SAME
            case stack.SelfAttention(name):
                found[f"{name}.qkv.weight"] = found[f"{name}.proj.weight"] = KERNEL
                found[f"{name}.qkv.bias"] = found[f"{name}.proj.bias"] = SAME
            case stack.Concat(branches):
                for branch in branches:
                    _layouts(branch, shape, found)
            case stack.Residual(body, shortcut):
                _layouts(body, shape, found)
                _layouts(shortcut, shape, found)
        if not isinstance(layer, stack.Flatten):
            flat = None
        shape = stack.output_shape((layer,), shape)


def _normalize(x: jax.Array, weight: jax.Array, bias: jax.Array, axes: tuple[int, ...]) -> jax.Array:
    """(x - mean) / sqrt(var + eps) · weight + bias, statistics over `axes` of this batch, in at least f32."""
    xf = x.astype(jnp.promote_types(x.dtype, jnp.float32))
    mean = jnp.mean(xf, axes, keepdims=True)
    var = jnp.var(xf, axes, keepdims=True)
    return ((xf - mean) * lax.rsqrt(var + stack.BN_EPS) * weight + bias).astype(x.dtype)


def _attention(p: dict[str, jax.Array], name: str, heads: int, causal: bool, x: jax.Array) -> jax.Array:
    n, seq, d = x.shape
    qkv = x @ p[f"{name}.qkv.weight"] + p[f"{name}.qkv.bias"]
    q, k, v = (t.reshape(n, seq, heads, d // heads) for t in jnp.split(qkv, 3, axis=-1))  # (batch, seq, heads, dh)
    y = jax.nn.dot_product_attention(q, k, v, is_causal=causal)
    return y.reshape(n, seq, d) @ p[f"{name}.proj.weight"] + p[f"{name}.proj.bias"]


def apply(layers: tuple[stack.Layer, ...], p: dict[str, jax.Array], x: jax.Array) -> jax.Array:
    """x: NHWC images (or (batch, seq, d) sequences) through the layers, with `p` in JAX's layouts (see Layout)."""
    for i, layer in enumerate(layers):
        match layer:
            case stack.Conv(name, _, kernel, stride, pad, bias):
                x = lax.conv_general_dilated(x, p[f"{name}.weight"], (stride, stride), ((pad, pad), (pad, pad)),
                                             dimension_numbers=CONV_DIMS)  # fmt: skip
                if bias:
                    x = x + p[f"{name}.bias"]
            case stack.ReLU():
                x = jax.nn.relu(x)
            case stack.MaxPool(kernel, stride, pad):
                # A Python scalar init with lax.max is what jax recognizes as the differentiable max-pool.
                x = lax.reduce_window(x, -jnp.inf, lax.max, (1, kernel, kernel, 1), (1, stride, stride, 1),
                                      ((0, 0), (pad, pad), (pad, pad), (0, 0)))  # fmt: skip
            case stack.GlobalAvgPool():
                x = jnp.mean(x, axis=(1, 2))
            case stack.Flatten():
                if x.ndim == 4 and not _followed_by_linear(layers, i):
                    x = jnp.transpose(x, (0, 3, 1, 2))  # (C, H, W) order; a following Linear has its rows permuted
                x = x.reshape(x.shape[0], -1)
            case stack.Linear(name):
                x = x @ p[f"{name}.weight"] + p[f"{name}.bias"]
            case stack.BatchNorm(name):
                x = _normalize(x, p[f"{name}.weight"], p[f"{name}.bias"], tuple(range(x.ndim - 1)))
            case stack.LayerNorm(name):
                x = _normalize(x, p[f"{name}.weight"], p[f"{name}.bias"], (-1,))
            case stack.GELU():
                x = jax.nn.gelu(x, approximate=True)
            case stack.SelfAttention(name, heads, causal):
                x = _attention(p, name, heads, causal, x)
            case stack.LogSoftmax():
                x = jax.nn.log_softmax(x, axis=-1)
            case stack.Concat(branches):
                x = jnp.concatenate([apply(branch, p, x) for branch in branches], axis=-1)
            case stack.Residual(body, shortcut):
                x = apply(body, p, x) + (apply(shortcut, p, x) if shortcut else x)
    return x


@dataclass(frozen=True)
class Built:
    """A stack built for JAX: its function, each weight's Layout, and how the input and output are converted."""

    apply: Callable[[dict[str, jax.Array], jax.Array], jax.Array]
    layouts: dict[str, Layout]
    image: bool  # NCHW images in, transposed to NHWC once
    output: Layout  # from the step's output to the workload's

    def params(self, weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The workload's weights in JAX's layouts (host arrays, converted once)."""
        return {name: np.ascontiguousarray(self.layouts[name].to_jax(w)) for name, w in weights.items()}

    def input(self, x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if self.image else x


def build(layers: tuple[stack.Layer, ...], input_shape: tuple[int, ...]) -> Built:
    """The stack for an input of `input_shape` (the workload's: NCHW images or (batch, seq, d) sequences)."""
    layouts: dict[str, Layout] = {}
    _layouts(layers, input_shape[1:], layouts)
    out_shape = stack.output_shape(layers, input_shape[1:])
    image = len(input_shape) == 4
    return Built(functools.partial(apply, layers), layouts, image,
                 NCHW_FROM_NHWC if image and len(out_shape) == 3 else SAME)  # fmt: skip


__all__ = ["CONV_DIMS", "LAYOUT_NOTE", "Built", "Layout", "apply", "build"]
