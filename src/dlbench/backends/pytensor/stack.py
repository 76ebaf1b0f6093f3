"""A layer stack (dlbench.workloads.stack) as a PyTensor graph, written from tensor primitives as a PyTensor 3 user
must: PyTensor dropped Theano's `nnet.conv2d`, `pool_2d` and `bn` (pymc-devs/pytensor#124; #1196 asks what
replaces them: nothing yet), and what remains, `pytensor.tensor.signal.convolve2d`, is a one-channel signal
convolution (scipy.signal.convolve in Python, no stride, no sum over input channels), not a network's layer.

The generalization of backend.py's VGG-16 (same conventions, so the same C ops serve both):
- activations NHWC inside; the NCHW input is transposed once, an output that is still an image is transposed back;
- a convolution k/s/p is im2col, the zero-padded input's k² shifted slices with step s stacked on a new last axis,
  columns ordered (c, ky, kx) like OIHW's rows, then ONE dot with the weight reshaped (a view) to (O, C·k²);
  a 1x1 convolution is the (strided) input itself, reshaped: no copy of patches;
- a max-pool k/s/p is the elementwise maximum of the k² shifted strided slices of the input padded with -inf
  (exact for any input; PyTensor fuses the maxima into one loop and needs no k²-times larger buffer);
- batch norm from the batch's mean and (population) variance over N, H, W; log-softmax is PyTensor's
  `special.log_softmax` (a symbolic op that expands to the stabilized elementwise graph);
- an inception module concatenates its branches on the channel axis, a residual block adds its shortcut;
- the transformer block ((n, seq, d) input, no image layout): a Linear on a sequence is one dot of the
  (n·seq, d) rows; layer norm from the mean and variance over the last axis; the tanh GELU written out;
  attention as nanoGPT writes it: q, k, v sliced from the fused projection and reshaped to (n, heads, seq, dh),
  `pt.matmul` for the scores (scaled) and for the weighted values, the causal mask a `pt.switch` on position
  indices (later positions get -inf), `special.softmax` (an OpFromGraph in PyTensor 3: see backend.py for the
  mode its inner graph compiles in).
Constants carry the activations' dtype (a Python float would upcast float32 to float64). Spatial sizes are
symbolic scalars computed from the graph's INPUT shape (see backend._conv3x3_relu: shapes read off deep
activations make PyTensor build a shape graph of the whole network), channel counts are Python ints.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytensor.tensor as pt

from dlbench.backends.base import Unsupported
from dlbench.workloads import stack

# (n, h, w, c) of an NHWC activation, or (n, c) of a feature matrix; n, h, w symbolic, c an int.
Dims = tuple[Any, ...]


def _out(size: Any, kernel: int, stride: int, pad: int) -> Any:
    if stride == 1 and kernel == 2 * pad + 1:
        return size  # a "same" window: keep the input's own size variable
    return (size + 2 * pad - kernel) // stride + 1


def _padded(y: Any, dims: Dims, pad: int, value: float) -> Any:
    if pad == 0:
        return y
    n, h, w, c = dims
    base = pt.full((n, h + 2 * pad, w + 2 * pad, c), np.asarray(value, dtype=y.dtype))
    return pt.set_subtensor(base[:, pad:-pad, pad:-pad, :], y)


def _windows(padded: Any, kernel: int, stride: int) -> list[Any]:
    """The (ky, kx) element of every window, as strided slices, row-major over (ky, kx). Every bound is a
    constant: padded[ky : ky - k + 1 : s] has exactly (size - k) // s + 1 elements, the output's size, and
    constant slices keep PyTensor's shape inference (a large part of its rewrite time) cheap."""
    if kernel == stride == 1:
        return [padded]
    step = stride if stride > 1 else None
    return [padded[:, ky : ky - kernel + 1 or None : step, kx : kx - kernel + 1 or None : step, :]
            for ky in range(kernel) for kx in range(kernel)]  # fmt: skip


def _conv(layer: stack.Conv, y: Any, dims: Dims, w: dict[str, Any]) -> tuple[Any, Dims]:
    n, h, wd, c = dims
    k, s, p, out = layer.kernel, layer.stride, layer.pad, layer.out
    ho, wo = _out(h, k, s, p), _out(wd, k, s, p)
    windows = _windows(_padded(y, dims, p, 0.0), k, s)
    patches = windows[0] if k == 1 else pt.stack(windows, axis=-1)  # (N, Ho, Wo, C[, k²])
    cols = patches.reshape((n * ho * wo, c * k * k))
    weight = w[f"{layer.name}.weight"].reshape((out, c * k * k))
    y = pt.dot(cols, weight.T).reshape((n, ho, wo, out))
    if layer.bias:
        y = y + w[f"{layer.name}.bias"]  # on the 4-D map, where it fuses with the ReLU that follows
    return y, (n, ho, wo, out)


def _max_pool(layer: stack.MaxPool, y: Any, dims: Dims) -> tuple[Any, Dims]:
    n, h, wd, c = dims
    k, s, p = layer.kernel, layer.stride, layer.pad
    ho, wo = _out(h, k, s, p), _out(wd, k, s, p)
    return functools.reduce(pt.maximum, _windows(_padded(y, dims, p, -np.inf), k, s)), (n, ho, wo, c)


def _batchnorm(layer: stack.BatchNorm, y: Any, w: dict[str, Any]) -> Any:
    axes = tuple(range(y.ndim - 1))  # every axis but the channels
    eps = np.asarray(stack.BN_EPS, dtype=y.dtype)
    xhat = (y - y.mean(axis=axes)) / pt.sqrt(y.var(axis=axes) + eps)
    return xhat * w[f"{layer.name}.weight"] + w[f"{layer.name}.bias"]


def _linear(y: Any, dims: Dims, weight: Any, bias: Any, out: int) -> tuple[Any, Dims]:
    """(n, f) or (n, seq, f) rows times the (out, f) weight's transpose, plus the bias: one dot either way."""
    if len(dims) == 2:
        return pt.dot(y, weight.T) + bias, (dims[0], out)
    n, seq, f = dims
    return (pt.dot(y.reshape((n * seq, f)), weight.T) + bias).reshape((n, seq, out)), (n, seq, out)


def _layernorm(layer: stack.LayerNorm, y: Any, w: dict[str, Any]) -> Any:
    """Mean and variance over the features, summed in float32 and declared float32 (`dtype` and `acc_dtype`), then
    cast back: PyTensor sums float32 in a float64 accumulator by default, and its JAX linker returns that
    accumulator, which would carry float64 through the rest of the block."""
    eps = np.asarray(stack.BN_EPS, dtype=y.dtype)
    mean = functools.partial(pt.mean, axis=-1, keepdims=True, dtype="float32", acc_dtype="float32")
    centered = y - mean(y).astype(y.dtype)
    xhat = centered / pt.sqrt(mean(centered**2).astype(y.dtype) + eps)
    return xhat * w[f"{layer.name}.weight"] + w[f"{layer.name}.bias"]


def _gelu(y: Any) -> Any:
    c, a = (np.asarray(v, dtype=y.dtype) for v in (np.sqrt(2.0 / np.pi), 0.044715))
    half, one = np.asarray(0.5, dtype=y.dtype), np.asarray(1.0, dtype=y.dtype)
    return half * y * (one + pt.tanh(c * (y + a * y**3)))


def _attention(layer: stack.SelfAttention, y: Any, dims: Dims, w: dict[str, Any]) -> Any:
    n, seq, d = dims
    heads, name = layer.heads, layer.name
    dh = d // heads
    qkv, _ = _linear(y, dims, w[f"{name}.qkv.weight"], w[f"{name}.qkv.bias"], 3 * d)
    q, k, v = (qkv[:, :, i * d : (i + 1) * d].reshape((n, seq, heads, dh)).transpose(0, 2, 1, 3) for i in range(3))
    scores = pt.matmul(q, k.transpose(0, 1, 3, 2)) * np.asarray(1.0 / np.sqrt(dh), dtype=y.dtype)
    if layer.causal:  # a position sees itself and the positions before it
        position = pt.arange(seq)
        scores = pt.switch(pt.ge(position[:, None], position[None, :]), scores, np.asarray(-np.inf, dtype=y.dtype))
    out = pt.matmul(pt.special.softmax(scores, axis=-1), v).transpose(0, 2, 1, 3).reshape((n, seq, d))
    return _linear(out, dims, w[f"{name}.proj.weight"], w[f"{name}.proj.bias"], d)[0]


def _layers(layers: tuple[stack.Layer, ...], y: Any, dims: Dims, w: dict[str, Any]) -> tuple[Any, Dims]:
    for layer in layers:
        match layer:
            case stack.Conv():
                y, dims = _conv(layer, y, dims, w)
            case stack.ReLU():
                y = pt.maximum(y, 0)
            case stack.MaxPool():
                y, dims = _max_pool(layer, y, dims)
            case stack.GlobalAvgPool():
                y, dims = y.mean(axis=(1, 2)), (dims[0], dims[3])
            case stack.Flatten():
                n, h, wd, c = dims
                y, dims = y.transpose(0, 3, 1, 2).reshape((n, c * h * wd)), (n, None)  # (C, H, W) order
            case stack.Linear(name, out):
                y, dims = _linear(y, dims, w[f"{name}.weight"], w[f"{name}.bias"], out)
            case stack.LayerNorm():
                y = _layernorm(layer, y, w)
            case stack.GELU():
                y = _gelu(y)
            case stack.SelfAttention():
                y = _attention(layer, y, dims, w)
            case stack.BatchNorm():
                y = _batchnorm(layer, y, w)
            case stack.LogSoftmax():
                y = pt.special.log_softmax(y, axis=-1)
            case stack.Concat(branches):
                built = [_layers(branch, y, dims, w) for branch in branches]
                y = pt.concatenate([out for out, _ in built], axis=-1)
                dims = (*built[0][1][:-1], sum(d[-1] for _, d in built))
            case stack.Residual(body, shortcut):
                out, dims_out = _layers(body, y, dims, w)
                y, dims = out + (_layers(shortcut, y, dims, w)[0] if shortcut else y), dims_out
            case _:
                raise Unsupported(f"the pytensor backends build no {type(layer).__name__} layer")
    return y, dims


def build(layers: tuple[stack.Layer, ...], x: Any, w: dict[str, Any], shape: tuple[int, ...]) -> Any:
    """x: NCHW images or (n, seq, d) sequences, symbolic, of the concrete `shape` (its channel or feature count is
    read from it) -> the stack's output (NCHW if it is still an image)."""
    if len(shape) == 3:
        n, seq, _ = x.shape
        return _layers(layers, x, (n, seq, shape[2]), w)[0]
    n, _, h, wd = x.shape
    y, dims = _layers(layers, x.transpose(0, 2, 3, 1), (n, h, wd, shape[1]), w)
    return y.transpose(0, 3, 1, 2) if len(dims) == 4 else y


__all__ = ["build"]
