"""A layer stack (dlbench.workloads.stack) as TensorFlow ops on tf.Variables, as backend.py writes VGG-16: one Python
function over the records, traced once by `tf.function` (and compiled by XLA for `tensorflow-xla`).

- `tf.nn.conv2d` with HWIO filters and explicit padding (`[[0, 0], [p, p], [p, p], [0, 0]]` in NHWC), then
  `tf.nn.bias_add`; `tf.nn.relu`; `tf.matmul` with (in, out) kernels; `tf.reduce_mean` over H and W;
  `tf.nn.log_softmax`; `tf.concat` along channels (an inception module); `+` (a residual block).
- max-pool: `tf.nn.max_pool2d`. A padded pool whose padding is exactly "SAME" (stride 1, pad (k-1)/2: GoogLeNet's
  3/1/1) is written "SAME" (TF's SAME pool never picks a padded element, as -inf padding would not); any other
  padded pool is `tf.pad` with -inf, then "VALID": the reference's definition, exact whatever precedes the pool.
  Not the pool's own explicit padding: XLA refuses it ("XLA does not support pooling ops with explicit padding"),
  and both backends run one function.
- batch norm: `tf.nn.moments` over N, H, W of this batch, then `tf.nn.batch_normalization` (eps 1e-5); in fp16 and
  bf16 the statistics and the normalization are computed in float32 and the result rounded back, as Keras'
  BatchNormalization and TF's fused batch norm do.
- layouts (converted ONCE at build, never in a step): NHWC on CPU and NCHW on GPU, as backend.py's VGG-16 (its
  docstring says why); filters HWIO, linear kernels (in, out). Flatten of an NHWC map gives (H, W, C) order, the
  reference's is (C, H, W): the rows of the Linear right after a Flatten are permuted once at build (`FlatRows`),
  so no step transposes activations; in NCHW the flattened order already is (C, H, W).
- the transformer block (a (batch, seq, d) input, no image layout): `tf.matmul` of the activations with (in, out)
  kernels (the qkv projection's (3d, d) weight held as (d, 3d)); layer norm from `tf.nn.moments` over the last
  axis (eps 1e-5), in at least float32 like the batch norm; `tf.nn.gelu(approximate=True)`; attention as
  nanoGPT writes it by hand: q, k, v split and reshaped to (batch, heads, seq, d/heads), `tf.matmul(q, k,
  transpose_b=True)` scaled, the causal mask by `tf.linalg.band_part` (positions after the query get -inf),
  `tf.nn.softmax`, `tf.matmul` with v, heads merged, the output projection.
- gradients come back from the step in TF's layouts, each with what converts it to the workload's (a permutation,
  or FlatRows), applied by the backend's to_numpy only, after timing.
Worker-side module: imports tensorflow.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf

from dlbench.workloads import stack

OIHW_FROM_HWIO = (3, 2, 0, 1)
OUT_IN_FROM_IN_OUT = (1, 0)


@dataclass(frozen=True)
class FlatRows:
    """A Linear right after a Flatten of an NHWC (C, H, W) map: its (out, C·H·W) weight is held as an (H·W·C, out)
    kernel. Calling it converts such a kernel (or its gradient) back to the workload's (out, C·H·W)."""

    chw: tuple[int, int, int]

    def to_tf(self, weight: np.ndarray) -> np.ndarray:
        c, h, w = self.chw
        return weight.reshape(-1, c, h, w).transpose(2, 3, 1, 0).reshape(h * w * c, -1)

    def __call__(self, kernel: np.ndarray) -> np.ndarray:
        c, h, w = self.chw
        return kernel.reshape(h, w, c, -1).transpose(3, 2, 0, 1).reshape(-1, c * h * w)


ToWorkload = tuple[int, ...] | FlatRows | None  # a permutation, FlatRows, or None (the same array)


@dataclass(frozen=True)
class Built:
    """A stack built for TensorFlow: its variables (the workload's weight order), the forward function over them,
    and per weight (name, variable index, how its gradient converts to the workload's layout)."""

    variables: list[tf.Variable]
    forward: Callable[[tf.Tensor], tf.Tensor]
    grads: list[tuple[str, int, ToWorkload]]
    notes: dict[str, Any]


def _followed_by_linear(layers: tuple[stack.Layer, ...], i: int) -> bool:
    return i + 1 < len(layers) and isinstance(layers[i + 1], stack.Linear)


def _layouts(layers: tuple[stack.Layer, ...], shape: tuple[int, ...], nhwc: bool, found: dict[str, ToWorkload]) -> None:
    """Each weight's TF layout relative to the workload's, walking the records with their (C, H, W) shapes."""
    flat: FlatRows | None = None  # set by a Flatten of an NHWC map, for the Linear right after it
    for i, layer in enumerate(layers):
        match layer:
            case stack.Conv(name, bias=bias):
                found[f"{name}.weight"] = OIHW_FROM_HWIO
                if bias:
                    found[f"{name}.bias"] = None
            case stack.Flatten() if nhwc and len(shape) == 3 and _followed_by_linear(layers, i):
                flat = FlatRows((shape[0], shape[1], shape[2]))
            case stack.Linear(name):
                found[f"{name}.weight"] = flat if flat is not None else OUT_IN_FROM_IN_OUT
                found[f"{name}.bias"] = None
            case stack.BatchNorm(name) | stack.LayerNorm(name):
                found[f"{name}.weight"] = found[f"{name}.bias"] = None
            case stack.SelfAttention(name):
                for part in ("qkv", "proj"):
                    found[f"{name}.{part}.weight"], found[f"{name}.{part}.bias"] = OUT_IN_FROM_IN_OUT, None
            case stack.Concat(branches):
                for branch in branches:
                    _layouts(branch, shape, nhwc, found)
            case stack.Residual(body, shortcut):
                _layouts(body, shape, nhwc, found)
                _layouts(shortcut, shape, nhwc, found)
        if not isinstance(layer, stack.Flatten):
            flat = None
        shape = stack.output_shape((layer,), shape)


def _to_tf(weight: np.ndarray, layout: ToWorkload) -> np.ndarray:
    if isinstance(layout, FlatRows):
        return layout.to_tf(weight)
    return weight if layout is None else weight.transpose(np.argsort(layout))


def apply(layers: tuple[stack.Layer, ...], p: dict[str, tf.Variable], x: tf.Tensor, data_format: str) -> tf.Tensor:
    """x (NHWC or NCHW, as `data_format`) through the layers, with `p` in TF's layouts."""
    nhwc = data_format == "NHWC"
    channels, spatial = (3, (1, 2)) if nhwc else (1, (2, 3))

    def padding(pad: int) -> list[list[int]]:
        return [[0, 0], [pad, pad], [pad, pad], [0, 0]] if nhwc else [[0, 0], [0, 0], [pad, pad], [pad, pad]]

    for i, layer in enumerate(layers):
        match layer:
            case stack.Conv(name, _, _, stride, pad, bias):
                x = tf.nn.conv2d(x, p[f"{name}.weight"], stride, padding(pad) if pad else "VALID",
                                 data_format=data_format)  # fmt: skip
                if bias:
                    x = tf.nn.bias_add(x, p[f"{name}.bias"], data_format=data_format)
            case stack.ReLU():
                x = tf.nn.relu(x)
            case stack.MaxPool(kernel, stride, pad):
                if pad and stride == 1 and 2 * pad == kernel - 1:
                    x = tf.nn.max_pool2d(x, kernel, 1, "SAME", data_format=data_format)
                else:
                    if pad:
                        x = tf.pad(x, padding(pad), constant_values=-math.inf)
                    x = tf.nn.max_pool2d(x, kernel, stride, "VALID", data_format=data_format)
            case stack.GlobalAvgPool():
                x = tf.reduce_mean(x, axis=spatial)
            case stack.Flatten():
                if nhwc and x.shape.rank == 4 and not _followed_by_linear(layers, i):
                    x = tf.transpose(x, (0, 3, 1, 2))  # (C, H, W) order; a following Linear has its rows permuted
                x = tf.reshape(x, (x.shape[0], -1))
            case stack.Linear(name):
                x = tf.nn.bias_add(tf.matmul(x, p[f"{name}.weight"]), p[f"{name}.bias"])
            case stack.LayerNorm(name):
                x = _layer_norm(x, p[f"{name}.weight"], p[f"{name}.bias"])
            case stack.GELU():
                x = tf.nn.gelu(x, approximate=True)
            case stack.SelfAttention(name, heads, causal):
                x = _attention(x, p, name, heads, causal)
            case stack.BatchNorm(name):
                x = _batch_norm(x, p[f"{name}.weight"], p[f"{name}.bias"], (0, *spatial), nhwc)
            case stack.LogSoftmax():
                x = tf.nn.log_softmax(x, axis=-1)
            case stack.Concat(branches):
                x = tf.concat([apply(branch, p, x, data_format) for branch in branches], axis=channels)
            case stack.Residual(body, shortcut):
                x = apply(body, p, x, data_format) + (apply(shortcut, p, x, data_format) if shortcut else x)
            case _:
                raise NotImplementedError(f"{type(layer).__name__} layers are not built by the tensorflow backends")
    return x


def _batch_norm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, axes: tuple[int, ...], nhwc: bool) -> tf.Tensor:
    """Batch statistics over `axes`, normalized in at least float32 (see the module docstring)."""
    compute = tf.float32 if x.dtype in (tf.float16, tf.bfloat16) else x.dtype
    xc = tf.cast(x, compute)
    mean, variance = tf.nn.moments(xc, axes, keepdims=True)
    gamma, beta = tf.cast(gamma, compute), tf.cast(beta, compute)
    if not nhwc:  # (C,) against (N, C, H, W): per channel, along axis 1
        gamma, beta = tf.reshape(gamma, (-1, 1, 1)), tf.reshape(beta, (-1, 1, 1))
    return tf.cast(tf.nn.batch_normalization(xc, mean, variance, beta, gamma, stack.BN_EPS), x.dtype)


def _layer_norm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor) -> tf.Tensor:
    """Over the last axis, in at least float32 (as _batch_norm)."""
    compute = tf.float32 if x.dtype in (tf.float16, tf.bfloat16) else x.dtype
    xc = tf.cast(x, compute)
    mean, variance = tf.nn.moments(xc, [-1], keepdims=True)
    y = tf.nn.batch_normalization(xc, mean, variance, tf.cast(beta, compute), tf.cast(gamma, compute), stack.BN_EPS)
    return tf.cast(y, x.dtype)


def _attention(x: tf.Tensor, p: dict[str, tf.Variable], name: str, heads: int, causal: bool) -> tf.Tensor:
    """nanoGPT's causal self-attention on a (batch, seq, d) tensor, written out in tf ops."""
    n, seq, d = x.shape
    dh = d // heads
    qkv = tf.nn.bias_add(tf.matmul(x, p[f"{name}.qkv.weight"]), p[f"{name}.qkv.bias"])

    def split(i: int) -> tf.Tensor:  # (batch, heads, seq, dh)
        return tf.transpose(tf.reshape(qkv[..., i * d : (i + 1) * d], (n, seq, heads, dh)), (0, 2, 1, 3))

    q, k, v = split(0), split(1), split(2)
    scores = tf.matmul(q, k, transpose_b=True) * tf.cast(1.0 / math.sqrt(dh), x.dtype)
    if causal:  # a position sees itself and the positions before it
        keep = tf.cast(tf.linalg.band_part(tf.ones((seq, seq)), -1, 0), tf.bool)
        scores = tf.where(keep, scores, tf.cast(-math.inf, x.dtype))
    out = tf.reshape(tf.transpose(tf.matmul(tf.nn.softmax(scores, axis=-1), v), (0, 2, 1, 3)), (n, seq, d))
    return tf.nn.bias_add(tf.matmul(out, p[f"{name}.proj.weight"]), p[f"{name}.proj.bias"])


def build(layers: tuple[stack.Layer, ...], input_shape: tuple[int, ...], weights: dict[str, np.ndarray],
          dtype: tf.DType, data_format: str) -> Built:  # fmt: skip
    """The stack for an input of `input_shape` (NCHW images, or (batch, seq, d) sequences, which have no layout to
    choose), its weights converted once to TF's layouts in `dtype`."""
    if len(input_shape) not in (3, 4):
        raise NotImplementedError("the tensorflow backends build image (NCHW) and sequence (batch, seq, d) stacks")
    layouts: dict[str, ToWorkload] = {}
    _layouts(layers, input_shape[1:], data_format == "NHWC" and len(input_shape) == 4, layouts)
    variables = [tf.Variable(tf.cast(_to_tf(weights[name], layouts[name]), dtype), name=name) for name in weights]
    params = dict(zip(weights, variables, strict=True))
    if len(input_shape) == 4:
        notes = {"data_format": data_format, "filter_format": "HWIO",
                 "max_pool_padding": "SAME where exactly the same, else tf.pad with -inf then VALID",
                 "batch_norm": "tf.nn.moments + tf.nn.batch_normalization, batch statistics, in at least float32",
                 }  # fmt: skip
    else:  # a sequence has no image layout: an NHWC note would be false
        notes = {"kernel_format": "(in, out)",
                 "layer_norm": "tf.nn.moments + tf.nn.batch_normalization over the last axis, in at least float32",
                 "attention": "tf.matmul, causal mask by tf.linalg.band_part, tf.nn.softmax",
                 "gelu": "tf.nn.gelu(approximate=True)"}  # fmt: skip
    return Built(
        variables=variables,
        forward=lambda x: apply(layers, params, x, data_format),
        grads=[(name, i, layouts[name]) for i, name in enumerate(weights)],
        notes=notes,
    )


__all__ = ["Built", "FlatRows", "apply", "build"]
