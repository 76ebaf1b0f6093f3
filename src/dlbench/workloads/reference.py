"""The one float64 reference: what `dlbench verify`, `dlbench probe` and the tests compare every framework with.

A workload's reference is its output and the gradient of mean(output) w.r.t. every weight, from the workload's
own seeded float32 weights and inputs upcast exactly to float64 (numpy_math.py computes in the dtype it is
given). A layer's reference is its output and the gradients of Σ output · g (layers.py). Agreement is the
relative error ‖value − reference‖ / ‖reference‖ per tensor; NaN or inf never agrees.
Worker-side module: NumPy and the standard library only.
"""

from __future__ import annotations

import math

import numpy as np

from dlbench.workloads import numpy_math
from dlbench.workloads.base import Workload
from dlbench.workloads.layers import LAYERS, widened

Arrays = dict[str, np.ndarray]


def reference(workload: Workload, size: dict[str, int], seed: int = 0) -> tuple[np.ndarray, Arrays]:
    """(output, gradient of mean(output) w.r.t. every weight) in float64, at `size`, from `seed`."""
    size = workload.size(size)
    weights = {k: v.astype(np.float64) for k, v in workload.make_weights(size, seed).items()}
    inputs = {k: v.astype(np.float64) for k, v in workload.make_inputs(size, seed).items()}
    return numpy_math.loss_and_grads(workload.name, weights, inputs)


def layer_reference(layer: str, arrays: Arrays, cotangent: np.ndarray) -> tuple[np.ndarray, Arrays]:
    """The float64 forward output and gradients (of Σ output · cotangent) of a probe layer at these arrays."""
    spec = LAYERS[layer]
    wide = widened(arrays)
    return spec.forward(wide), spec.backward(wide, cotangent.astype(np.float64))


def relative_error(value: np.ndarray, reference: np.ndarray) -> float:
    """‖value − reference‖ / ‖reference‖ in float64; inf for a shape mismatch, NaN or inf."""
    value = np.asarray(value, dtype=np.float64)
    if value.shape != reference.shape:
        return math.inf
    denominator = float(np.linalg.norm(reference))
    error = float(np.linalg.norm(value - reference)) / (denominator or 1.0)
    return error if math.isfinite(error) else math.inf


__all__ = ["layer_reference", "reference", "relative_error"]
