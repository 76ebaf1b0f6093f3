"""Verification: proof that a backend computes the workload's function, before anything of it is timed.

Worker side (verify_case, in the backend's worker process): its forward output and every parameter gradient,
from the workload's seeded weights and inputs, against the float64 NumPy reference (dlbench.workloads.reference);
relative error = ‖out − ref‖ / ‖ref‖ per tensor, NaN or inf never passes, tolerances per precision
(dlbench.core.precisions).
Parent side: inside a run, before the first timed case of each backend × workload × precision × device, the same
worker verifies it at small sizes (verification_case, group_key); a group that fails is not timed (blocked_result).
On a device other than the CPU, each timed size is verified too, at batch 1 (verification_cases): cuDNN and XLA
choose other algorithms at the sizes timed than at the small ones, and the float64 reference of the seed's
largest case at batch 1 takes seconds on the host (VGG-16 at 224×224: 5.6 s on this project's 2 busy cores).
`dlbench verify` runs the same check for every backend.
Worker-side module: NumPy and the standard library only.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from dlbench.backends.base import Backend
from dlbench.core.cases import Case
from dlbench.core.precisions import FORWARD_TOLERANCE, GRADIENT_TOLERANCE
from dlbench.workloads import get_workload
from dlbench.workloads.reference import reference, relative_error, twin_errors

# Small sizes: enough to exercise every gate, every conv and pool, and fast for the float64 reference.
DEFAULT_SIZES: dict[str, dict[str, int]] = {
    "lstm": {"seq_len": 5, "batch": 3, "hidden": 16},
    "vgg16": {"batch": 2, "image": 32},
    # The CNNs at about their smallest images (the last feature maps 1x1 or 2x2); ResNet-50 at 64 so that its
    # last batch norms see 8 values per channel, not 2 (batch statistics of two values are ±1 whatever the input).
    "alexnet": {"batch": 2, "image": 63},
    "overfeat": {"batch": 2, "image": 71},
    "vgga": {"batch": 2, "image": 32},
    "googlenet": {"batch": 2, "image": 32},
    "resnet50": {"batch": 2, "image": 64},
    "transformer": {"batch": 2, "seq_len": 16, "d_model": 32, "heads": 4},
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
    record = judge(errors, grad_errors, FORWARD_TOLERANCE[case.precision], GRADIENT_TOLERANCE[case.precision])
    if not record["passed"] and all(math.isfinite(e) for e in (*errors.values(), *grad_errors.values())):
        # Before failing a backend, measure how well the function can be computed at all in this precision: NumPy
        # computing it in that dtype (twin_errors). Where that lands far from float64, no backend can do better.
        twin = twin_errors(workload, size, case.precision, case.seed)
        record = judge(errors, grad_errors, FORWARD_TOLERANCE[case.precision], GRADIENT_TOLERANCE[case.precision],
                       twin)  # fmt: skip
    record["missing_grads"] = sorted(set(ref_grads) - set(grads))
    return record


# A backend may land this many times farther from the reference than NumPy's own computation in the same dtype
# (different summation orders and kernels round differently: PyTorch's float32 ResNet-50 gradients were 0.6x to
# 2x NumPy's). A tensor whose allowed error reaches UNCHECKABLE carries no checkable information in that precision:
# it is listed as unchecked, never counted as agreeing; a forward output whose allowed error would reach
# UNCHECKABLE_FORWARD fails, whatever its error (the forward output is what proves the network is the same:
# ResNet-50 without its identity shortcuts lands 0.19 away in float32, where 7e-5 is allowed; in float16, where
# NumPy itself lands 4.4e-2 away, 0.18 is allowed; bf16, estimated as 8x float16, cannot be checked at all).
TWIN_FACTOR, UNCHECKABLE, UNCHECKABLE_FORWARD = 4.0, 0.5, 0.2


def judge(errors: dict[str, float], grad_errors: dict[str, float], forward_tolerance: float,
          gradient_tolerance: float, twin: tuple[float, dict[str, float]] | None = None) -> dict[str, Any]:  # fmt: skip
    """The verdict on a backend's errors: each within its precision's tolerance or, given `twin` (NumPy's own
    errors in that dtype), within TWIN_FACTOR times NumPy's (per gradient, at least the median's)."""
    forward_error = max(errors.values())
    allowed = dict.fromkeys(grad_errors, gradient_tolerance)
    if twin is not None:
        twin_forward, twin_grads = twin
        forward_tolerance = max(forward_tolerance, TWIN_FACTOR * twin_forward)
        median = sorted(twin_grads.values())[len(twin_grads) // 2] if twin_grads else 0.0
        allowed = {k: max(gradient_tolerance, TWIN_FACTOR * max(twin_grads.get(k, 0.0), median)) for k in allowed}
    unchecked = sorted(k for k, v in allowed.items() if v >= UNCHECKABLE)
    checked = {k: v for k, v in grad_errors.items() if k not in unchecked}
    worst = max(checked, key=lambda k: checked[k] / allowed[k]) if checked else None
    record: dict[str, Any] = {
        "forward_error": forward_error,
        "worst_grad_error": checked[worst] if worst else math.nan,
        "worst_grad": worst,
        "grad_errors": grad_errors,
        "output_errors": errors,
        "forward_tolerance": forward_tolerance,
        "gradient_tolerance": allowed[worst] if worst else gradient_tolerance,
        "passed": forward_error <= forward_tolerance < UNCHECKABLE_FORWARD
        and all(v <= allowed[k] for k, v in checked.items()),
    }
    if twin is not None:
        record["twin"] = {"forward_error": twin[0], "worst_grad_error": max(twin[1].values(), default=0.0),
                          "factor": TWIN_FACTOR}  # fmt: skip
        record["unchecked_grads"] = unchecked
    return record


def group_key(case: Case) -> str:
    return f"{case.backend_spec}-{case.workload}-{case.precision}-{case.device}"


def verification_cases(case: Case) -> list[tuple[str, Case]]:
    """(group key, verification case) of every check `case` needs before it is timed: its group's, at the small
    size; and off the CPU, its own size at batch 1, keyed `<group>@<size>`."""
    checks = [(group_key(case), verification_case(case))]
    if case.device != "cpu":
        size = {**case.size, "batch": 1} if "batch" in case.size else dict(case.size)
        at_size = verification_case(case, {case.workload: size})
        if at_size.size != checks[0][1].size:
            checks.append((group_key(case) + "@" + ",".join(f"{k}={v}" for k, v in size.items()), at_size))
    return checks


def verification_case(case: Case, sizes: dict[str, dict[str, int]] | None = None) -> Case:
    """The case that verifies `case`'s group: train mode (forward and gradients) at the verification size."""
    size = (sizes or DEFAULT_SIZES).get(case.workload, DEFAULT_SIZES[case.workload])
    return Case(case.workload, dict(size), case.backend, case.precision, "train", case.device, case.seed,
                dict(case.options), case.env)  # fmt: skip


def verification_record(case: Case, document: dict[str, Any]) -> dict[str, Any]:
    """A verification record: the worker's document for `case` flattened (status, errors, tolerances, passed)."""
    record: dict[str, Any] = {
        "backend": case.backend_spec, "workload": case.workload, "precision": case.precision, "device": case.device,
        "size": case.size, "status": document["status"], "error": document.get("error"),
        "versions": document.get("versions", {}),
    }  # fmt: skip
    record.update(document.get("verification") or {})
    record.setdefault("passed", False)
    if document["status"] != "ok":
        record["passed"] = False
    return record


def blocked_result(record: dict[str, Any]) -> dict[str, Any] | None:
    """What a timed case becomes when its group's verification did not pass (None: it passed)."""
    if record["status"] == "unsupported":
        return {"status": "unsupported", "error": record.get("error")}
    if record["status"] != "ok":
        return {"status": "error", "error": f"failed verification: {record['status']}: {record.get('error')}"}
    if not record["passed"]:
        return {"status": "error", "error": failure_text(record)}
    return None


def failure_text(record: dict[str, Any]) -> str:
    return (
        f"failed verification: forward error {record['forward_error']:.2e} (tolerance "
        f"{record['forward_tolerance']:.0e}), worst gradient error {record['worst_grad_error']:.2e} in "
        f"{record['worst_grad']} (tolerance {record['gradient_tolerance']:.0e}){twin_text(record)}; --no-verify "
        "times it anyway"
    )


def describe(record: dict[str, Any]) -> str:
    """One line for a verification record, as the run and verify commands print it."""
    if record["status"] != "ok":
        return f"{record['status']}: {(record.get('error') or '').splitlines()[0][:200] if record.get('error') else ''}"
    verdict = "pass" if record["passed"] else "FAIL"
    text = (f"{verdict} (forward error {record['forward_error']:.1e} ≤ {record['forward_tolerance']:.0e}?, "
            f"worst gradient error {record['worst_grad_error']:.1e} in {record['worst_grad']} "
            f"≤ {record['gradient_tolerance']:.0e}?)")  # fmt: skip
    return text + twin_text(record)


def twin_text(record: dict[str, Any]) -> str:
    """What the tolerances were widened by, and what could not be checked, when NumPy's own computation in the
    precision's dtype was measured ("" when it was not needed)."""
    twin = record.get("twin")
    if not twin:
        return ""
    text = (f"; tolerances {twin['factor']:g}x NumPy's own error in this precision (forward "
            f"{twin['forward_error']:.1e}, gradients up to {twin['worst_grad_error']:.1e})")  # fmt: skip
    unchecked = record.get("unchecked_grads") or []
    if unchecked:
        text += f"; {len(unchecked)} of {len(record['grad_errors'])} gradients not checkable in this precision"
    return text
