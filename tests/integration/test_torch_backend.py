"""The PyTorch backends against the float64 NumPy reference, at tiny sizes, on CPU."""

from __future__ import annotations

import functools
import gc
import weakref
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dlbench.backends.base import Backend, Unsupported  # noqa: E402
from dlbench.backends.torch.backend import TorchBackend, TorchCompileBackend  # noqa: E402
from dlbench.core.cases import Case  # noqa: E402
from dlbench.workloads import get_workload  # noqa: E402
from dlbench.workloads.reference import reference  # noqa: E402

SIZES: dict[str, dict[str, int]] = {
    "lstm": {"seq_len": 3, "batch": 2, "hidden": 8},
    "vgg16": {"batch": 1, "image": 32},
}
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
OUTPUT_TOLERANCE = {"fp32": 1e-5, "fp16": 1e-2, "bf16": 2e-2}
# VGG-16's gradients are ill-conditioned at this size: max-pool and ReLU route each gradient through one
# winner, and the rounding of fp16/bf16 activations flips some winners. Even in exact float64 arithmetic a
# random 1e-3 relative change of the weights moves conv1_1.weight's gradient by ~10%. Measured here: fp16 up
# to 0.074, bf16 up to 0.19 (conv1_1.weight). These bounds still catch a wrong layer, sign or scale (>= 1).
VGG16_GRAD_TOLERANCE = {"fp32": 1e-5, "fp16": 0.15, "bf16": 0.35}

# torch.compile imports inductor, whose torch.utils.mkldnn module still uses the deprecated
# torch.jit.script_method decorator at import time (torch 2.13): torch's own warning, not ours.
IGNORE_TORCHSCRIPT_DEPRECATION = pytest.mark.filterwarnings(
    "ignore:`torch.jit.script_method` is deprecated:DeprecationWarning"
)


@functools.cache
def _reference(workload: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    return reference(get_workload(workload), SIZES[workload], seed=0)


def rel_error(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.linalg.norm(actual - expected) / np.linalg.norm(expected))


def run_step(backend: Backend, workload: str, precision: str, mode: str) -> Any:
    wl = get_workload(workload)
    size = wl.size(SIZES[workload])
    case = Case(workload, size, backend.name, precision, mode)
    step = backend.prepare(case, wl, wl.make_weights(size), wl.make_inputs(size))
    result = step()
    backend.synchronize(result)
    return result


@pytest.fixture(autouse=True)
def _restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("mode", ["forward", "train"])
@pytest.mark.parametrize("workload", ["lstm", "vgg16"])
def test_fp32_matches_float64_reference(workload: str, mode: str) -> None:
    backend = TorchBackend("cpu")
    result = run_step(backend, workload, "fp32", mode)
    ref_out, ref_grads = _reference(workload)
    out, grads = (result, None) if mode == "forward" else result
    assert out.dtype == torch.float32
    assert rel_error(backend.to_numpy(out), ref_out) < 1e-5
    if grads is not None:
        assert sorted(grads) == sorted(ref_grads)  # the workload's names, every weight
        for name, grad in grads.items():
            assert rel_error(backend.to_numpy(grad), ref_grads[name]) < 1e-5, name


@pytest.mark.parametrize("mode", ["forward", "train"])
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
@pytest.mark.parametrize("workload", ["lstm", "vgg16"])
def test_low_precision_is_pure_and_close_to_reference(workload: str, precision: str, mode: str) -> None:
    backend = TorchBackend("cpu")
    try:
        result = run_step(backend, workload, precision, mode)
    except Unsupported as exc:
        pytest.skip(f"torch says unsupported: {exc}")
    except Exception as exc:  # noqa: BLE001 — only an `unsupported` classification may excuse a failure
        if backend.classify(exc) != "unsupported":
            raise
        pytest.skip(f"torch says unsupported: {exc}")
    ref_out, ref_grads = _reference(workload)
    out, grads = (result, {}) if mode == "forward" else result
    assert out.dtype == DTYPES[precision]  # pure: no autocast, no silent fp32
    assert rel_error(backend.to_numpy(out), ref_out) < OUTPUT_TOLERANCE[precision]
    grad_tolerance = VGG16_GRAD_TOLERANCE[precision] if workload == "vgg16" else OUTPUT_TOLERANCE[precision]
    assert sorted(grads) == ([] if mode == "forward" else sorted(ref_grads))
    for name, grad in grads.items():
        assert grad.dtype == DTYPES[precision], name
        assert rel_error(backend.to_numpy(grad), ref_grads[name]) < grad_tolerance, name


def test_prepare_keeps_no_reference_to_the_callers_arrays() -> None:
    wl = get_workload("lstm")
    size = wl.size(SIZES["lstm"])
    weights, inputs = wl.make_weights(size), wl.make_inputs(size)
    refs = [weakref.ref(a) for a in (*weights.values(), *inputs.values())]
    step = TorchBackend("cpu").prepare(Case("lstm", size, "torch", "fp32", "forward"), wl, weights, inputs)
    del weights, inputs
    gc.collect()
    assert all(r() is None for r in refs)
    assert rel_error(step().numpy(), _reference("lstm")[0]) < 1e-5


def test_configure_sets_threads_and_settings_record_them() -> None:
    backend = TorchBackend("cpu")
    backend.configure(1)
    run_step(backend, "lstm", "bf16", "forward")
    settings = backend.settings()
    assert settings["threads"] == 1 == torch.get_num_threads()
    assert settings["interop_threads"] == torch.get_num_interop_threads()
    assert settings["mode"] == "eager"
    assert settings["dtype"] == "bfloat16"
    assert settings["float32_matmul_precision"] == torch.get_float32_matmul_precision()
    assert backend.versions()["torch"] == torch.__version__
    assert backend.peak_memory() == {}  # on cpu the worker measures RSS


def test_a_precision_it_does_not_implement_is_unsupported() -> None:
    with pytest.raises(Unsupported, match="amp-fp16"):
        run_step(TorchBackend("cpu"), "lstm", "amp-fp16", "forward")


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_cuda_is_unsupported_with_the_reason() -> None:
    with pytest.raises(Unsupported, match="CUDA is not available to torch"):
        run_step(TorchBackend("cuda"), "lstm", "fp32", "forward")


def _raise(fn: Any) -> BaseException:
    try:
        fn()
    except BaseException as exc:  # noqa: BLE001
        return exc
    pytest.fail("expected torch to raise")


def test_classify_reads_torchs_own_errors() -> None:
    backend = TorchBackend("cpu")
    half_eye = torch.eye(2, dtype=torch.half)
    # Real errors torch raises for a dtype a kernel lacks, in its two styles.
    assert backend.classify(_raise(lambda: torch.linalg.cholesky(half_eye))) == "unsupported"
    assert backend.classify(_raise(lambda: torch.linalg.inv(half_eye))) == "unsupported"
    # A real failed CPU allocation (2**60 bytes: refused at once, nothing is touched).
    assert backend.classify(_raise(lambda: torch.empty(2**60, dtype=torch.uint8))) == "oom"
    assert backend.classify(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")) == "oom"
    assert backend.classify(MemoryError()) == "oom"
    wrapped = RuntimeError("compiled function failed")
    wrapped.__cause__ = NotImplementedError("\"addmm_impl_cpu_\" not implemented for 'Half'")
    assert backend.classify(wrapped) == "unsupported"
    assert backend.classify(RuntimeError("shape mismatch")) is None
    assert backend.classify(ValueError("half of the batch")) is None


@IGNORE_TORCHSCRIPT_DEPRECATION
def test_compile_reports_that_dynamo_runs_lstm_eager() -> None:
    backend = TorchCompileBackend("cpu")
    out = run_step(backend, "lstm", "fp32", "forward")
    assert rel_error(backend.to_numpy(out), _reference("lstm")[0]) < 1e-5
    settings = backend.settings()
    assert settings["mode"] == "compile" and settings["compile_backend"] == "inductor"
    assert settings["compiled_graphs"] == 0 and settings["graph_breaks"] >= 1


@pytest.mark.slow  # inductor compiles VGG-16 in ~60 s on 2 cores with a cold on-disk cache, ~2 s warm
@IGNORE_TORCHSCRIPT_DEPRECATION
def test_compiled_vgg16_fp32_forward_matches_reference() -> None:
    # Runs after the LSTM test above: dynamo, having declined nn.LSTM, would run this module eager too unless
    # the backend resets it; `compiled_graphs` checks that it really compiled.
    backend = TorchCompileBackend("cpu")
    out = run_step(backend, "vgg16", "fp32", "forward")
    assert rel_error(backend.to_numpy(out), _reference("vgg16")[0]) < 1e-5
    settings = backend.settings()
    assert settings["compiled_graphs"] >= 1 and settings["graph_breaks"] == 0
