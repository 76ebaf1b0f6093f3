"""What is PyTorch's own in the torch backends, on CPU (what every backend does alike, agreement with the float64
reference in each precision included, is test_backend_contract.py's): no reference kept to the caller's arrays,
thread settings, torch's own errors classified, and torch.compile's graphs really compiled."""

from __future__ import annotations

import functools
import gc
import weakref
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from _contract import observed  # noqa: E402

from dlbench.backends.base import Backend  # noqa: E402
from dlbench.backends.torch.backend import TorchBackend  # noqa: E402
from dlbench.core.cases import Case  # noqa: E402
from dlbench.workloads import get_workload  # noqa: E402
from dlbench.workloads.reference import reference  # noqa: E402

SIZES: dict[str, dict[str, int]] = {
    "lstm": {"seq_len": 3, "batch": 2, "hidden": 8},
    "vgg16": {"batch": 1, "image": 32},
}
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
    # Out of memory in the driver's, cuBLAS's and cuDNN's words (issue 13), not only the caching allocator's.
    for text in ("CUDA error: out of memory", "CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate`",
                 "cuDNN error: CUDNN_STATUS_ALLOC_FAILED", "cuDNN error: CUDNN_STATUS_NOT_ENOUGH_WORKSPACE"):
        assert backend.classify(RuntimeError(text)) == "oom", text
    wrapped = RuntimeError("compiled function failed")
    wrapped.__cause__ = NotImplementedError("\"addmm_impl_cpu_\" not implemented for 'Half'")
    assert backend.classify(wrapped) == "unsupported"
    assert backend.classify(RuntimeError("shape mismatch")) is None
    assert backend.classify(ValueError("half of the batch")) is None


@pytest.mark.slow
def test_compile_runs_lstm_eager_and_compiles_vgg16() -> None:
    # Dynamo declines nn.LSTM (unless its experimental allow_rnn is set): a "compiled" result that ran eager says
    # so. VGG-16, in the same process after the LSTM, really compiles (the backend resets dynamo, which having
    # declined one module would run later ones eager too). Read from the contract's run of torch-compile.
    checks = observed("torch-compile")["checks"]
    lstm = checks["lstm-torch-compile-fp32-forward"]["settings"]
    assert lstm["mode"] == "compile" and lstm["compile_backend"] == "inductor"
    assert lstm["compiled_graphs"] == 0 and lstm["graph_breaks"] >= 1
    vgg = checks["vgg16-torch-compile-fp32-forward"]["settings"]
    assert vgg["compiled_graphs"] >= 1 and vgg["graph_breaks"] == 0
