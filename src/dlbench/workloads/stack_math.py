"""The math of a layer stack (stack.py) in plain NumPy: forward and hand-written backward of each layer kind, and
the stack composed from them. Like numpy_math.py it computes in the dtype it is given (float64 for the reference,
float32/float16 for the numpy backend) and never upcasts behind the caller's back.

Activations are NHWC inside (im2col patches are shifted slices there, and each convolution is one matmul whose
result is already the next layer's input); the stack's input is NCHW and an output that is still an image is
returned NCHW. Weights stay in the stack's layouts (OIHW, (out, in)); Flatten flattens in (C, H, W) order.
Worker-side module: NumPy and the standard library only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dlbench.workloads.stack import (
    BN_EPS,
    GELU,
    BatchNorm,
    Concat,
    Conv,
    Flatten,
    GlobalAvgPool,
    Layer,
    LayerNorm,
    Linear,
    LogSoftmax,
    MaxPool,
    ReLU,
    Residual,
    SelfAttention,
)

Arrays = dict[str, np.ndarray]


def _windows(padded: np.ndarray, k: int, stride: int, ho: int, wo: int) -> list[tuple[int, int, np.ndarray]]:
    """(ky, kx, the strided view of every window's (ky, kx) element), row-major over (ky, kx)."""
    span_y, span_x = stride * (ho - 1) + 1, stride * (wo - 1) + 1
    return [(ky, kx, padded[:, ky : ky + span_y : stride, kx : kx + span_x : stride, :])
            for ky in range(k) for kx in range(k)]  # fmt: skip


def _out(n: int, k: int, stride: int, pad: int) -> int:
    return (n + 2 * pad - k) // stride + 1


def im2col(x: np.ndarray, k: int, stride: int, pad: int) -> np.ndarray:
    """x (N, H, W, C) -> (N·Ho·Wo, C·k·k), each row a zero-padded patch ordered (c, ky, kx) like OIHW's memory."""
    n, h, w, c = x.shape
    ho, wo = _out(h, k, stride, pad), _out(w, k, stride, pad)
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    cols = np.empty((n, ho, wo, c, k, k), dtype=x.dtype)
    for ky, kx, view in _windows(padded, k, stride, ho, wo):
        cols[..., ky, kx] = view
    return cols.reshape(n * ho * wo, c * k * k)


def col2im(cols: np.ndarray, shape: tuple[int, ...], k: int, stride: int, pad: int) -> np.ndarray:
    """The adjoint of im2col: each patch's gradient added back onto the pixels it was copied from."""
    n, h, w, c = shape
    ho, wo = _out(h, k, stride, pad), _out(w, k, stride, pad)
    cols = cols.reshape(n, ho, wo, c, k, k)
    padded = np.zeros((n, h + 2 * pad, w + 2 * pad, c), dtype=cols.dtype)
    for ky, kx, view in _windows(padded, k, stride, ho, wo):
        view += cols[..., ky, kx]  # a view of `padded`: adds in place
    return padded[:, pad : pad + h, pad : pad + w, :]


def _conv(layer: Conv, w: Arrays, x: np.ndarray) -> tuple[np.ndarray, Any]:
    n, h, wd, _ = x.shape
    weight = w[f"{layer.name}.weight"]
    out = im2col(x, layer.kernel, layer.stride, layer.pad) @ weight.reshape(weight.shape[0], -1).T
    if layer.bias:
        out = out + w[f"{layer.name}.bias"]
    ho, wo = _out(h, layer.kernel, layer.stride, layer.pad), _out(wd, layer.kernel, layer.stride, layer.pad)
    return out.reshape(n, ho, wo, -1), x  # keep the input, not its k² times larger patch matrix


def _conv_back(layer: Conv, w: Arrays, x: np.ndarray, d: np.ndarray, grads: Arrays, need: bool) -> Any:
    weight = w[f"{layer.name}.weight"]
    d_flat = d.reshape(-1, d.shape[-1])
    cols = im2col(x, layer.kernel, layer.stride, layer.pad)
    grads[f"{layer.name}.weight"] = (d_flat.T @ cols).reshape(weight.shape)
    if layer.bias:
        grads[f"{layer.name}.bias"] = d_flat.sum(axis=0)
    if not need:
        return None
    return col2im(d_flat @ weight.reshape(weight.shape[0], -1), x.shape, layer.kernel, layer.stride, layer.pad)


def _pool(layer: MaxPool, x: np.ndarray) -> tuple[np.ndarray, Any]:
    n, h, w, c = x.shape
    k, s, p = layer.kernel, layer.stride, layer.pad
    ho, wo = _out(h, k, s, p), _out(w, k, s, p)
    padded = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), constant_values=-np.inf)
    stacked = np.stack([view for _, _, view in _windows(padded, k, s, ho, wo)], axis=-1)
    index = stacked.argmax(axis=-1)  # ties: the first in row-major order, so one position gets the gradient
    return np.take_along_axis(stacked, index[..., None], axis=-1)[..., 0], (x.shape, index)


def _pool_back(layer: MaxPool, cache: Any, d: np.ndarray) -> np.ndarray:
    (n, h, w, c), index = cache
    k, s, p = layer.kernel, layer.stride, layer.pad
    padded = np.zeros((n, h + 2 * p, w + 2 * p, c), dtype=d.dtype)
    for j, (_, _, view) in enumerate(_windows(padded, k, s, *d.shape[1:3])):
        view += np.where(index == j, d, 0)
    return padded[:, p : p + h, p : p + w, :]


def _batchnorm(layer: BatchNorm, w: Arrays, x: np.ndarray) -> tuple[np.ndarray, Any]:
    axes = tuple(range(x.ndim - 1))
    mean = x.mean(axis=axes)
    inv = 1.0 / np.sqrt(x.var(axis=axes) + x.dtype.type(BN_EPS))
    xhat = (x - mean) * inv
    return xhat * w[f"{layer.name}.weight"] + w[f"{layer.name}.bias"], (xhat, inv)


def _batchnorm_back(layer: BatchNorm, w: Arrays, cache: Any, d: np.ndarray, grads: Arrays) -> np.ndarray:
    xhat, inv = cache
    axes = tuple(range(d.ndim - 1))
    grads[f"{layer.name}.weight"] = (d * xhat).sum(axis=axes)
    grads[f"{layer.name}.bias"] = d.sum(axis=axes)
    dxhat = d * w[f"{layer.name}.weight"]
    # d x = inv · (dxhat − mean(dxhat) − xhat · mean(dxhat · xhat)), the means over the batch statistics' axes
    return inv * (dxhat - dxhat.mean(axis=axes) - xhat * (dxhat * xhat).mean(axis=axes))  # type: ignore[no-any-return]


def _layernorm(layer: LayerNorm, w: Arrays, x: np.ndarray) -> tuple[np.ndarray, Any]:
    mean = x.mean(axis=-1, keepdims=True)
    inv = 1.0 / np.sqrt(x.var(axis=-1, keepdims=True) + x.dtype.type(BN_EPS))
    xhat = (x - mean) * inv
    return xhat * w[f"{layer.name}.weight"] + w[f"{layer.name}.bias"], (xhat, inv)


def _layernorm_back(layer: LayerNorm, w: Arrays, cache: Any, d: np.ndarray, grads: Arrays) -> np.ndarray:
    xhat, inv = cache
    grads[f"{layer.name}.weight"] = (d * xhat).reshape(-1, d.shape[-1]).sum(axis=0)
    grads[f"{layer.name}.bias"] = d.reshape(-1, d.shape[-1]).sum(axis=0)
    dxhat = d * w[f"{layer.name}.weight"]
    mean = dxhat.mean(axis=-1, keepdims=True)
    return inv * (dxhat - mean - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True))  # type: ignore[no-any-return]


_GELU_C = float(np.sqrt(2.0 / np.pi))


def _gelu(x: np.ndarray) -> tuple[np.ndarray, Any]:
    c, a = x.dtype.type(_GELU_C), x.dtype.type(0.044715)
    t = np.tanh(c * (x + a * x**3))
    return 0.5 * x * (1 + t), (x, t)


def _gelu_back(cache: Any, d: np.ndarray) -> np.ndarray:
    x, t = cache
    c, a = x.dtype.type(_GELU_C), x.dtype.type(0.044715)
    return d * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * a * x * x))  # type: ignore[no-any-return]


def _linear_rows(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    return x @ weight.T + bias  # type: ignore[no-any-return]


def _attention(layer: SelfAttention, w: Arrays, x: np.ndarray) -> tuple[np.ndarray, Any]:
    n, seq, d = x.shape
    heads, dh = layer.heads, d // layer.heads
    qkv = _linear_rows(x, w[f"{layer.name}.qkv.weight"], w[f"{layer.name}.qkv.bias"])  # (n, seq, 3d)
    q, k, v = (qkv[..., i * d : (i + 1) * d].reshape(n, seq, heads, dh).transpose(0, 2, 1, 3) for i in range(3))
    scores = (q @ k.transpose(0, 1, 3, 2)) * x.dtype.type(1.0 / np.sqrt(dh))  # (n, heads, seq, seq)
    if layer.causal:
        scores = np.where(np.tril(np.ones((seq, seq), dtype=bool)), scores, -np.inf)
    scores = scores - scores.max(axis=-1, keepdims=True)
    p = np.exp(scores)
    p = p / p.sum(axis=-1, keepdims=True)
    o = (p @ v).transpose(0, 2, 1, 3).reshape(n, seq, d)
    return _linear_rows(o, w[f"{layer.name}.proj.weight"], w[f"{layer.name}.proj.bias"]), (x, q, k, v, p, o)


def _attention_back(layer: SelfAttention, w: Arrays, cache: Any, d_out: np.ndarray, grads: Arrays) -> np.ndarray:
    x, q, k, v, p, o = cache
    n, seq, d = x.shape
    heads, dh = layer.heads, d // layer.heads
    grads[f"{layer.name}.proj.weight"] = d_out.reshape(-1, d).T @ o.reshape(-1, d)
    grads[f"{layer.name}.proj.bias"] = d_out.reshape(-1, d).sum(axis=0)
    do = (d_out @ w[f"{layer.name}.proj.weight"]).reshape(n, seq, heads, dh).transpose(0, 2, 1, 3)
    dp = do @ v.transpose(0, 1, 3, 2)
    dv = p.transpose(0, 1, 3, 2) @ do
    ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True)) * x.dtype.type(1.0 / np.sqrt(dh))  # masked: p = 0
    dq, dk = ds @ k, ds.transpose(0, 1, 3, 2) @ q
    dqkv = np.concatenate([t.transpose(0, 2, 1, 3).reshape(n, seq, d) for t in (dq, dk, dv)], axis=-1)
    grads[f"{layer.name}.qkv.weight"] = dqkv.reshape(-1, 3 * d).T @ x.reshape(-1, d)
    grads[f"{layer.name}.qkv.bias"] = dqkv.reshape(-1, 3 * d).sum(axis=0)
    return dqkv @ w[f"{layer.name}.qkv.weight"]


def forward(layers: tuple[Layer, ...], w: Arrays, x: np.ndarray) -> tuple[np.ndarray, list[Any]]:
    """x NHWC (or (N, F)) through the layers; returns the output and one cache entry per layer."""
    caches: list[Any] = []
    for layer in layers:
        cache: Any = None
        if isinstance(layer, Conv):
            x, cache = _conv(layer, w, x)
        elif isinstance(layer, ReLU):
            x = np.maximum(x, 0)
            cache = x
        elif isinstance(layer, MaxPool):
            x, cache = _pool(layer, x)
        elif isinstance(layer, GlobalAvgPool):
            cache = x.shape
            x = x.mean(axis=(1, 2))
        elif isinstance(layer, Flatten):
            cache = x.shape
            x = x.transpose(0, 3, 1, 2).reshape(x.shape[0], -1)  # (C, H, W) order
        elif isinstance(layer, Linear):
            cache = x
            x = x @ w[f"{layer.name}.weight"].T + w[f"{layer.name}.bias"]
        elif isinstance(layer, BatchNorm):
            x, cache = _batchnorm(layer, w, x)
        elif isinstance(layer, LayerNorm):
            x, cache = _layernorm(layer, w, x)
        elif isinstance(layer, GELU):
            x, cache = _gelu(x)
        elif isinstance(layer, SelfAttention):
            x, cache = _attention(layer, w, x)
        elif isinstance(layer, LogSoftmax):
            shifted = x - x.max(axis=-1, keepdims=True)
            x = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
            cache = x
        elif isinstance(layer, Concat):
            outs = [forward(branch, w, x) for branch in layer.branches]
            cache = ([c for _, c in outs], [o.shape[-1] for o, _ in outs])
            x = np.concatenate([o for o, _ in outs], axis=-1)
        elif isinstance(layer, Residual):
            body, body_cache = forward(layer.body, w, x)
            short, short_cache = forward(layer.shortcut, w, x)
            cache, x = (body_cache, short_cache), body + short
        caches.append(cache)
    return x, caches


def backward(layers: tuple[Layer, ...], w: Arrays, caches: list[Any], d: Any, grads: Arrays,
             need_input: bool) -> np.ndarray | None:  # fmt: skip
    """Adds every weight's gradient to `grads`; returns the input's gradient, or None where `need_input` is False
    and no layer before a weighted one needs it."""
    # Which layers must pass a gradient to their input: all after the first weighted layer, unless the caller needs
    # the stack's input gradient (a branch inside a network always does).
    needs = [need_input] * len(layers)
    if not need_input:
        for i, layer in enumerate(layers):
            if isinstance(layer, (Conv, Linear, BatchNorm, LayerNorm, SelfAttention, Concat, Residual)):
                needs[i + 1 :] = [True] * (len(layers) - i - 1)
                break
    for layer, cache, need in reversed(list(zip(layers, caches, needs))):  # noqa: B905 (Python 3.9: no strict=)
        if isinstance(layer, Conv):
            d = _conv_back(layer, w, cache, d, grads, need)
        elif isinstance(layer, ReLU):
            d = d * (cache > 0)  # at exactly 0 the derivative is taken as 0
        elif isinstance(layer, MaxPool):
            d = _pool_back(layer, cache, d)
        elif isinstance(layer, GlobalAvgPool):
            n, h, wd, c = cache
            d = np.broadcast_to(d[:, None, None, :] / d.dtype.type(h * wd), cache).copy()
        elif isinstance(layer, Flatten):
            n, h, wd, c = cache
            d = d.reshape(n, c, h, wd).transpose(0, 2, 3, 1)
        elif isinstance(layer, Linear):
            rows = d.reshape(-1, d.shape[-1])  # every leading axis (batch, sequence) is a row
            grads[f"{layer.name}.weight"] = rows.T @ cache.reshape(-1, cache.shape[-1])
            grads[f"{layer.name}.bias"] = rows.sum(axis=0)
            d = d @ w[f"{layer.name}.weight"] if need else None
        elif isinstance(layer, BatchNorm):
            d = _batchnorm_back(layer, w, cache, d, grads)
        elif isinstance(layer, LayerNorm):
            d = _layernorm_back(layer, w, cache, d, grads)
        elif isinstance(layer, GELU):
            d = _gelu_back(cache, d)
        elif isinstance(layer, SelfAttention):
            d = _attention_back(layer, w, cache, d, grads)
        elif isinstance(layer, LogSoftmax):
            d = d - np.exp(cache) * d.sum(axis=-1, keepdims=True)
        elif isinstance(layer, Concat):
            branch_caches, widths = cache
            pieces = np.split(d, np.cumsum(widths)[:-1], axis=-1)
            inputs: list[Any] = [backward(b, w, c, p, grads, need)
                                 for b, c, p in zip(layer.branches, branch_caches, pieces)]  # noqa: B905  # fmt: skip
            d = sum(inputs[1:], inputs[0]) if need else None
        elif isinstance(layer, Residual):
            from_body: Any = backward(layer.body, w, cache[0], d, grads, need)
            from_short: Any = backward(layer.shortcut, w, cache[1], d, grads, need) if layer.shortcut else d
            d = from_body + from_short if need else None
        if d is None:
            return None
    return np.asarray(d)


def loss_and_grads(layers: tuple[Layer, ...], weights: Arrays, x: np.ndarray) -> tuple[np.ndarray, Arrays]:
    """(output, gradient of mean(output) w.r.t. every weight) for an NCHW image (or an (N, seq, d) sequence), in
    the dtype given."""
    out, caches = forward(layers, weights, _inside(x))
    d = np.full(out.shape, 1.0 / out.size, dtype=out.dtype)
    grads: Arrays = {}
    backward(layers, weights, caches, d, grads, need_input=False)
    return _outside(out), {k: grads[k] for k in weights}


def output(layers: tuple[Layer, ...], weights: Arrays, x: np.ndarray) -> np.ndarray:
    return _outside(forward(layers, weights, _inside(x))[0])


def _inside(x: np.ndarray) -> np.ndarray:
    return x.transpose(0, 2, 3, 1) if x.ndim == 4 else x  # images NHWC inside


def _outside(x: np.ndarray) -> np.ndarray:
    return x.transpose(0, 3, 1, 2) if x.ndim == 4 else x


__all__ = ["backward", "col2im", "forward", "im2col", "loss_and_grads", "output"]
