"""Verification against an ill-conditioned function (runner/verification.judge): the tolerance widens to what NumPy
itself achieves in the same dtype, never past what proves the network is the same; what cannot be checked is said."""

from __future__ import annotations

import math

import numpy as np

from dlbench.runner.verification import TWIN_FACTOR, UNCHECKABLE_FORWARD, judge
from dlbench.workloads import get_workload
from dlbench.workloads.reference import twin_errors

OUT = {"forward": 1.2e-5, "train_output": 1.1e-5}


def test_without_a_twin_the_precision_tolerance_holds() -> None:
    record = judge(OUT, {"a": 3e-2, "b": 1e-6}, 1e-5, 1e-5)
    assert not record["passed"] and record["worst_grad"] == "a" and "twin" not in record


def test_a_twin_widens_each_tolerance_to_a_factor_of_numpys_own_error() -> None:
    twin = (1.8e-5, {"a": 2e-2, "b": 1e-7, "c": 3e-2})
    record = judge(OUT, {"a": 3e-2, "b": 1e-6, "c": 5e-2}, 1e-5, 1e-5, twin)
    assert record["passed"]
    assert record["forward_tolerance"] == TWIN_FACTOR * 1.8e-5
    # "b" is held to the median twin error (2e-2), not to its own lucky 1e-7.
    assert record["twin"]["worst_grad_error"] == 3e-2 and record["unchecked_grads"] == []
    beyond = judge(OUT, {"a": 3e-2, "b": 1e-6, "c": 0.2}, 1e-5, 1e-5, twin)
    assert not beyond["passed"] and beyond["worst_grad"] == "c"


def test_gradients_with_nothing_checkable_are_listed_and_a_wide_forward_fails() -> None:
    twin = (1e-3, {"a": 0.2, "b": 1e-3, "c": 1e-3})
    record = judge({"forward": 2e-3}, {"a": 0.9, "b": 1e-3, "c": 2e-3}, 1e-2, 1e-1, twin)
    assert record["passed"] and record["unchecked_grads"] == ["a"] and record["worst_grad"] == "c"
    unverifiable = judge({"forward": 1e-3}, {"a": 1e-3}, 1e-2, 1e-1, (UNCHECKABLE_FORWARD / TWIN_FACTOR, {"a": 1e-3}))
    assert not unverifiable["passed"]  # its own error is small, but nothing that large could be told apart
    everything = judge({"forward": 1e-3}, {"a": 0.9}, 1e-2, 1e-1, (1e-3, {"a": 0.3}))
    assert everything["passed"] and everything["worst_grad"] is None and math.isnan(everything["worst_grad_error"])


def test_twin_errors_measure_resnet50s_ill_conditioning_and_not_alexnets() -> None:
    """NumPy in float32 lands within 1e-5 of float64 on AlexNet's gradients, and percents away on ResNet-50's."""
    alex_forward, alex = twin_errors(get_workload("alexnet"), {"batch": 1, "image": 63}, "fp32")
    assert alex_forward < 1e-5 and max(alex.values()) < 1e-5
    res_forward, res = twin_errors(get_workload("resnet50"), {"batch": 2, "image": 64}, "fp32")
    assert float(np.median(list(res.values()))) > 1e-3
