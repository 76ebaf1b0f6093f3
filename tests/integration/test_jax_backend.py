"""What is JAX's own in the jax backend, on CPU (what every backend does alike, agreement with the float64 reference
in each precision included, is test_backend_contract.py's): both LSTM input projections, the layer stacks built in
JAX's layouts (NHWC, HWIO, (in, out), the Linear after a Flatten permuted) with gradients back in the workload's, the
settings read from the compiled HLO, XLA's threads, no reference kept to the caller's arrays, jax's own errors
classified, and its cases end to end through real workers, forked from a serving process that imported jax, and
spawned."""

from __future__ import annotations

import functools
import gc
import os
import subprocess
import sys
import weakref
from typing import Any

import numpy as np
import pytest

jax = pytest.importorskip("jax")

import jax.numpy as jnp  # noqa: E402

from dlbench.backends.base import Backend, Unsupported  # noqa: E402
from dlbench.backends.jax.backend import JaxBackend  # noqa: E402
from dlbench.core.cases import Case, MeasureConfig  # noqa: E402
from dlbench.workloads import get_workload, stack, stack_math  # noqa: E402
from dlbench.workloads.convnets import AlexNet  # noqa: E402
from dlbench.workloads.reference import reference  # noqa: E402

SIZES: dict[str, dict[str, int]] = {
    "lstm": {"seq_len": 3, "batch": 2, "hidden": 8},
    "vgg16": {"batch": 1, "image": 32},
    "googlenet": {"batch": 1, "image": 32},
    # Batch 2 at 64: layer4's batch norms see 8 values per channel (at batch 1 and a 1x1 map, 1: x - mean = 0).
    "resnet50": {"batch": 2, "image": 64},
}
@functools.cache
def _reference(workload: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    return reference(get_workload(workload), SIZES[workload], seed=0)


def rel_error(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.linalg.norm(actual - expected) / np.linalg.norm(expected))


def run_step(backend: Backend, workload: str, precision: str, mode: str) -> Any:
    wl = get_workload(workload)
    size = wl.size(SIZES[workload])
    step = backend.prepare(
        Case(workload, size, backend.name, precision, mode), wl, wl.make_weights(size), wl.make_inputs(size)
    )
    result = step()
    backend.synchronize(result)
    return result


@pytest.mark.parametrize("projection", ["hoisted", "per_step"])
def test_both_lstm_input_projections_match_the_reference(projection: str) -> None:
    backend = JaxBackend("cpu", {"lstm_projection": projection})
    out, grads = run_step(backend, "lstm", "fp32", "train")
    ref_out, ref_grads = _reference("lstm")
    assert rel_error(backend.to_numpy(out), ref_out) < 1e-5
    for name, grad in grads.items():
        assert rel_error(backend.to_numpy(grad), ref_grads[name]) < 1e-5, name
    assert backend.settings()["lstm_input_projection"] == projection


def test_lstm_keeps_in_out_kernels_and_one_bias_and_gives_back_the_workloads_gradients() -> None:
    backend = JaxBackend("cpu")
    out, grads = run_step(backend, "lstm", "fp32", "train")
    kernel_ih = grads["weight_ih"]  # what the step returned: jax's (in, out) gradient, converted by to_numpy only
    assert kernel_ih.value.shape == (8, 32) and backend.to_numpy(kernel_ih).shape == (32, 8)
    assert backend.dtype_name(kernel_ih) == "float32"
    np.testing.assert_array_equal(backend.to_numpy(grads["bias_ih"]), backend.to_numpy(grads["bias_hh"]))
    assert backend.settings()["weight_layout"].startswith("(in, out) kernels")


def _tiny(flatten_then: tuple[stack.Layer, ...]) -> AlexNet:
    """A small stack of every image layer kind (a strided padded conv without bias, batch norm, a padded max-pool,
    an inception module, an identity residual, Flatten of a 4x4 map, linear layers, log-softmax), named alexnet."""
    layers = (
        stack.Conv("c1", 4, 3, 2, 1, bias=False), stack.BatchNorm("bn1"), stack.ReLU(), stack.MaxPool(3, 1, 1),
        stack.Concat(((stack.Conv("b1", 2, 1),), (stack.Conv("b2", 3, 3, 1, 1, bias=False), stack.ReLU()))),
        stack.Residual((stack.Conv("r1", 5, 3, 1, 1), stack.ReLU())),
        stack.Flatten(), *flatten_then, stack.Linear("fc2", 3), stack.LogSoftmax(),
    )  # fmt: skip
    return type("Tiny", (AlexNet,), {"layers_fn": staticmethod(lambda: layers)})()  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "flatten_then",
    [(stack.Linear("fc1", 6), stack.ReLU()), (stack.ReLU(), stack.Linear("fc1", 6), stack.ReLU())],
    ids=["linear-rows-permuted", "activations-transposed"],
)
def test_a_stack_in_jax_layouts_gives_the_references_output_and_gradients(flatten_then: Any) -> None:
    # The flattened map is 5x4x4, so (H, W, C) and (C, H, W) orders differ: the Linear after it must see the
    # reference's order, whether its rows were permuted at build or the activations transposed before a ReLU.
    workload, size = _tiny(flatten_then), {"batch": 2, "image": 7}
    backend = JaxBackend("cpu")
    step = backend.prepare(Case("alexnet", size, "jax", "fp32", "train"), workload, workload.make_weights(size),
                           workload.make_inputs(size))  # fmt: skip
    out, grads = step()
    backend.synchronize((out, grads))
    ref_out, ref_grads = reference(workload, size)
    assert rel_error(backend.to_numpy(out), ref_out) < 1e-5
    assert sorted(grads) == sorted(ref_grads)
    for name, grad in grads.items():
        assert rel_error(backend.to_numpy(grad), ref_grads[name]) < 1e-5, name
    assert backend.settings()["conv_dimension_numbers"] == "NHWC/HWIO/NHWC"


@pytest.mark.parametrize("workload,mode", [("googlenet", "train"), ("resnet50", "forward")])
def test_cnns_match_the_reference(workload: str, mode: str) -> None:
    backend = JaxBackend("cpu")
    result = run_step(backend, workload, "fp32", mode)
    if mode == "forward":  # the float64 forward pass alone: ResNet-50's gradients would cost seconds more
        wl = get_workload(workload)
        size = wl.size(SIZES[workload])
        weights = {k: v.astype(np.float64) for k, v in wl.make_weights(size).items()}
        expected = stack_math.output(wl.layers_for(size), weights, wl.make_inputs(size)["x"].astype(np.float64))
        # ResNet-50 is ill-conditioned: NumPy's own float32 forward lands 1.8e-5 from float64 at this size (verify's
        # twin), a network without its identity shortcuts 0.19.
        assert rel_error(backend.to_numpy(result), expected) < 1e-4
        return
    out, grads = result
    ref_out, ref_grads = _reference(workload)
    assert rel_error(backend.to_numpy(out), ref_out) < 1e-5
    assert sorted(grads) == sorted(ref_grads)
    for name, grad in grads.items():
        assert rel_error(backend.to_numpy(grad), ref_grads[name]) < 1e-5, name


def test_auto_projection_is_per_step_on_cpu_for_small_lstms_and_options_are_checked() -> None:
    backend = JaxBackend("cpu")
    run_step(backend, "lstm", "fp32", "forward")  # hidden 8
    settings = backend.settings()
    assert settings["lstm_projection_option"] == "auto" and settings["lstm_input_projection"] == "per_step"
    with pytest.raises(ValueError, match="unknown lstm_projection 'fused'"):
        JaxBackend("cpu", {"lstm_projection": "fused"})
    with pytest.raises(ValueError, match="unknown jax backend option"):
        JaxBackend("cpu", {"threads": 4})


def test_settings_record_what_is_in_force() -> None:
    backend = JaxBackend("cpu")
    backend.configure(len(os.sched_getaffinity(0)))
    run_step(backend, "vgg16", "fp32", "forward")
    settings = backend.settings()
    assert settings["jit"] == "jax.jit" and settings["platform"] == "cpu"
    assert settings["XLA_PYTHON_CLIENT_PREALLOCATE"] == os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"]
    assert settings["x64_enabled"] is False and settings["XLA_FLAGS"] == os.environ.get("XLA_FLAGS", "")
    assert settings["conv_dimension_numbers"] == "NCHW/OIHW/NCHW"
    assert settings["hlo_dot_conv_result_types"] == "f32" and "compute_note" not in settings
    assert settings["hlo_conv_dim_labels"]  # the physical layout XLA chose for its convolutions
    assert backend.versions()["jax"] == jax.__version__
    assert backend.peak_memory() == {}  # on cpu the worker measures RSS


def test_xla_cpu_threads_follow_the_cpu_affinity() -> None:
    # configure() can set nothing: the worker's sched_setaffinity is what sizes XLA's pool. A fresh process,
    # as the pool is made once, when jax's CPU backend starts.
    code = (
        "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})\n"
        "from dlbench.backends.jax.backend import JaxBackend\n"
        "from dlbench.core.cases import Case\n"
        "from dlbench.workloads import get_workload\n"
        "wl = get_workload('lstm'); size = wl.size({'seq_len': 2, 'batch': 2, 'hidden': 8})\n"
        "b = JaxBackend('cpu'); b.configure(1)\n"
        "case = Case('lstm', size, 'jax', 'fp32', 'forward')\n"
        "b.synchronize(b.prepare(case, wl, wl.make_weights(size), wl.make_inputs(size))())\n"
        "print(b.settings()['xla_eigen_threads'])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == "1"


def test_prepare_keeps_no_reference_to_the_callers_arrays() -> None:
    wl = get_workload("lstm")
    size = wl.size(SIZES["lstm"])
    weights, inputs = wl.make_weights(size), wl.make_inputs(size)
    refs = [weakref.ref(a) for a in (*weights.values(), *inputs.values())]
    backend = JaxBackend("cpu")
    step = backend.prepare(Case("lstm", size, "jax", "fp32", "forward"), wl, weights, inputs)
    del weights, inputs
    gc.collect()
    assert all(r() is None for r in refs)
    assert rel_error(backend.to_numpy(step()), _reference("lstm")[0]) < 1e-5


def test_cuda_without_a_gpu_is_unsupported_with_jaxs_reason() -> None:
    if any(d.platform == "gpu" for d in jax.devices()):
        pytest.skip("a GPU is visible to jax here")
    with pytest.raises(Unsupported, match="Unknown backend: 'gpu' requested"):
        run_step(JaxBackend("cuda"), "lstm", "fp32", "forward")


def _raise(fn: Any) -> BaseException:
    try:
        fn()
    except BaseException as exc:  # noqa: BLE001
        return exc
    pytest.fail("expected jax to raise")


def test_classify_reads_jaxs_own_errors() -> None:
    backend = JaxBackend("cpu")
    # A real failed allocation (2**60 bytes: refused at once, nothing is touched): RESOURCE_EXHAUSTED.
    assert backend.classify(_raise(lambda: jnp.zeros(2**60, jnp.uint8).block_until_ready())) == "oom"
    # A real kernel without an f16 version on CPU: NotImplementedError("Unsupported dtype float16.").
    assert backend.classify(_raise(lambda: jnp.linalg.inv(jnp.eye(2, dtype=jnp.float16)))) == "unsupported"
    assert backend.classify(_raise(lambda: jnp.ones(2) @ jnp.ones(3))) is None  # a shape error is an error


@pytest.mark.parametrize("isolation", ["fork", "spawn"])
def test_cases_run_in_real_workers(sweep_cases: Any, isolation: str) -> None:
    # "fork": the serving process imports jax (which starts no backend), then forks each case.
    plan = [Case("lstm", SIZES["lstm"], "jax", "fp32", mode) for mode in ("forward", "train")]
    config = MeasureConfig(min_time_s=0.0, min_iters=2, max_time_s=0.5, warmup_iters=0)
    results = sweep_cases(plan, config, timeout_s=120, isolation=isolation)
    assert [doc["status"] for doc in results] == ["ok", "ok"], results
    for doc in results:
        assert doc["settings"]["platform"] == "cpu" and doc["versions"]["jax"] == jax.__version__
        assert doc["first_step_s"] > 0 and len(doc["samples_s"]) >= 2
