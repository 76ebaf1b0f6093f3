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

from dlbench.workloads import numpy_math, stack_math
from dlbench.workloads.base import Workload
from dlbench.workloads.layers import LAYERS, widened

Arrays = dict[str, np.ndarray]


def reference(workload: Workload, size: dict[str, int], seed: int = 0) -> tuple[np.ndarray, Arrays]:
    """(output, gradient of mean(output) w.r.t. every weight) in float64, at `size`, from `seed`."""
    size = workload.size(size)
    weights = {k: v.astype(np.float64) for k, v in workload.make_weights(size, seed).items()}
    inputs = {k: v.astype(np.float64) for k, v in workload.make_inputs(size, seed).items()}
    return loss_and_grads(workload, size, weights, inputs)


def loss_and_grads(
    workload: Workload, size: dict[str, int], weights: Arrays, inputs: Arrays
) -> tuple[np.ndarray, Arrays]:
    """The workload's output and gradients in the arrays' dtype: a layer stack's from its records (stack_math), the
    others' from numpy_math."""
    layers_for = getattr(workload, "layers_for", None)  # a layer stack (workloads/convnets.StackWorkload)
    if layers_for is not None:
        return stack_math.loss_and_grads(layers_for(size), weights, inputs["x"])
    return numpy_math.loss_and_grads(workload.name, weights, inputs)


# The NumPy dtype that stands in for a precision when the reference measures how well the function can be computed
# in it, and the factor that scales that dtype's rounding to the precision's (bf16 keeps 8 significant bits,
# float16 11: 2**3; NumPy has no bfloat16).
TWIN_DTYPES: dict[str, tuple[type[np.floating], float]] = {
    "fp32": (np.float32, 1.0), "fp16": (np.float16, 1.0), "bf16": (np.float16, 8.0),
}  # fmt: skip


def twin_errors(
    workload: Workload, size: dict[str, int], precision: str, seed: int = 0
) -> tuple[float, dict[str, float]]:
    """How far NumPy itself lands from the float64 reference when it computes the same function, in the same order,
    in the precision's dtype: (forward error, {weight: gradient error}). A well-conditioned function gives about
    the dtype's rounding; an ill-conditioned one (a deep batch-norm network: ResNet-50's float32 gradients are a few
    percent off) gives more, and no backend can be held closer than that."""
    dtype, scale = TWIN_DTYPES[precision]
    size = workload.size(size)
    weights, inputs = workload.make_weights(size, seed), workload.make_inputs(size, seed)
    ref_out, ref_grads = loss_and_grads(
        workload, size, {k: v.astype(np.float64) for k, v in weights.items()},
        {k: v.astype(np.float64) for k, v in inputs.items()},
    )  # fmt: skip
    with np.errstate(over="ignore", invalid="ignore"):
        out, grads = loss_and_grads(
            workload, size, {k: v.astype(dtype) for k, v in weights.items()},
            {k: v.astype(dtype) for k, v in inputs.items()},
        )  # fmt: skip
    return scale * relative_error(out, ref_out), {k: scale * relative_error(grads[k], v) for k, v in ref_grads.items()}


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


__all__ = ["TWIN_DTYPES", "layer_reference", "loss_and_grads", "reference", "relative_error", "twin_errors"]
