"""The contract every backend in the registry keeps, one test per (workload, backend, precision, mode): its own step
computes the workload's function within the tolerances of dlbench.core.precisions, stores its output and gradients in
the precision asked (pure: no autocast, no silent fp32), names every gradient by the workload's weight, or says
`unsupported` where its framework cannot, and only where that is declared below; and what every backend does
alike (refuse a precision or a device it has not, call a MemoryError out of memory, say its versions).

Each backend's checks run in a fresh process of its own (_contract.py), one at a time; the pytest process imports no
framework. What is specific to one framework stays in its own test file (which may read the same observations).
"""

from __future__ import annotations

import pytest
from _contract import CHECKS, SIZES, check_id, observed

from dlbench.backends import BACKENDS
from dlbench.core.precisions import FORWARD_TOLERANCE, GRADIENT_TOLERANCE
from dlbench.workloads import get_workload

# The registry's backends that run here: installed, and not one that lives in a legacy env (test_theano_env.py).
NAMES = [name for name, info in BACKENDS.items() if info.available()[0] and not info.needs_env]
DTYPE = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
# Where a framework cannot store a precision on the CPU, said by the framework itself: the only `unsupported`
# a check accepts. A backend that starts (or stops) supporting one makes its test fail: update this table.
UNSUPPORTED_ON_CPU: dict[str, set[str]] = {
    "numpy": {"bf16"},  # NumPy has no bfloat16 dtype
    "pytensor": {"bf16"},  # PyTensor has no bfloat16 dtype
    "pytensor-jax": {"bf16"},
}
PARAMS = [pytest.param(name, check, id=check_id(check[0], name, check[1], check[2])) for name in NAMES
          for check in CHECKS]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(("name", "check"), PARAMS)
def test_computes_the_workload_in_the_precision_asked(name: str, check: tuple[str, str, str]) -> None:
    workload, precision, mode = check
    found = observed(name)["checks"][check_id(workload, name, precision, mode)]
    if precision in UNSUPPORTED_ON_CPU.get(name, set()):
        assert found["status"] == "unsupported" and found["error"], found
        return
    assert found["status"] == "ok", found.get("traceback") or found
    assert found["output_dtype"] == DTYPE[precision]
    assert found["output_error"] <= FORWARD_TOLERANCE[precision]
    if mode == "forward":
        assert found["grad_names"] == []
        return
    wl = get_workload(workload)
    assert found["grad_names"] == sorted(wl.weight_shapes(wl.size(SIZES[workload])))  # every weight, by its name
    # A gradient in another type than asked passes only where the backend records it itself (pytensor-jax: its
    # sums come back in their accumulator type).
    declared = found["settings"].get("outputs_in_other_dtype") or {}
    for grad, dtype in found["grad_dtypes"].items():
        assert dtype == DTYPE[precision] or declared.get(grad) == dtype, (grad, dtype)
    for grad, error in found["grad_errors"].items():
        assert error <= GRADIENT_TOLERANCE[precision], grad


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_refuses_what_it_cannot_do_and_says_what_it_is(name: str) -> None:
    found = observed(name)
    assert found["amp_fp16"]["status"] == "unsupported" and "amp-fp16" in found["amp_fp16"]["error"]
    if found["cuda"]["status"] != "ok":  # a CPU-only machine, or a CPU-only build: the framework's reason
        assert found["cuda"]["status"] == "unsupported" and found["cuda"]["error"]
    assert found["classify_memory_error"] == "oom"
    assert found["versions"] and all(isinstance(v, str) for v in found["versions"].values())
