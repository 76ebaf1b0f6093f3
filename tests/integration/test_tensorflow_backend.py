"""The TensorFlow backends (`tensorflow`, `tensorflow-xla`) against the float64 NumPy reference, at tiny sizes,
on CPU; and their cases end to end through real workers, forked from a serving process that imported
TensorFlow, and spawned."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from dlbench.backends.base import Backend, Unsupported  # noqa: E402
from dlbench.backends.tensorflow.backend import TensorFlowBackend, TensorFlowXLABackend  # noqa: E402
from dlbench.core.cases import Case, MeasureConfig  # noqa: E402
from dlbench.workloads import get_workload  # noqa: E402
from dlbench.workloads.reference import reference  # noqa: E402

BACKENDS: dict[str, type[Backend]] = {"tensorflow": TensorFlowBackend, "tensorflow-xla": TensorFlowXLABackend}
SIZES: dict[str, dict[str, int]] = {
    "lstm": {"seq_len": 3, "batch": 2, "hidden": 8},
    "vgg16": {"batch": 1, "image": 32},
}
DTYPES = {"fp32": tf.float32, "fp16": tf.float16, "bf16": tf.bfloat16}
OUTPUT_TOLERANCE = {"fp32": 1e-5, "fp16": 1e-2, "bf16": 3e-2}
# VGG-16's half-precision gradients are ill-conditioned: max-pool and ReLU route each gradient through one winner,
# and fp16/bf16 rounding flips some winners (torch's and jax's tests measure the same). Measured here, both
# backends: fp16 up to 0.071, bf16 up to 0.21 (conv1_1.weight); a wrong layout, sign or scale gives >= 1.
VGG16_GRAD_TOLERANCE = {"fp32": 1e-5, "fp16": 0.15, "bf16": 0.35}


@functools.cache
def _reference(workload: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    return reference(get_workload(workload), SIZES[workload], seed=0)


def rel_error(actual: np.ndarray, expected: np.ndarray) -> float:
    assert actual.shape == expected.shape
    return float(np.linalg.norm(actual.astype(np.float64) - expected) / np.linalg.norm(expected))


def run_step(backend: Backend, workload: str, precision: str, mode: str) -> Any:
    wl = get_workload(workload)
    size = wl.size(SIZES[workload])
    step = backend.prepare(
        Case(workload, size, backend.name, precision, mode), wl, wl.make_weights(size), wl.make_inputs(size)
    )
    result = step()
    backend.synchronize(result)
    return result


def check_against_reference(backend: Backend, workload: str, precision: str, mode: str) -> None:
    result = run_step(backend, workload, precision, mode)
    ref_out, ref_grads = _reference(workload)
    out, grads = (result, None) if mode == "forward" else result
    out = backend.to_numpy(out)
    assert out.dtype == (np.float32 if precision == "bf16" else DTYPES[precision].as_numpy_dtype)
    assert rel_error(out, ref_out) < OUTPUT_TOLERANCE[precision]
    if grads is None:
        return
    assert sorted(grads) == sorted(ref_grads)  # the workload's names, every weight
    tolerance = VGG16_GRAD_TOLERANCE[precision] if workload == "vgg16" else OUTPUT_TOLERANCE[precision]
    for name, grad in grads.items():
        assert rel_error(backend.to_numpy(grad), ref_grads[name]) < tolerance, name


@pytest.mark.parametrize("mode", ["forward", "train"])
@pytest.mark.parametrize("workload", ["lstm", "vgg16"])
@pytest.mark.parametrize("name", BACKENDS)
def test_fp32_matches_float64_reference(name: str, workload: str, mode: str) -> None:
    check_against_reference(BACKENDS[name]("cpu"), workload, "fp32", mode)


# Every op of both workloads has fp16 and bf16 CPU kernels in TF (forward and gradient). XLA's VGG-16 train step
# takes ~7 s to compile on 2 cores, so under XLA VGG-16 is checked forward only in half precision.
@pytest.mark.parametrize(
    ("name", "workload", "mode"),
    [("tensorflow", "lstm", "train"), ("tensorflow", "vgg16", "train"),
     ("tensorflow-xla", "lstm", "train"), ("tensorflow-xla", "vgg16", "forward")],
)  # fmt: skip
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_half_precision_runs_in_that_type_and_is_close_to_reference(
    name: str, workload: str, mode: str, precision: str
) -> None:
    backend = BACKENDS[name]("cpu")
    check_against_reference(backend, workload, precision, mode)
    settings = backend.settings()
    assert settings["dtype"] == DTYPES[precision].name
    # What TF really does in half precision on CPU, probed: stored in that type, sums accumulated in f32.
    assert settings["accumulation"] == "matmul: f32, conv2d: f32"


def test_steps_keep_tfs_layouts_and_to_numpy_gives_the_workloads() -> None:
    backend = TensorFlowBackend("cpu")
    out, grads = run_step(backend, "vgg16", "fp32", "train")
    wl = get_workload("vgg16")
    shapes = wl.weight_shapes(wl.size(SIZES["vgg16"]))
    # On CPU the step's tensors are NHWC / HWIO, as TF computes them: no transposes inside the timed step.
    assert tuple(out.value.shape) == (1, 1, 1, 512)
    assert tuple(grads["conv1_1.weight"].value.shape) == (3, 3, 3, 64)
    assert backend.to_numpy(out).shape == (1, 512, 1, 1)
    assert {name: backend.to_numpy(g).shape for name, g in grads.items()} == shapes
    assert backend.settings()["data_format"] == "NHWC"


def test_xla_settings_say_so() -> None:
    backend = TensorFlowXLABackend("cpu")
    run_step(backend, "lstm", "fp32", "forward")
    settings = backend.settings()
    assert settings["mode"] == "tf.function(jit_compile=True)" and settings["lstm_loop"] == "tf.scan"
    assert "XLA_FLAGS" in settings and "TF_XLA_FLAGS" in settings
    assert backend.peak_memory() == {}  # on cpu the worker measures RSS


def test_a_precision_it_does_not_implement_is_unsupported() -> None:
    with pytest.raises(Unsupported, match="amp-fp16"):
        run_step(TensorFlowBackend("cpu"), "lstm", "amp-fp16", "forward")


def test_cuda_without_a_gpu_is_unsupported_with_the_reason() -> None:
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("a GPU is visible to TensorFlow here")
    with pytest.raises(Unsupported, match="sees no GPU"):
        run_step(TensorFlowBackend("cuda"), "lstm", "fp32", "forward")


def _raise(fn: Any) -> BaseException:
    try:
        fn()
    except BaseException as exc:  # noqa: BLE001
        return exc
    pytest.fail("expected TensorFlow to raise")


def test_classify_reads_tensorflows_own_errors() -> None:
    backend = TensorFlowBackend("cpu")
    # TF's out-of-memory error, built here: a real failed allocation costs 10 s, as TF's allocator waits that
    # long for memory to be freed before it gives up.
    oom = tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor with shape[1125899906842624]")
    assert backend.classify(oom) == "oom"
    # A real kernel TF's CPU build lacks: fp16 Conv2D in NCHW ("only supports the NHWC tensor format").
    x, w = tf.ones((1, 3, 4, 4), tf.float16), tf.ones((3, 3, 3, 2), tf.float16)
    assert backend.classify(_raise(lambda: tf.nn.conv2d(x, w, 1, "SAME", data_format="NCHW"))) == "unsupported"
    assert backend.classify(_raise(lambda: tf.matmul(tf.ones((2, 2)), tf.ones((3, 3))))) is None  # shape error


def test_a_graph_error_leads_with_its_reason() -> None:
    # A graph built by Keras layers fails as "Graph execution error: Detected at node ... defined at (most recent
    # call last): File ..." with the kernel's reason last (its shape, as keras-tensorflow's NCHW conv raised it on a
    # CPU without oneDNN; built here, as that kernel runs where oneDNN serves it). A result's error, and a table's
    # note, which shows its first line, must lead with the reason.
    message = ("Graph execution error:\n\nDetected at node vgg16_1/conv1_1_1/convolution defined at (most recent "
               'call last):\n  File "/x/keras/src/layers/layer.py", line 1002, in __call__\n\n  File '
               '"/x/keras/src/backend/tensorflow/nn.py", line 812, in _conv\n\nThe Conv2D op currently only '
               "supports the NHWC tensor format on the CPU. The op was given the format: NCHW\n\t [[{{node "
               "vgg16_1/conv1_1_1/convolution}}]] [Op:__inference_predict_316]")
    text = TensorFlowBackend("cpu").describe_error(tf.errors.UnimplementedError(None, None, message))
    assert text.startswith("UnimplementedError: The Conv2D op currently only supports the NHWC tensor format on the "
                           "CPU. The op was given the format: NCHW\n"), text[:300]
    assert text.endswith(message)  # the node and its stack are kept, after the reason
    # An error without TF's stack is left as it is.
    plain = tf.errors.InvalidArgumentError(None, None, "indices = 7 is not in [0, 3)")
    assert TensorFlowBackend("cpu").describe_error(plain) == "InvalidArgumentError: indices = 7 is not in [0, 3)"


@pytest.mark.parametrize("isolation", ["fork", "spawn"])
def test_cases_run_in_real_workers(sweep_cases: Any, isolation: str) -> None:
    # "fork": a serving process per backend imports TensorFlow (which starts no runtime), then forks each case;
    # configure() then sizes TF's thread pools in the case's fresh process, before TF's runtime starts.
    plan = [Case("lstm", SIZES["lstm"], "tensorflow", "fp32", "train")]
    if isolation == "fork":  # spawn pays a TF import per case: one case shows it works
        plan.append(Case("lstm", SIZES["lstm"], "tensorflow-xla", "fp32", "forward"))
    config = MeasureConfig(min_time_s=0.0, min_iters=2, max_time_s=0.5, warmup_iters=0)
    results = sweep_cases(plan, config, timeout_s=120, isolation=isolation)
    assert [doc["status"] for doc in results] == ["ok"] * len(plan), results
    for doc in results:
        settings = doc["settings"]
        assert doc["versions"]["tensorflow"] == tf.__version__
        assert settings["threads_applied"] is True and settings["threads_requested"] == doc["threads"]
        assert settings["intra_op_parallelism_threads"] == settings["inter_op_parallelism_threads"] == doc["threads"]
        assert settings["TF_CPP_MIN_LOG_LEVEL"] is not None and "accumulation" not in settings
        assert doc["first_step_s"] > 0 and len(doc["samples_s"]) >= 2
    assert results[0]["settings"]["mode"] == "tf.function"
    assert results[0]["settings"]["lstm_loop"] == "unrolled Python loop in the graph"
