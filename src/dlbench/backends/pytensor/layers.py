"""PyTensor's layers for `dlbench probe` (see backends/layers.py for the contract), written as the pytensor
backend writes its graphs: pt.dot, a 3x3 conv as im2col + one dot (PyTensor 3 has no conv2d op), the backend's
own scan LSTM, batch norm from mean/var, pt.special.softmax, attention from pt.matmul and softmax, advanced
indexing for the embedding, reshape + max for the pool; one pytensor.function per step.

- Static shapes; the layer's constants (scale, eps) are created in the layer's dtype, so no Python float
  promotes a float16 graph to float32 behind the user's back.
- fp32/fp16/bf16: inputs in that dtype (PyTensor has no bfloat16: its own TypeError is the finding). amp-*:
  PyTensor has no autocast; float32 inputs cast to the compute type inside the graph.
- backward: pytensor.grad of Σ float32(output) · g over every float input and weight.
- variant "CVM" (C VM linker, the pytensor backend) or "JAX" (pytensor-jax).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytensor
import pytensor.tensor as pt

# Importing the backend module first sets PyTensor's flags (compile cache, BLAS): the worker has loaded it already.
from dlbench.backends.base import Unsupported
from dlbench.backends.layers import Built
from dlbench.backends.pytensor.backend import _lstm
from dlbench.backends.pytensor.helpers import temp_files_in_cache
from dlbench.workloads.layers import BN_EPS, LAYERS

DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16", "amp-fp16": "float16", "amp-bf16": "bfloat16"}


def _const(value: float, like: Any) -> Any:
    return pt.constant(np.asarray(value, dtype=like.dtype))


def _conv(t: dict[str, Any]) -> Any:
    x, w = t["x"], t["weight"]
    n, c, h, wd = x.type.shape
    out_channels = w.type.shape[0]
    padded = pt.set_subtensor(pt.zeros((n, c, h + 2, wd + 2), dtype=x.dtype)[:, :, 1:-1, 1:-1], x)
    shifted = [padded[:, :, dy : dy + h, dx : dx + wd] for dy in range(3) for dx in range(3)]
    cols = pt.stack(shifted, axis=2).transpose(0, 3, 4, 1, 2).reshape((n * h * wd, c * 9))  # (c, ky, kx) order
    out = pt.dot(cols, w.reshape((out_channels, c * 9)).T) + t["bias"]
    return out.reshape((n, h, wd, out_channels)).transpose(0, 3, 1, 2)


def _batchnorm(t: dict[str, Any]) -> Any:
    x = t["x"]
    mean = x.mean(axis=(0, 2, 3), keepdims=True)
    var = x.var(axis=(0, 2, 3), keepdims=True)
    scale, shift = t["weight"].dimshuffle("x", 0, "x", "x"), t["bias"].dimshuffle("x", 0, "x", "x")
    return (x - mean) / pt.sqrt(var + _const(BN_EPS, x)) * scale + shift


def _attention(t: dict[str, Any]) -> Any:
    q, k, v = t["q"], t["k"], t["v"]
    scores = pt.matmul(q, k.transpose(0, 2, 1)) * _const(q.type.shape[-1] ** -0.5, q)
    return pt.matmul(pt.special.softmax(scores, axis=-1), v)


def _maxpool(t: dict[str, Any]) -> Any:
    x = t["x"]
    n, c, h, w = x.type.shape
    return x.reshape((n, c, h // 2, 2, w // 2, 2)).max(axis=(3, 5))


_LAYERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "linear": lambda t: pt.dot(t["x"], t["weight"].T) + t["bias"],
    "conv2d": _conv,
    "lstm": lambda t: _lstm(t["x"], t),
    "batchnorm": _batchnorm,
    "softmax": lambda t: pt.special.softmax(t["x"], axis=-1),
    "attention": _attention,
    "embedding": lambda t: t["weight"][t["ids"]],
    "maxpool": _maxpool,
}


def _numpy(value: Any) -> tuple[np.ndarray, str]:
    array = np.asarray(value)
    return array.astype(np.float64), str(array.dtype)


def build(layer: str, direction: str, arrays: dict[str, np.ndarray], cotangent: np.ndarray, precision: str,
          device: str, variant: str) -> Built:  # fmt: skip
    put: Callable[[np.ndarray], Any] = lambda a: a  # noqa: E731
    if variant == "JAX":
        import jax

        try:
            target = jax.devices({"cpu": "cpu", "cuda": "gpu"}[device])[0]
        except (KeyError, RuntimeError) as exc:
            raise Unsupported(f"JAX {jax.__version__} has no device {device!r}: {exc}") from exc
        put = lambda a: jax.device_put(a, target)  # noqa: E731
    elif device != "cpu":
        raise Unsupported(f"PyTensor's C linker runs on the CPU only, not on {device!r}")
    amp = precision.startswith("amp-")
    compute = DTYPES[precision]
    stored = "float32" if amp else compute
    names = LAYERS[layer].differentiable
    dtype = {k: (stored if v.dtype.kind == "f" else "int64") for k, v in arrays.items()}
    sym = {k: pt.tensor(k, dtype=dtype[k], shape=v.shape) for k, v in arrays.items()}
    t = {k: v.astype(compute) if amp and k in names else v for k, v in sym.items()}
    out = _LAYERS[layer](t)
    if direction == "forward":
        outputs = [out]
    else:
        # g is an input, not a constant: the rewrites would fold the bias gradients at compile time
        sym["g"] = pt.tensor("g", dtype="float32", shape=cotangent.shape)
        arrays, dtype = {**arrays, "g": cotangent}, {**dtype, "g": "float32"}
        loss = (out.astype("float32") * sym["g"]).sum()
        outputs = pytensor.grad(loss, [sym[k] for k in names])
    inputs = list(sym.values())
    args = [put(np.array(v, dtype=dtype[k], order="C")) for k, v in arrays.items()]
    with temp_files_in_cache():  # the JAX linker traces in the first call: that writes temporary files too
        function = pytensor.function(inputs, outputs, mode=variant, trust_input=True)
        function(*args)
    step = lambda: function(*args)  # noqa: E731
    if direction == "forward":
        return step, lambda result: {"output": _numpy(result[0])}
    return step, lambda result: {k: _numpy(v) for k, v in zip(names, result, strict=True)}
