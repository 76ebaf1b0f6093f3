"""The probe's layers, framework-neutral: shapes, seeded NumPy inputs and weights, and the float64 reference for
the forward output and the backward gradients. Every framework's layer (backends/layers/) computes these same
functions from these same arrays.

Backward is the gradient of loss = Σ output · g (g: a fixed seeded cotangent of the output's shape, the loss
reduced in float32 by the frameworks) with respect to the layer's float inputs and every parameter: a
vector-Jacobian product, so softmax and batch-norm get gradients that are not zero by symmetry (as mean(output)
would give them).

Shapes are small enough for a 2-core CPU yet large enough that the arithmetic, not the framework's per-call
overhead, dominates an fp32 step (0.1-1 ms and more on that CPU: see SHAPES below and the README), so that a
10x ratio against fp32 means a slow kernel, not a slow dispatcher.

Layouts are PyTorch's (NCHW images, OIHW conv weights, (out, in) linear weights, time-major LSTM with gates
i, f, g, o): backends/layers/* convert to their framework's layout when they build and back when they fetch.
Worker-side module: NumPy and the standard library only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

Arrays = dict[str, np.ndarray]
BN_EPS = 1e-5


@dataclass(frozen=True)
class LayerSpec:
    name: str
    description: str
    inputs: tuple[str, ...]  # what the layer is applied to (ids: integer, not differentiated)
    params: tuple[str, ...]  # its weights
    make: Callable[[np.random.Generator], Arrays]
    forward: Callable[[Arrays], np.ndarray]
    backward: Callable[[Arrays, np.ndarray], Arrays]  # (arrays, cotangent) -> gradients by name

    @property
    def differentiable(self) -> tuple[str, ...]:
        return tuple(n for n in (*self.inputs, *self.params) if n != "ids")


def _normal(rng: np.random.Generator, shape: tuple[int, ...], scale: float = 1.0) -> np.ndarray:
    return (rng.standard_normal(shape) * scale).astype(np.float32)


# -- linear: y = x Wᵀ + b -----------------------------------------------------------------------------------


def _linear_make(rng: np.random.Generator) -> Arrays:
    return {"x": _normal(rng, (256, 512)), "weight": _normal(rng, (512, 512), 512**-0.5),
            "bias": _normal(rng, (512,), 0.1)}  # fmt: skip


def _linear_forward(a: Arrays) -> np.ndarray:
    return a["x"] @ a["weight"].T + a["bias"]


def _linear_backward(a: Arrays, g: np.ndarray) -> Arrays:
    return {"x": g @ a["weight"], "weight": g.T @ a["x"], "bias": g.sum(0)}


# -- conv2d: 3x3, padding 1, stride 1, NCHW / OIHW ------------------------------------------------------------


def _im2col(x: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (N, H, W, C, 3, 3): every output position's 3x3 window of the zero-padded input."""
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(2, 3))  # (N, C, H, W, 3, 3)
    return windows.transpose(0, 2, 3, 1, 4, 5)


def _conv_make(rng: np.random.Generator) -> Arrays:
    return {"x": _normal(rng, (8, 32, 32, 32)), "weight": _normal(rng, (32, 32, 3, 3), (32 * 9) ** -0.5),
            "bias": _normal(rng, (32,), 0.1)}  # fmt: skip


def _conv_forward(a: Arrays) -> np.ndarray:
    out: np.ndarray = np.einsum("nhwcij,ocij->nohw", _im2col(a["x"]), a["weight"], optimize=True)
    return out + a["bias"][None, :, None, None]


def _conv_backward(a: Arrays, g: np.ndarray) -> Arrays:
    x, w = a["x"], a["weight"]
    d_weight = np.einsum("nhwcij,nohw->ocij", _im2col(x), g, optimize=True)
    # d_x is the full correlation of g with the 180°-rotated kernel, channels swapped: a 3x3 "same" conv again.
    d_x = np.einsum("nhwoij,ocij->nchw", _im2col(g), w[:, :, ::-1, ::-1], optimize=True)
    return {"x": d_x, "weight": d_weight, "bias": g.sum((0, 2, 3))}


# -- lstm: one layer, zero initial state, time-major (seq, batch, hidden), gates i, f, g, o --------------------


def _lstm_make(rng: np.random.Generator) -> Arrays:
    h = 128
    return {"x": _normal(rng, (16, 16, h)), "weight_ih": _normal(rng, (4 * h, h), h**-0.5),
            "weight_hh": _normal(rng, (4 * h, h), h**-0.5), "bias_ih": _normal(rng, (4 * h,), 0.1),
            "bias_hh": _normal(rng, (4 * h,), 0.1)}  # fmt: skip


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _lstm_steps(a: Arrays) -> tuple[np.ndarray, list[tuple[Any, ...]]]:
    x, w_ih, w_hh = a["x"], a["weight_ih"], a["weight_hh"]
    seq, batch, _ = x.shape
    hidden = w_hh.shape[1]
    h = np.zeros((batch, hidden), x.dtype)
    c = np.zeros((batch, hidden), x.dtype)
    out, saved = [], []
    for t in range(seq):
        gates = x[t] @ w_ih.T + a["bias_ih"] + h @ w_hh.T + a["bias_hh"]
        i, f = _sigmoid(gates[:, :hidden]), _sigmoid(gates[:, hidden : 2 * hidden])
        gg, o = np.tanh(gates[:, 2 * hidden : 3 * hidden]), _sigmoid(gates[:, 3 * hidden :])
        c_prev, h_prev = c, h
        c = f * c_prev + i * gg
        h = o * np.tanh(c)
        saved.append((h_prev, c_prev, i, f, gg, o, c))
        out.append(h)
    return np.stack(out), saved


def _lstm_forward(a: Arrays) -> np.ndarray:
    return _lstm_steps(a)[0]


def _lstm_backward(a: Arrays, g: np.ndarray) -> Arrays:
    _, saved = _lstm_steps(a)
    x, w_ih, w_hh = a["x"], a["weight_ih"], a["weight_hh"]
    grads = {k: np.zeros_like(a[k]) for k in ("x", "weight_ih", "weight_hh", "bias_ih")}
    dh_next = np.zeros_like(saved[0][0])
    dc_next = np.zeros_like(saved[0][1])
    for t in reversed(range(x.shape[0])):
        h_prev, c_prev, i, f, gg, o, c = saved[t]
        dh = g[t] + dh_next
        tanh_c = np.tanh(c)
        dc = dc_next + dh * o * (1 - tanh_c**2)
        d_gates = np.concatenate([dc * gg * i * (1 - i), dc * c_prev * f * (1 - f), dc * i * (1 - gg**2),
                                  dh * tanh_c * o * (1 - o)], axis=1)  # fmt: skip
        grads["x"][t] = d_gates @ w_ih
        grads["weight_ih"] += d_gates.T @ x[t]
        grads["weight_hh"] += d_gates.T @ h_prev
        grads["bias_ih"] += d_gates.sum(0)
        dh_next, dc_next = d_gates @ w_hh, dc * f
    grads["bias_hh"] = grads["bias_ih"].copy()
    return grads


# -- batchnorm: training mode (batch statistics over N, H, W per channel), eps 1e-5 ---------------------------


def _bn_make(rng: np.random.Generator) -> Arrays:
    return {"x": _normal(rng, (32, 64, 16, 16)) * 2 + 0.5, "weight": 1 + _normal(rng, (64,), 0.1),
            "bias": _normal(rng, (64,), 0.1)}  # fmt: skip


def _bn_parts(a: Arrays) -> tuple[np.ndarray, np.ndarray]:
    x = a["x"]
    mean = x.mean((0, 2, 3), keepdims=True)
    inv_std = 1 / np.sqrt(x.var((0, 2, 3), keepdims=True) + BN_EPS)
    return (x - mean) * inv_std, inv_std


def _bn_forward(a: Arrays) -> np.ndarray:
    x_hat, _ = _bn_parts(a)
    return x_hat * a["weight"][None, :, None, None] + a["bias"][None, :, None, None]


def _bn_backward(a: Arrays, g: np.ndarray) -> Arrays:
    x_hat, inv_std = _bn_parts(a)
    d_hat = g * a["weight"][None, :, None, None]
    d_x = inv_std * (d_hat - d_hat.mean((0, 2, 3), keepdims=True)
                     - x_hat * (d_hat * x_hat).mean((0, 2, 3), keepdims=True))  # fmt: skip
    return {"x": d_x, "weight": (g * x_hat).sum((0, 2, 3)), "bias": g.sum((0, 2, 3))}


# -- softmax over the last axis --------------------------------------------------------------------------------


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    out: np.ndarray = e / e.sum(-1, keepdims=True)
    return out


def _softmax_make(rng: np.random.Generator) -> Arrays:
    return {"x": _normal(rng, (256, 1024), 2.0)}


def _softmax_forward(a: Arrays) -> np.ndarray:
    return _softmax(a["x"])


def _softmax_backward(a: Arrays, g: np.ndarray) -> Arrays:
    y = _softmax(a["x"])
    return {"x": y * (g - (g * y).sum(-1, keepdims=True))}


# -- attention: softmax(q kᵀ / √d) v, batched matmuls ---------------------------------------------------------


def _attention_make(rng: np.random.Generator) -> Arrays:
    return {name: _normal(rng, (8, 128, 64)) for name in ("q", "k", "v")}


def _attention_parts(a: Arrays) -> tuple[np.ndarray, float]:
    scale = a["q"].shape[-1] ** -0.5
    return _softmax(a["q"] @ a["k"].transpose(0, 2, 1) * scale), scale


def _attention_forward(a: Arrays) -> np.ndarray:
    return _attention_parts(a)[0] @ a["v"]


def _attention_backward(a: Arrays, g: np.ndarray) -> Arrays:
    p, scale = _attention_parts(a)
    d_p = g @ a["v"].transpose(0, 2, 1)
    d_s = p * (d_p - (d_p * p).sum(-1, keepdims=True)) * scale
    return {"q": d_s @ a["k"], "k": d_s.transpose(0, 2, 1) @ a["q"], "v": p.transpose(0, 2, 1) @ g}


# -- embedding: a gather of table rows; its gradient scatters (adds) into the table -------------------------------


def _embedding_make(rng: np.random.Generator) -> Arrays:
    return {"ids": rng.integers(0, 8192, (64, 64)).astype(np.int64), "weight": _normal(rng, (8192, 256))}


def _embedding_forward(a: Arrays) -> np.ndarray:
    return a["weight"][a["ids"]]


def _embedding_backward(a: Arrays, g: np.ndarray) -> Arrays:
    d_weight = np.zeros_like(a["weight"])
    np.add.at(d_weight, a["ids"].reshape(-1), g.reshape(-1, g.shape[-1]))
    return {"weight": d_weight}


# -- max-pool 2x2, stride 2, NCHW -------------------------------------------------------------------------------


def _pool_make(rng: np.random.Generator) -> Arrays:
    """Values exactly representable in fp16 and bf16 (multiples of 1/16 below 4 in magnitude), distinct within
    each 2x2 window: the maximum is the same element in every precision, so a gradient that lands elsewhere is
    the kernel's doing, not a tie broken by rounding."""
    n, c, h, w = 16, 32, 32, 32
    windows = np.argsort(rng.random((n, c, h // 2, w // 2, 120)), axis=-1)[..., :4] - 60  # 4 distinct in -60..59
    x = windows.reshape(n, c, h // 2, w // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h, w)
    return {"x": (x / 16).astype(np.float32)}


def _pool_windows(x: np.ndarray) -> np.ndarray:
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h // 2, w // 2, 4)


def _pool_forward(a: Arrays) -> np.ndarray:
    out: np.ndarray = _pool_windows(a["x"]).max(-1)
    return out


def _pool_backward(a: Arrays, g: np.ndarray) -> Arrays:
    windows = _pool_windows(a["x"])
    routed = (windows == windows.max(-1, keepdims=True)) * g[..., None]  # one max per window (see _pool_make)
    n, c, h, w = a["x"].shape
    return {"x": routed.reshape(n, c, h // 2, w // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h, w)}


LAYERS: dict[str, LayerSpec] = {
    spec.name: spec
    for spec in (
        LayerSpec("linear", "x (256, 512) · Wᵀ (512, 512) + b", ("x",), ("weight", "bias"),
                  _linear_make, _linear_forward, _linear_backward),
        LayerSpec("conv2d", "3x3 conv, padding 1: x (8, 32, 32, 32) NCHW, 32 → 32 channels", ("x",),
                  ("weight", "bias"), _conv_make, _conv_forward, _conv_backward),
        LayerSpec("lstm", "one LSTM layer: seq 16, batch 16, hidden 128", ("x",),
                  ("weight_ih", "weight_hh", "bias_ih", "bias_hh"), _lstm_make, _lstm_forward, _lstm_backward),
        LayerSpec("batchnorm", "batch norm, training mode: x (32, 64, 16, 16)", ("x",), ("weight", "bias"),
                  _bn_make, _bn_forward, _bn_backward),
        LayerSpec("softmax", "softmax over the last axis of x (256, 1024)", ("x",), (),
                  _softmax_make, _softmax_forward, _softmax_backward),
        LayerSpec("attention", "softmax(q kᵀ/√64) v: q, k, v (8, 128, 64)", ("q", "k", "v"), (),
                  _attention_make, _attention_forward, _attention_backward),
        LayerSpec("embedding", "rows of an (8192, 256) table at (64, 64) ids", ("ids",), ("weight",),
                  _embedding_make, _embedding_forward, _embedding_backward),
        LayerSpec("maxpool", "2x2 max-pool, stride 2: x (16, 32, 32, 32)", ("x",), (),
                  _pool_make, _pool_forward, _pool_backward),
    )
}  # fmt: skip


def make_arrays(layer: str, seed: int = 0) -> tuple[Arrays, np.ndarray]:
    """The layer's inputs and weights (float32, ids int64) and the cotangent g of its output, from `seed`."""
    spec = LAYERS[layer]
    rng = np.random.default_rng([seed, list(LAYERS).index(layer)])
    arrays = spec.make(rng)
    out = spec.forward({k: v.astype(np.float64) if v.dtype.kind == "f" else v for k, v in arrays.items()})
    return arrays, _normal(rng, out.shape)


def reference(layer: str, arrays: Arrays, cotangent: np.ndarray) -> tuple[np.ndarray, Arrays]:
    """The float64 forward output and gradients of the layer at these (float32) arrays."""
    spec = LAYERS[layer]
    wide = {k: v.astype(np.float64) if v.dtype.kind == "f" else v for k, v in arrays.items()}
    return spec.forward(wide), spec.backward(wide, cotangent.astype(np.float64))
