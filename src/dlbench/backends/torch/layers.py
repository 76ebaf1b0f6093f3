"""PyTorch's layers for `dlbench probe` (see backends/layers.py for the contract), as a PyTorch user calls
them: torch.nn.functional (linear, conv2d, batch_norm in training mode, scaled_dot_product_attention, embedding,
max_pool2d), torch.softmax, and torch.lstm (the kernel nn.LSTM calls, given its four weights).

- fp32/fp16/bf16: inputs and weights converted to that dtype. amp-*: float32 weights and inputs, the layer run
  under torch.autocast(device, dtype) (what autocast keeps in float32, e.g. softmax, shows as `upcast`).
- backward: torch.autograd.grad of Σ float32(output) · g over every float input and weight.
- variant "compile": the layer function through torch.compile (inductor), dynamo reset first.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 — PyTorch's own idiom

from dlbench.backends.base import Unsupported
from dlbench.backends.layers import Built
from dlbench.backends.torch import helpers
from dlbench.workloads.layers import BN_EPS, LAYERS

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16,
          "amp-fp16": torch.float16, "amp-bf16": torch.bfloat16}  # fmt: skip


def _lstm(t: dict[str, torch.Tensor]) -> torch.Tensor:
    x = t["x"]
    h0 = x.new_zeros((1, x.shape[1], t["weight_hh"].shape[1]))
    weights = [t["weight_ih"], t["weight_hh"], t["bias_ih"], t["bias_hh"]]
    # torch.lstm(input, hx, params, has_biases, num_layers, dropout, train, bidirectional, batch_first)
    out, _, _ = torch.lstm(x, (h0, h0), weights, True, 1, 0.0, True, False, False)
    return out


_LAYERS: dict[str, Callable[[dict[str, torch.Tensor]], torch.Tensor]] = {
    "linear": lambda t: F.linear(t["x"], t["weight"], t["bias"]),
    "conv2d": lambda t: F.conv2d(t["x"], t["weight"], t["bias"], padding=1),
    "lstm": _lstm,
    "batchnorm": lambda t: F.batch_norm(t["x"], None, None, t["weight"], t["bias"], training=True, eps=BN_EPS),
    "softmax": lambda t: torch.softmax(t["x"], -1),
    "attention": lambda t: F.scaled_dot_product_attention(t["q"], t["k"], t["v"]),
    "embedding": lambda t: F.embedding(t["ids"], t["weight"]),
    "maxpool": lambda t: F.max_pool2d(t["x"], 2),
}


def _device(device: str) -> torch.device:
    if device == "cpu":
        return torch.device("cpu")
    if device == "cuda" and torch.cuda.is_available():
        helpers.full_fp32()  # fp32 means fp32, as in the torch backend
        return torch.device("cuda")
    raise Unsupported(f"device {device!r} is not available to torch {torch.__version__}")


def _numpy(value: torch.Tensor) -> tuple[np.ndarray, str]:
    return value.detach().to("cpu", torch.float64).numpy(), str(value.dtype).removeprefix("torch.")


def build(layer: str, direction: str, arrays: dict[str, np.ndarray], cotangent: np.ndarray, precision: str,
          device: str, variant: str) -> Built:  # fmt: skip
    dev = _device(device)
    amp = precision.startswith("amp-")
    stored = torch.float32 if amp else DTYPES[precision]
    tensors = {k: torch.from_numpy(v).to(dev, dtype=stored if v.dtype.kind == "f" else torch.int64, copy=True)
               for k, v in arrays.items()}  # fmt: skip
    function = _LAYERS[layer]
    if variant == "compile":
        from torch import _dynamo  # only here: the eager variant does not pay for its import

        _dynamo.reset()
        function = torch.compile(function)

    def region() -> contextlib.AbstractContextManager[Any]:
        return torch.autocast(dev.type, dtype=DTYPES[precision]) if amp else contextlib.nullcontext()

    if direction == "forward":

        def forward() -> Any:
            with torch.no_grad(), region():
                return function(tensors)

        return forward, lambda out: {"output": _numpy(out)}

    names = list(LAYERS[layer].differentiable)
    leaves = [tensors[k].requires_grad_(True) for k in names]
    g = torch.from_numpy(cotangent).to(dev, copy=True)

    def backward() -> Any:
        with region():
            out = function(tensors)
        return torch.autograd.grad((out.float() * g).sum(), leaves)

    return backward, lambda grads: {k: _numpy(v) for k, v in zip(names, grads, strict=True)}
