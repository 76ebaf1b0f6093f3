"""The contract of a framework's layers for `dlbench probe` (backends/<framework>/layers.py, named by the
registry entry's `layers`): one function

    build(layer, direction, arrays, cotangent, precision, device, variant) -> (step, fetch)

- layer: a name from dlbench.workloads.layers.LAYERS; arrays: its float32 NumPy inputs and weights (ids int64) in
  the reference's layouts; cotangent: g, the upstream gradient of the output (backward's loss is Σ output · g,
  reduced in float32).
- precision: fp32, fp16, bf16 (inputs and weights stored in that type) or amp-fp16, amp-bf16 (float32 weights
  and inputs, compute in the low type: the framework's autocast where it has one, else a cast at compute).
- step() runs the layer once (forward: the output; backward: the gradients of every float input and weight) and
  returns framework values, untouched; fetch(value) converts them after timing to {name: (float64 array in the
  reference's layout, dtype name as returned)}. Whatever the framework cannot do raises, with its own message.

- variant: how the backend compiles the layer (BackendInfo.layers: "eager" or "compile" for torch, "jit" for jax,
  ...), so that a framework's compiled variants share its layers module.
Importing this module imports no framework.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

# What build() returns: (step, fetch).
Built = tuple[Callable[[], Any], Callable[[Any], dict[str, tuple[np.ndarray, str]]]]

# Channels-last frameworks (TensorFlow, Keras): per layer, array name -> permutation from the reference's layout
# to theirs ("output" for the output and the cotangent g); fetch applies the inverse.
NHWC = (0, 2, 3, 1)
CHANNELS_LAST: dict[str, dict[str, tuple[int, ...]]] = {
    "conv2d": {"x": NHWC, "output": NHWC, "weight": (2, 3, 1, 0)},  # OIHW -> HWIO
    "batchnorm": {"x": NHWC, "output": NHWC},
    "maxpool": {"x": NHWC, "output": NHWC},
}


__all__ = ["CHANNELS_LAST", "NHWC", "Built"]
