"""The float64 reference (workloads/numpy_math.py, workloads/reference.py) and the numpy backend.

The reference is what `dlbench verify` holds every framework to, so it is checked against first principles:
finite differences for the gradients, hand-written formulas for the LSTM's gate order, and a deliberately
wrong model to show that the relative-error comparison does fail when the math is wrong.
"""

from __future__ import annotations

import functools
import subprocess
import sys
import time

import numpy as np
import pytest

from dlbench.backends.numpy.backend import NumpyBackend
from dlbench.core.cases import Case
from dlbench.workloads import get_workload
from dlbench.workloads import numpy_math as M
from dlbench.workloads.reference import reference

TINY = {"lstm": {"seq_len": 3, "batch": 2, "hidden": 4}, "vgg16": {"batch": 1, "image": 32}}


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """‖a − b‖ / ‖b‖ in float64, the measure verify uses."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def float64_arrays(workload_name: str, seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    workload = get_workload(workload_name)
    size = workload.size(TINY[workload_name])
    weights = {k: v.astype(np.float64) for k, v in workload.make_weights(size, seed).items()}
    inputs = {k: v.astype(np.float64) for k, v in workload.make_inputs(size, seed).items()}
    return weights, inputs


@functools.cache
def tiny_reference(workload_name: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """reference() at the TINY size, computed once for the tests that share it (which must not modify it)."""
    workload = get_workload(workload_name)
    return reference(workload, workload.size(TINY[workload_name]))


# -- (a) gradients against central finite differences ------------------------------------------------------


def loss_and_pattern(
    workload_name: str, weights: dict[str, np.ndarray], inputs: dict[str, np.ndarray]
) -> tuple[float, list[np.ndarray]]:
    """The loss, and VGG-16's activation pattern: which ReLUs are on and which input wins each max-pool. Holding
    the pattern fixed, the loss is linear in any one layer's weights (the LSTM is smooth: no pattern)."""
    if workload_name == "lstm":
        output, _ = M.lstm_forward(weights, inputs["x"])
        return float(output.mean()), []
    output, cache = M.vgg16_forward(weights, inputs["x"])
    pattern = []
    for step in cache["steps"]:
        pattern.append(step["relu_out"] > 0)
        if "pool_index" in step:
            pattern.append(step["pool_index"])
    return float(output.mean()), pattern


# One probe perturbs `entries` random entries of one tensor together, each by ±eps, and compares the change in
# the loss with the gradient's prediction. The LSTM is cheap, so its probes check single entries; VGG-16 costs a
# full forward per evaluation, so each of its probes covers a handful of entries at once (a wrong gradient in
# any of them shows, barring a ~1e-6 coincidence).
@pytest.mark.parametrize("workload_name, entries, probes", [("lstm", 1, 5), ("vgg16", 4, 1)])
def test_gradients_match_finite_differences(workload_name: str, entries: int, probes: int) -> None:
    weights, inputs = float64_arrays(workload_name)
    _, grads = tiny_reference(workload_name)
    _, base_pattern = loss_and_pattern(workload_name, weights, inputs)
    # Rounding in the loss costs ~1e-16/eps of relative error. A finite difference across a ReLU or max-pool kink
    # is off by O(1), so a probe whose ±eps points change VGG-16's activation pattern is drawn again; between
    # kinks the loss is linear in one tensor, and the central difference is exact but for rounding.
    eps = 1e-5
    rng = np.random.default_rng(1234)
    redrawn = 0
    for name, array in weights.items():
        original = array.copy()
        checked = 0
        while checked < probes:
            index = np.unravel_index(rng.choice(array.size, size=entries, replace=False), array.shape)
            signs = rng.choice([-1.0, 1.0], size=entries)
            array[index] = original[index] + eps * signs
            loss_plus, pattern_plus = loss_and_pattern(workload_name, weights, inputs)
            array[index] = original[index] - eps * signs
            loss_minus, pattern_minus = loss_and_pattern(workload_name, weights, inputs)
            array[index] = original[index]
            if not all(np.array_equal(a, b) and np.array_equal(a, c)
                       for a, b, c in zip(base_pattern, pattern_plus, pattern_minus, strict=True)):  # fmt: skip
                redrawn += 1
                assert redrawn <= 10, "too many probes cross a kink: is eps too large?"
                continue
            numeric = (loss_plus - loss_minus) / (2 * eps)
            terms = grads[name][index] * signs
            # Relative to the size of the terms, so that cancelling signs cannot inflate it; the 1e-12 floor only
            # matters when every chosen entry's gradient is exactly 0 (dead units).
            error = abs(numeric - terms.sum()) / max(np.abs(terms).sum(), 1e-12)
            at = [tuple(map(int, i)) for i in zip(*index, strict=True)]
            assert error < 1e-6, f"{name} at {at}: numeric {numeric!r} vs analytic {terms.sum()!r}"
            checked += 1
    print(f"{workload_name}: {redrawn} probes redrawn")


# -- (b) shapes and dtypes -------------------------------------------------------------------------------


@pytest.mark.parametrize("workload_name", ["lstm", "vgg16"])
def test_reference_shapes_and_dtypes(workload_name: str) -> None:
    workload = get_workload(workload_name)
    size = workload.size(TINY[workload_name])
    output, grads = tiny_reference(workload_name)
    assert output.shape == workload.output_shape(size)
    assert output.dtype == np.float64
    assert {k: v.shape for k, v in grads.items()} == workload.weight_shapes(size)
    assert all(g.dtype == np.float64 for g in grads.values())
    assert np.all(np.isfinite(output)) and all(np.all(np.isfinite(g)) for g in grads.values())


def test_reference_is_deterministic_and_seeded() -> None:
    workload = get_workload("lstm")
    size = workload.size(TINY["lstm"])
    a, b, c = reference(workload, size, seed=0), reference(workload, size, seed=0), reference(workload, size, 1)
    assert np.array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])


# -- (c) the LSTM's gates are (i, f, g, o), PyTorch's order --------------------------------------------------


def test_lstm_gate_order_by_hand() -> None:
    weights, _ = float64_arrays("lstm")
    H = weights["weight_hh"].shape[1]
    x = np.random.default_rng(5).standard_normal((2, 3, H))  # two steps: the second one exercises f and h

    def sig(z: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-z))

    def rows(name: str, k: int) -> np.ndarray:
        return weights[name][k * H : (k + 1) * H]

    h, c, expected = np.zeros((3, H)), np.zeros((3, H)), []
    for x_t in x:
        # Each gate written out on its own: i from rows 0:H, f from H:2H, g from 2H:3H, o from 3H:4H.
        def pre(k: int, x_t: np.ndarray = x_t, h: np.ndarray = h) -> np.ndarray:
            return x_t @ rows("weight_ih", k).T + rows("bias_ih", k) + h @ rows("weight_hh", k).T + rows("bias_hh", k)

        i, f, g, o = sig(pre(0)), sig(pre(1)), np.tanh(pre(2)), sig(pre(3))
        c = f * c + i * g
        h = o * np.tanh(c)
        expected.append(h)

    output, _ = M.lstm_forward(weights, x)
    np.testing.assert_allclose(output[0], expected[0], rtol=1e-12, atol=1e-14)  # the 1-step sequence
    np.testing.assert_allclose(output, np.stack(expected), rtol=1e-12, atol=1e-14)


# -- (d) the numpy backend against the reference --------------------------------------------------------------


def run_backend(workload_name: str, size: dict[str, int], precision: str, mode: str, **options: object) -> object:
    workload = get_workload(workload_name)
    backend = NumpyBackend("cpu", options)
    case = Case(workload_name, workload.size(size), "numpy", precision, mode, options=dict(options))
    step = backend.prepare(case, workload, workload.make_weights(case.size), workload.make_inputs(case.size))
    return step()


def test_fp32_is_much_closer_than_fp16() -> None:
    """The comparison resolves precision: fp16's error is orders of magnitude above fp32's, and above zero."""
    size = {"seq_len": 5, "batch": 4, "hidden": 16}
    ref_output, _ = reference(get_workload("lstm"), size)
    err32 = rel_error(run_backend("lstm", size, "fp32", "forward"), ref_output)  # type: ignore[arg-type]
    err16 = rel_error(run_backend("lstm", size, "fp16", "forward"), ref_output)  # type: ignore[arg-type]
    assert 0 < err32 < 1e-6 < 1e-4 < err16


def test_settings_and_versions() -> None:
    backend = NumpyBackend("cpu")
    workload = get_workload("lstm")
    size = workload.size(TINY["lstm"])
    backend.prepare(Case("lstm", size, "numpy", "fp32", "forward"), workload, workload.make_weights(size), {})
    assert backend.settings()["dtype"] == "float32"
    assert backend.versions() == {"numpy": np.__version__}


# -- (e) a wrong model is caught ---------------------------------------------------------------------------


def test_swapped_lstm_gates_are_caught() -> None:
    """A backend that read the gates as (f, i, g, o) must fail verify's comparison by a wide margin."""
    weights, inputs = float64_arrays("lstm")
    ref_output, _ = M.loss_and_grads("lstm", weights, inputs)
    H = weights["weight_hh"].shape[1]
    order = np.r_[H : 2 * H, 0:H, 2 * H : 4 * H]  # rows of f first, then i
    swapped = {name: array[order] for name, array in weights.items()}
    assert rel_error(M.forward("lstm", swapped, inputs), ref_output) > 1e-2


def test_flipped_conv_kernels_are_caught() -> None:
    """True convolution (flipped kernels) instead of cross-correlation, a classic framework mismatch."""
    weights, inputs = float64_arrays("vgg16")
    ref_output, _ = tiny_reference("vgg16")
    flipped = {k: (v[:, :, ::-1, ::-1] if v.ndim == 4 else v) for k, v in weights.items()}
    assert rel_error(M.forward("vgg16", flipped, inputs), ref_output) > 1e-2


# -- fault injection (the runner's fault tests rely on these being real) -------------------------------------


def test_fault_raise_fails_only_the_first_step() -> None:
    workload = get_workload("lstm")
    size = workload.size(TINY["lstm"])
    backend = NumpyBackend("cpu", {"fault": "raise"})
    case = Case("lstm", size, "numpy", "fp32", "forward", options={"fault": "raise"})
    step = backend.prepare(case, workload, workload.make_weights(size), workload.make_inputs(size))
    with pytest.raises(RuntimeError, match="injected failure"):
        step()
    assert step().shape == workload.output_shape(size)


def test_fault_oom_is_a_real_memory_error() -> None:
    backend = NumpyBackend("cpu", {"fault": "oom"})
    with pytest.raises(MemoryError) as info:
        backend._inject_fault()
    assert backend.classify(info.value) == "oom"
    assert backend.classify(RuntimeError("x")) is None


def test_sleep_s_slows_every_step() -> None:
    workload = get_workload("lstm")
    size = workload.size(TINY["lstm"])
    backend = NumpyBackend("cpu", {"sleep_s": 0.05})
    case = Case("lstm", size, "numpy", "fp32", "forward", options={"sleep_s": 0.05})
    step = backend.prepare(case, workload, workload.make_weights(size), workload.make_inputs(size))
    for _ in range(2):
        start = time.perf_counter()
        step()
        assert time.perf_counter() - start >= 0.05


@pytest.mark.parametrize(
    "options, message",
    [
        ({"nosuch": 1}, "allowed: fault, sleep_s"),
        ({"fault": "melt"}, "allowed: crash"),
        ({"sleep_s": -1}, "≥ 0"),
        ({"sleep_s": "soon"}, "≥ 0"),
    ],
)
def test_bad_options_are_refused_at_construction(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        NumpyBackend("cpu", options)


@pytest.mark.parametrize("fault, returncode", [("crash", -11), ("exit", 3)])
def test_fault_kills_the_process(fault: str, returncode: int) -> None:
    code = ("from dlbench.backends.numpy.backend import NumpyBackend as B\n"
            f"B('cpu', {{'fault': {fault!r}}})._inject_fault()")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert result.returncode == returncode
