"""What is TensorFlow's own in the TensorFlow backends (`tensorflow`, `tensorflow-xla`), on CPU (what every backend
does alike, agreement with the float64 reference in each precision included, is test_backend_contract.py's): TF's
layouts kept inside the step, what XLA and half precision record, TF's own errors classified and described, and
their cases end to end through real workers, forked from a serving process that imported TensorFlow, and spawned."""

from __future__ import annotations

from typing import Any

import pytest

tf = pytest.importorskip("tensorflow")

from _contract import observed  # noqa: E402

from dlbench.backends.base import Backend, Unsupported  # noqa: E402
from dlbench.backends.tensorflow.backend import TensorFlowBackend, TensorFlowXLABackend  # noqa: E402
from dlbench.core.cases import Case, MeasureConfig  # noqa: E402
from dlbench.workloads import get_workload  # noqa: E402
from dlbench.workloads.reference import reference, relative_error  # noqa: E402

SIZES: dict[str, dict[str, int]] = {
    "lstm": {"seq_len": 3, "batch": 2, "hidden": 8},
    "vgg16": {"batch": 1, "image": 32},
    "googlenet": {"batch": 1, "image": 32},
    "alexnet": {"batch": 1, "image": 95},  # its last feature map 2x2: the Flatten's (C, H, W) order matters
    "transformer": {"batch": 2, "seq_len": 16, "d_model": 32, "heads": 4},  # not the default heads and d_model
}
def run_step(backend: Backend, workload: str, precision: str, mode: str) -> Any:
    wl = get_workload(workload)
    size = wl.size(SIZES[workload])
    step = backend.prepare(
        Case(workload, size, backend.name, precision, mode), wl, wl.make_weights(size), wl.make_inputs(size)
    )
    result = step()
    backend.synchronize(result)
    return result


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tensorflow", "tensorflow-xla"])
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_half_precision_is_stored_in_that_type_and_accumulated_in_f32(name: str, precision: str) -> None:
    # What TF really does in half precision on CPU, probed by the backend: stored in that type, sums accumulated
    # in f32. Read from the contract's run of each backend (test_backend_contract.py).
    settings = observed(name)["checks"][f"lstm-{name}-{precision}-forward"]["settings"]
    assert settings["dtype"] == {"fp16": "float16", "bf16": "bfloat16"}[precision]
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


@pytest.mark.parametrize("workload", ["googlenet", "alexnet"])
def test_cnns_are_built_from_their_records_and_compute_the_workloads_function(workload: str) -> None:
    # googlenet: inception branches concatenated, padded and "SAME" max-pools; alexnet at a 2x2 last feature map:
    # the rows of the Linear after the Flatten permuted at build, as NHWC flattens (H, W, C).
    ref_out, ref_grads = reference(get_workload(workload), SIZES[workload])
    backend = TensorFlowBackend("cpu")
    forward = run_step(backend, workload, "fp32", "forward")
    assert relative_error(backend.to_numpy(forward), ref_out) < 1e-5
    out, grads = run_step(backend, workload, "fp32", "train")
    assert relative_error(backend.to_numpy(out), ref_out) < 1e-5
    assert sorted(grads) == sorted(ref_grads)
    errors = {name: relative_error(backend.to_numpy(g), ref_grads[name]) for name, g in grads.items()}
    assert max(errors.values()) < 1e-5, errors
    kernel = ref_grads["conv1.weight"].shape[2:]
    assert tuple(grads["conv1.weight"].value.shape) == (*kernel, 3, 64)  # HWIO inside the step, OIHW out of it
    assert backend.settings()["data_format"] == "NHWC"


@pytest.mark.parametrize("backend_cls", [TensorFlowBackend, TensorFlowXLABackend])
def test_the_transformer_block_keeps_in_out_kernels_in_the_step_and_computes_the_workloads_function(
    backend_cls: type[Backend],
) -> None:
    # Built for the size's heads and d_model (layers_for, not the workload's defaults); the fused qkv weight (3d, d)
    # is a (d, 3d) kernel inside the step, as tf.matmul(x, kernel) wants it, and (3d, d) again only out of to_numpy.
    # About 1 s each on 2 cores.
    ref_out, ref_grads = reference(get_workload("transformer"), SIZES["transformer"])
    backend = backend_cls("cpu")
    out, grads = run_step(backend, "transformer", "fp32", "train")
    assert tuple(out.shape) == ref_out.shape  # (batch, seq, d): no layout to convert
    assert relative_error(backend.to_numpy(out), ref_out) < 1e-5
    assert sorted(grads) == sorted(ref_grads)
    errors = {name: relative_error(backend.to_numpy(g), ref_grads[name]) for name, g in grads.items()}
    assert max(errors.values()) < 1e-5, errors
    assert tuple(grads["attn.qkv.weight"].value.shape) == (32, 96)
    assert backend.to_numpy(grads["attn.qkv.weight"]).shape == (96, 32)
    settings = backend.settings()
    assert "data_format" not in settings and settings["gelu"] == "tf.nn.gelu(approximate=True)"


def test_xla_settings_say_so() -> None:
    backend = TensorFlowXLABackend("cpu")
    run_step(backend, "lstm", "fp32", "forward")
    settings = backend.settings()
    assert settings["mode"] == "tf.function(jit_compile=True)" and settings["lstm_loop"] == "tf.scan"
    assert "XLA_FLAGS" in settings and "TF_XLA_FLAGS" in settings
    assert backend.peak_memory() == {}  # on cpu the worker measures RSS


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
    # Out of memory in other words (issue 13): cuDNN with no algorithm whose workspace fits, a failed allocation.
    assert backend.classify(tf.errors.NotFoundError(None, None, "No algorithm worked! Error messages: ...")) == "oom"
    assert backend.classify(tf.errors.InternalError(None, None, "Dst tensor is not initialized.")) == "oom"
    assert backend.classify(tf.errors.InternalError(None, None, "CUBLAS_STATUS_ALLOC_FAILED")) == "oom"
    assert backend.classify(tf.errors.NotFoundError(None, None, "No registered 'Conv2D' OpKernel")) == "unsupported"
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
