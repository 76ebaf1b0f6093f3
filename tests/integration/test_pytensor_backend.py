"""What is PyTensor's own in the PyTensor backends (C linker and JAX mode), on CPU (what every backend does alike,
agreement with the float64 reference in each precision included, is test_backend_contract.py's): outputs recorded
in another type, fp16's fall-back to Python, bfloat16 refused in PyTensor's words, OpenBLAS linked, caches and
temporary files; and their cases end to end in real workers, forked and spawned.

Compiled C modules live in dlbench's PyTensor cache (~/.cache/dlbench/pytensor): with a cold cache the first
run of this module compiles for a few minutes on 2 cores, later runs reuse the modules.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

if importlib.util.find_spec("pytensor") is None:
    pytest.skip("pytensor is not installed", allow_module_level=True)

# Before pytensor itself: the backend module sets PYTENSOR_FLAGS (cache, BLAS), read when pytensor loads.
from dlbench.backends.pytensor import helpers  # noqa: E402

# isort: split
import pytensor  # noqa: E402
from _contract import observed  # noqa: E402

from dlbench.backends.base import Backend, Unsupported  # noqa: E402
from dlbench.backends.pytensor.backend import PyTensorBackend, PyTensorJaxBackend  # noqa: E402
from dlbench.core.cases import Case, MeasureConfig  # noqa: E402
from dlbench.core.precisions import FORWARD_TOLERANCE, GRADIENT_TOLERANCE  # noqa: E402
from dlbench.workloads import get_workload  # noqa: E402
from dlbench.workloads.reference import reference, relative_error  # noqa: E402

HAS_JAX = importlib.util.find_spec("jax") is not None
BACKENDS = [
    PyTensorBackend,
    pytest.param(PyTensorJaxBackend, marks=pytest.mark.skipif(not HAS_JAX, reason="jax is not installed")),
]
Size = dict[str, int]
SIZES: dict[str, Size] = {
    "lstm": {"seq_len": 3, "batch": 2, "hidden": 8},
    "vgg16": {"batch": 1, "image": 32},
    "googlenet": {"batch": 1, "image": 32},
    "transformer": {"batch": 2, "seq_len": 16, "d_model": 32, "heads": 4},  # not the default heads and d_model
}
def run_step(backend: Backend, workload: str, precision: str, mode: str, size: Size | None = None) -> Any:
    wl = get_workload(workload)
    size = wl.size(size or SIZES[workload])
    step = backend.prepare(
        Case(workload, size, backend.name, precision, mode), wl, wl.make_weights(size), wl.make_inputs(size)
    )
    result = step()
    backend.synchronize(result)
    return result


@pytest.mark.slow
@pytest.mark.parametrize("name", ["pytensor", pytest.param("pytensor-jax", marks=pytest.mark.skipif(
    not HAS_JAX, reason="jax is not installed"))])  # fmt: skip
def test_outputs_in_another_type_and_fp16_fall_backs_are_recorded(name: str) -> None:
    # Read from the contract's run of each backend (test_backend_contract.py), which checks the figures.
    checks = observed(name)["checks"]
    for workload in ("lstm", "vgg16"):
        train = checks[f"{workload}-{name}-fp32-train"]
        other = train["settings"]["outputs_in_other_dtype"]
        if name == "pytensor-jax":  # PyTensor 3.0.7's JAX mode returns sums in their accumulator type: float64
            assert sorted(other) == sorted(k for k in train["grad_names"] if "bias" in k)
            assert set(other.values()) == {"float64"}
        else:
            assert other == {}
    fp16 = checks[f"lstm-{name}-fp16-train"]["settings"]
    assert fp16["dtype"] == "float16"
    if name == "pytensor":  # the C linker's silent fall-back to Python (NumPy) code is recorded
        assert {"Dot22", "Elemwise"} <= set(fp16["ops_in_python"])


@pytest.mark.parametrize("backend_cls", BACKENDS)
def test_bfloat16_is_unsupported_with_pytensors_own_error(backend_cls: type[Backend]) -> None:
    # "Invalid dtype: bfloat16", or "Unsupported dtype for TensorType: bfloat16" once ml_dtypes (imported by
    # jax) has taught NumPy the name: PyTensor's words either way.
    with pytest.raises(Unsupported, match=r"PyTensor \S+: (Invalid|Unsupported) dtype.*: bfloat16"):
        run_step(backend_cls("cpu"), "lstm", "bf16", "forward")


def test_the_c_backend_is_cpu_only() -> None:
    with pytest.raises(Unsupported, match="CPU only"):
        run_step(PyTensorBackend("cuda"), "lstm", "fp32", "forward")


@pytest.mark.skipif(not HAS_JAX, reason="jax is not installed")
def test_jax_mode_on_cuda_without_a_gpu_is_unsupported_with_jaxs_reason() -> None:
    import jax

    if any(d.platform == "gpu" for d in jax.devices()):
        pytest.skip("a GPU is visible to jax here")
    with pytest.raises(Unsupported, match="Unknown backend: 'gpu' requested"):
        run_step(PyTensorJaxBackend("cuda"), "lstm", "fp32", "forward")


def _raise(fn: Any) -> BaseException:
    try:
        fn()
    except BaseException as exc:  # noqa: BLE001
        return exc
    pytest.fail("expected an error")


def test_classify_reads_pytensors_own_errors() -> None:
    backend = PyTensorBackend("cpu")
    # A real failed allocation inside a compiled C op (2**60 bytes: refused at once, nothing is touched).
    huge = pytensor.function([], pytensor.tensor.zeros((2**60,), dtype="uint8"), mode="CVM")
    assert backend.classify(_raise(huge)) == "oom"
    # An op that PyTensor's JAX linker cannot convert (its own NotImplementedError), and a plain error.
    assert backend.classify(NotImplementedError("No JAX conversion for the given `Op`: Foo")) == "unsupported"
    assert backend.classify(_raise(lambda: np.ones(2) @ np.ones(3))) is None


def test_compiles_in_the_first_step_links_openblas_and_runs_every_op_in_c() -> None:
    backend = PyTensorBackend("cpu")
    backend.configure(1)
    wl = get_workload("lstm")
    size = wl.size(SIZES["lstm"])
    step = backend.prepare(
        Case("lstm", size, "pytensor", "fp32", "train"), wl, wl.make_weights(size), wl.make_inputs(size)
    )
    assert backend.function is None  # prepare() only builds the graph: compile time belongs to first_step_s
    step()
    assert backend.function is not None
    settings = backend.settings()
    assert settings["mode"] == "CVM" and settings["linker"] == "VMLinker"
    assert settings["blas_config"].startswith("OpenBLAS") and settings["blas_threads"] == 1
    assert "scipy_openblas" in pytensor.config.blas__ldflags
    # With BLAS flags the matrix products are C ops calling OpenBLAS; without, Dot22 runs NumPy from Python.
    assert settings["ops_in_python"] == []
    ops = {type(node.op).__name__ for node in backend.function.maker.fgraph.apply_nodes}
    assert "Scan" in ops and "Dot22" in ops
    assert Path(settings["compile_cache"]).is_relative_to(helpers.CACHE_DIR)
    assert backend.versions()["pytensor"] == pytensor.__version__


@pytest.mark.slow
# Forward only in CI: PyTensor's rewrites of GoogLeNet's train graph take 90 s with a warm C cache, minutes cold
# (`dlbench verify --backends pytensor --workloads googlenet` checks the gradients).
@pytest.mark.parametrize("mode", ["forward"])
def test_a_cnn_built_from_its_layer_records_runs_in_c_and_matches_the_reference(mode: str) -> None:
    # GoogLeNet (stack.py): convolutions 1x1 to 7x7 with strides and padding, max-pools padded with -inf (3/2/1, and
    # 3/1/1 in the inception modules), concatenated branches, global average pool. With the C modules cached: ~10 s
    # forward, ~90 s train on 2 cores, nearly all of it PyTensor's graph rewrites; a cold cache adds minutes of g++.
    backend = PyTensorBackend("cpu")
    backend.configure(1)
    result = run_step(backend, "googlenet", "fp32", mode)
    wl = get_workload("googlenet")
    ref_out, ref_grads = reference(wl, wl.size(SIZES["googlenet"]))
    out, grads = (result, {}) if mode == "forward" else result
    assert out.dtype == np.float32 and relative_error(out, ref_out) <= FORWARD_TOLERANCE["fp32"]
    if mode == "train":
        assert sorted(grads) == sorted(ref_grads)
        assert max(relative_error(grads[k], ref_grads[k]) for k in grads) <= GRADIENT_TOLERANCE["fp32"]
    assert backend.settings()["ops_in_python"] == []  # every op of the stack runs C code in fp32


# PyTensor 3.0.7's JAX linker returns a float32 sum in its float64 accumulator (CAReduce: `.astype(acc_dtype)`);
# stack.py keeps the layer norms' statistics float32, but the sums pytensor.grad adds carry float64 into the backward
# pass, and JAX warns (FutureWarning: "scatter inputs have incompatible types ... float64 to dtype=float32").
_JAX_TRAIN_FLOAT64 = pytest.mark.xfail(strict=True, reason="PyTensor's JAX sums return their float64 accumulator")


@pytest.mark.parametrize(("backend_cls", "mode"), [
    (PyTensorBackend, "forward"), (PyTensorBackend, "train"),
    pytest.param(PyTensorJaxBackend, "forward", marks=BACKENDS[1].marks),
    pytest.param(PyTensorJaxBackend, "train", marks=[*BACKENDS[1].marks, _JAX_TRAIN_FLOAT64]),
])  # fmt: skip
def test_the_transformer_block_computes_in_fp32_and_matches_the_reference(
    backend_cls: type[Backend], mode: str
) -> None:
    # Built for the size's heads and d_model (layers_for). In the C backend every op runs C code, special.softmax's
    # inner graph included (an OpFromGraph in PyTensor 3, compiled in the case's mode, not in the default Numba).
    # ~2 s each with the C modules cached, ~10 s for the four on 2 cores.
    backend = backend_cls("cpu")
    backend.configure(1)
    result = run_step(backend, "transformer", "fp32", mode)
    wl = get_workload("transformer")
    ref_out, ref_grads = reference(wl, wl.size(SIZES["transformer"]))
    out, grads = (result, {}) if mode == "forward" else result
    assert out.dtype == np.float32 and relative_error(np.asarray(out), ref_out) <= FORWARD_TOLERANCE["fp32"]
    if mode == "train":
        assert sorted(grads) == sorted(ref_grads) and {str(g.dtype) for g in grads.values()} == {"float32"}
        assert max(relative_error(np.asarray(grads[k]), ref_grads[k]) for k in grads) <= GRADIENT_TOLERANCE["fp32"]
    if backend_cls is PyTensorBackend:
        assert backend.settings()["ops_in_python"] == []


def _compiled_modules() -> set[Path]:
    return set(Path(pytensor.config.compiledir).glob("tmp*"))


def test_compiled_c_modules_are_reused_across_batch_sizes_and_sequence_lengths() -> None:
    run_step(PyTensorBackend("cpu"), "lstm", "fp32", "train")
    before = _compiled_modules()
    run_step(PyTensorBackend("cpu"), "lstm", "fp32", "train", {"seq_len": 4, "batch": 5, "hidden": 8})
    assert _compiled_modules() == before  # symbolic shapes: nothing new was compiled


@pytest.mark.skipif(not HAS_JAX, reason="jax is not installed")
def test_jax_mode_leaves_no_temporary_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # PyTensor's JAX dispatch writes each generated function's source with NamedTemporaryFile(delete=False).
    system_tmp, cache = tmp_path / "tmp", tmp_path / "cache"  # a cache of its own: other processes share ours
    system_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    monkeypatch.setattr(helpers, "CACHE_DIR", cache)
    run_step(PyTensorJaxBackend("cpu"), "lstm", "fp32", "forward")
    assert list(system_tmp.iterdir()) == []
    assert list((cache / "tmp").iterdir()) == []  # the folder the sources went to is gone


def _cache_settings(env: dict[str, str]) -> list[str]:
    code = (
        "from dlbench.backends.pytensor import helpers as m; import pytensor\n"
        "print(m.CACHE_DIR); print(pytensor.config.base_compiledir)"
    )
    ours = ("DLBENCH_CACHE_DIR", "XDG_CACHE_HOME", "PYTENSOR_FLAGS")
    clean = {k: v for k, v in os.environ.items() if k not in ours}
    done = subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_the_compile_cache_is_dlbenchs_and_the_user_may_move_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    xdg = [str(tmp_path / "xdg" / "dlbench" / "pytensor")] * 2
    assert _cache_settings({"HOME": str(home), "XDG_CACHE_HOME": str(tmp_path / "xdg")}) == xdg
    own = [str(tmp_path / "own" / "pytensor")] * 2
    assert _cache_settings({"HOME": str(home), "DLBENCH_CACHE_DIR": str(tmp_path / "own")}) == own
    # A user's own PYTENSOR_FLAGS entry wins over dlbench's.
    flags = {"HOME": str(home), "PYTENSOR_FLAGS": f"base_compiledir={tmp_path / 'mine'}"}
    assert _cache_settings(flags) == [str(home / ".cache" / "dlbench" / "pytensor"), str(tmp_path / "mine")]


@pytest.mark.parametrize(
    ("backend", "isolation"), [("pytensor", "fork"), ("pytensor", "spawn"), ("pytensor-jax", "fork")]
)
def test_cases_run_in_real_workers(sweep_cases: Any, backend: str, isolation: str) -> None:
    if backend == "pytensor-jax" and not HAS_JAX:
        pytest.skip("jax is not installed")
    plan = [Case("lstm", SIZES["lstm"], backend, "fp32", mode) for mode in ("forward", "train")]
    config = MeasureConfig(min_time_s=0.0, min_iters=2, max_time_s=0.5, warmup_iters=0)
    results = sweep_cases(plan, config, timeout_s=300, isolation=isolation)
    assert [doc["status"] for doc in results] == ["ok", "ok"], results
    for doc in results:
        assert doc["versions"]["pytensor"] == pytensor.__version__
        assert doc["settings"]["mode"] == ("CVM" if backend == "pytensor" else "JAX")
        assert doc["first_step_s"] > 0 and len(doc["samples_s"]) >= 2
