"""Single layers per framework, for `dlbench probe`: one module per framework, each with the same function

    build(layer, direction, arrays, cotangent, precision, device, variant) -> (step, fetch)

- layer: a name from dlbench.workloads.layers.LAYERS; arrays: its float32 NumPy inputs and weights (ids int64) in
  the reference's layouts; cotangent: g, the upstream gradient of the output (backward's loss is Σ output · g,
  reduced in float32).
- precision: fp32, fp16, bf16 (inputs and weights stored in that type) or amp-fp16, amp-bf16 (float32 weights
  and inputs, compute in the low type: the framework's autocast where it has one, else a cast at compute).
- step() runs the layer once (forward: the output; backward: the gradients of every float input and weight) and
  returns framework values, untouched; fetch(value) converts them after timing to {name: (float64 array in the
  reference's layout, dtype name as returned)}. Whatever the framework cannot do raises, with its own message.

This registry maps each backend to its layers module and the variant of it (how it compiles). Importing it
imports no framework.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from dlbench.core.errors import unknown

# What build() returns: (step, fetch).
Built = tuple[Callable[[], Any], Callable[[Any], dict[str, tuple[np.ndarray, str]]]]

LAYER_MODULES: dict[str, tuple[str, str]] = {
    "torch": ("dlbench.backends.layers.torch", "eager"),
    "torch-compile": ("dlbench.backends.layers.torch", "compile"),
    "tensorflow": ("dlbench.backends.layers.tensorflow", "function"),
    "tensorflow-xla": ("dlbench.backends.layers.tensorflow", "xla"),
    "jax": ("dlbench.backends.layers.jax", "jit"),
    "pytensor": ("dlbench.backends.layers.pytensor", "CVM"),
    "pytensor-jax": ("dlbench.backends.layers.pytensor", "JAX"),
    "keras-jax": ("dlbench.backends.layers.keras", "jax"),
    "keras-torch": ("dlbench.backends.layers.keras", "torch"),
    "keras-tensorflow": ("dlbench.backends.layers.keras", "tensorflow"),
}
# Variants that recompile every layer × precision × direction (minutes on a 2-core CPU): probed when named.
COMPILED_VARIANTS: tuple[str, ...] = ("torch-compile", "tensorflow-xla", "pytensor-jax")


# Channels-last frameworks (TensorFlow, Keras): per layer, array name -> permutation from the reference's layout
# to theirs ("output" for the output and the cotangent g); fetch applies the inverse.
NHWC = (0, 2, 3, 1)
CHANNELS_LAST: dict[str, dict[str, tuple[int, ...]]] = {
    "conv2d": {"x": NHWC, "output": NHWC, "weight": (2, 3, 1, 0)},  # OIHW -> HWIO
    "batchnorm": {"x": NHWC, "output": NHWC},
    "maxpool": {"x": NHWC, "output": NHWC},
}


def layer_module(backend: str) -> tuple[str, str]:
    """(module, variant) of a backend's layers; UsageError for a backend without them."""
    try:
        return LAYER_MODULES[backend]
    except KeyError:
        raise unknown("backend for probe", backend, LAYER_MODULES) from None


__all__ = ["CHANNELS_LAST", "LAYER_MODULES", "Built", "layer_module"]
