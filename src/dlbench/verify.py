"""Proof that a backend computes the workload's function: its forward output and every parameter gradient,
from the workload's seeded weights and inputs, against the float64 NumPy reference.

relative error = ‖out − ref‖ / ‖ref‖, per tensor; NaN or inf never passes; tolerances per precision
(dlbench.core.precisions).
Worker-side module (runs inside the backend's worker process): NumPy and the standard library only.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from dlbench.backends.base import Backend
from dlbench.core.cases import Case
from dlbench.core.precisions import FORWARD_TOLERANCE, GRADIENT_TOLERANCE
from dlbench.workloads import get_workload
from dlbench.workloads.reference import reference, relative_error

# Small sizes: enough to exercise every gate, every conv and pool, and fast for the float64 reference.
DEFAULT_SIZES: dict[str, dict[str, int]] = {
    "lstm": {"seq_len": 5, "batch": 3, "hidden": 16},
    "vgg16": {"batch": 2, "image": 32},
}


def verify_case(case: Case, backend: Backend) -> dict[str, Any]:
    """Run the backend's forward and train steps once each and compare them with the reference."""
    workload = get_workload(case.workload)
    size = workload.size(case.size)
    ref_out, ref_grads = reference(workload, size, case.seed)

    def fresh_step(mode: str) -> Any:
        weights, inputs = workload.make_weights(size, case.seed), workload.make_inputs(size, case.seed)
        step = backend.prepare(replace(case, mode=mode), workload, weights, inputs)
        value = step()
        backend.synchronize(value)
        return value

    forward_out = backend.to_numpy(fresh_step("forward"))
    train_out, grads = fresh_step("train")
    errors = {
        "forward": relative_error(forward_out, ref_out),
        "train_output": relative_error(backend.to_numpy(train_out), ref_out),
    }
    grad_errors = {
        name: relative_error(backend.to_numpy(grads[name]), ref) if name in grads else math.inf
        for name, ref in ref_grads.items()
    }
    worst = max(grad_errors, key=lambda k: grad_errors[k])
    forward_tolerance, gradient_tolerance = FORWARD_TOLERANCE[case.precision], GRADIENT_TOLERANCE[case.precision]
    forward_error = max(errors.values())
    return {
        "forward_error": forward_error,
        "worst_grad_error": grad_errors[worst],
        "worst_grad": worst,
        "grad_errors": grad_errors,
        "output_errors": errors,
        "forward_tolerance": forward_tolerance,
        "gradient_tolerance": gradient_tolerance,
        "passed": forward_error <= forward_tolerance and grad_errors[worst] <= gradient_tolerance,
        "missing_grads": sorted(set(ref_grads) - set(grads)),
    }
