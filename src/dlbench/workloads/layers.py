"""Single layers, framework-neutral, for `dlbench probe`: shapes, seeded NumPy inputs and weights, and the math of
each layer's forward output and backward gradients (the float64 reference is reference.layer_reference). Every
framework's layers (backends/<framework>/layers.py) compute these same functions from these same arrays.

Backward is the gradient of loss = Σ output · g (g: a fixed seeded cotangent of the output's shape, the loss
reduced in float32 by the frameworks) with respect to the layer's float inputs and every parameter: a
vector-Jacobian product, so softmax and batch-norm get gradients that are not zero by symmetry (as mean(output)
would give them). The LSTM, the 3x3 convolution and the max-pool are the workloads' own math (numpy_math.py).

Shapes are small enough for a 2-core CPU yet large enough that the arithmetic, not the framework's per-call
overhead, dominates an fp32 step (0.1-1 ms and more on that CPU: see the shapes below and the README), so that a
10x ratio against fp32 means a slow kernel, not a slow dispatcher.

Layouts are PyTorch's (NCHW images, OIHW conv weights, (out, in) linear weights, time-major LSTM with gates
i, f, g, o): each framework's layers convert to their framework's layout when they build and back when they fetch.
Worker-side module: NumPy and the standard library only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dlbench.workloads import numpy_math

Arrays = dict[str, np.ndarray]
BN_EPS = 1e-5
_NHWC, _NCHW = (0, 2, 3, 1), (0, 3, 1, 2)


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


# -- conv2d: 3x3, padding 1, stride 1, NCHW / OIHW: the workloads' conv on NHWC, transposed at its edges ---------


def _conv_make(rng: np.random.Generator) -> Arrays:
    return {"x": _normal(rng, (8, 32, 32, 32)), "weight": _normal(rng, (32, 32, 3, 3), (32 * 9) ** -0.5),
            "bias": _normal(rng, (32,), 0.1)}  # fmt: skip


def _conv_forward(a: Arrays) -> np.ndarray:
    return numpy_math.conv3x3_forward(a["x"].transpose(_NHWC), a["weight"], a["bias"]).transpose(_NCHW)


def _conv_backward(a: Arrays, g: np.ndarray) -> Arrays:
    grads = numpy_math.conv3x3_backward(a["x"].transpose(_NHWC), a["weight"], g.transpose(_NHWC))
    return {**grads, "x": grads["x"].transpose(_NCHW)}


# -- lstm: one layer, zero initial state, time-major (seq, batch, hidden), gates i, f, g, o --------------------


def _lstm_make(rng: np.random.Generator) -> Arrays:
    h = 128
    return {"x": _normal(rng, (16, 16, h)), "weight_ih": _normal(rng, (4 * h, h), h**-0.5),
            "weight_hh": _normal(rng, (4 * h, h), h**-0.5), "bias_ih": _normal(rng, (4 * h,), 0.1),
            "bias_hh": _normal(rng, (4 * h,), 0.1)}  # fmt: skip


def _lstm_forward(a: Arrays) -> np.ndarray:
    return numpy_math.lstm_forward(a, a["x"])[0]


def _lstm_backward(a: Arrays, g: np.ndarray) -> Arrays:
    _, cache = numpy_math.lstm_forward(a, a["x"])
    return numpy_math.lstm_backward(a, cache, g, input_grad=True)


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


# -- max-pool 2x2, stride 2, NCHW: the workloads' pool on NHWC, transposed at its edges --------------------------


def _pool_make(rng: np.random.Generator) -> Arrays:
    """Values exactly representable in fp16 and bf16 (multiples of 1/16 below 4 in magnitude), distinct within
    each 2x2 window: the maximum is the same element in every precision, so a gradient that lands elsewhere is
    the kernel's doing, not a tie broken by rounding."""
    n, c, h, w = 16, 32, 32, 32
    windows = np.argsort(rng.random((n, c, h // 2, w // 2, 120)), axis=-1)[..., :4] - 60  # 4 distinct in -60..59
    x = windows.reshape(n, c, h // 2, w // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h, w)
    return {"x": (x / 16).astype(np.float32)}


def _pool_forward(a: Arrays) -> np.ndarray:
    return numpy_math.max_pool_forward(a["x"].transpose(_NHWC))[0].transpose(_NCHW)


def _pool_backward(a: Arrays, g: np.ndarray) -> Arrays:
    _, index = numpy_math.max_pool_forward(a["x"].transpose(_NHWC))
    return {"x": numpy_math.max_pool_backward(g.transpose(_NHWC), index).transpose(_NCHW)}


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


def widened(arrays: Arrays) -> Arrays:
    """The arrays with every float one in float64 (integer ids kept): the reference's inputs."""
    return {k: v.astype(np.float64) if v.dtype.kind == "f" else v for k, v in arrays.items()}


def make_arrays(layer: str, seed: int = 0) -> tuple[Arrays, np.ndarray]:
    """The layer's inputs and weights (float32, ids int64) and the cotangent g of its output, from `seed`."""
    spec = LAYERS[layer]
    rng = np.random.default_rng([seed, list(LAYERS).index(layer)])
    arrays = spec.make(rng)
    out = spec.forward(widened(arrays))
    return arrays, _normal(rng, out.shape)


__all__ = ["BN_EPS", "LAYERS", "LayerSpec", "make_arrays", "widened"]
