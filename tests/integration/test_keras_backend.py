"""What is Keras' own in the Keras 3 backends (keras-jax, keras-torch, keras-tensorflow), on CPU (what every backend
does alike, agreement with the float64 reference in each precision included, is test_backend_contract.py's): the
settings each engine records, Keras' other data_format, its options, each engine's errors classified, one engine
per process; and their cases end to end through real forked workers.

Keras fixes its engine at its first import and one process can hold one engine, so each backend's checks run
in a fresh process of their own: this file, run as a script with the backend's name, prints its findings as
JSON; the three run side by side while the tests below read them. The pytest process never imports Keras.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

if importlib.util.find_spec("keras") is None:  # find_spec, not importorskip: importing picks an engine
    pytest.skip("keras is not installed", allow_module_level=True)

from _contract import observed  # noqa: E402

from dlbench.backends import BACKENDS  # noqa: E402
from dlbench.core.cases import Case, MeasureConfig  # noqa: E402
from dlbench.workloads import get_workload  # noqa: E402
from dlbench.workloads.reference import reference  # noqa: E402

ENGINES = {"keras-jax": "jax", "keras-torch": "torch", "keras-tensorflow": "tensorflow"}
SIZES: dict[str, dict[str, int]] = {
    "lstm": {"seq_len": 3, "batch": 2, "hidden": 8},
    "vgg16": {"batch": 1, "image": 32},
    "googlenet": {"batch": 1, "image": 32},
    "alexnet": {"batch": 1, "image": 95},  # its last feature map 2x2: the Flatten's (C, H, W) order matters
    "resnet50": {"batch": 2, "image": 64},  # its last batch norms see 8 values per channel (verification.py: why)
    "transformer": {"batch": 2, "seq_len": 16, "d_model": 32, "heads": 4},  # not the default heads and d_model
}
# The CNNs checked in each engine's process: (workload, mode, data_format).
CNN_CHECKS = [("googlenet", "forward", "channels_last"), ("googlenet", "train", "channels_last"),
              ("alexnet", "train", "channels_last"), ("alexnet", "train", "channels_first"),
              ("resnet50", "forward", "channels_last")]  # fmt: skip


@functools.cache
def _reference(workload: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    return reference(get_workload(workload), SIZES[workload], seed=0)


def rel_error(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.linalg.norm(actual - expected) / np.linalg.norm(expected))


# -- the per-backend process ----------------------------------------------------------------------------------


def _check_backend(name: str) -> dict[str, Any]:
    """Run in a fresh process: every check of one Keras backend, as a JSON-able report."""
    import dlbench.backends.keras.engines as module

    # The registry's way in: the name lookup imports Keras on this backend's engine.
    cls = BACKENDS[name].load()
    report: dict[str, Any] = {"keras_backend": sys.modules["keras"].backend.backend()}
    report["versions"] = cls("cpu").versions()
    # Keras' other data_format, a case option: the same function, or what the engine says it cannot do here.
    wl = get_workload("vgg16")
    size = wl.size(SIZES["vgg16"])
    backend = cls("cpu", {"data_format": "channels_first"})
    case = Case("vgg16", size, name, "fp32", "forward", options={"data_format": "channels_first"})
    try:
        out = backend.prepare(case, wl, wl.make_weights(size), wl.make_inputs(size))()
        report["channels_first"] = {"data_format": backend.settings()["data_format"],
                                    "output_error": rel_error(backend.to_numpy(out), _reference("vgg16")[0])}
    except Exception as exc:  # noqa: BLE001 — the status and reason a result would record
        report["channels_first"] = {"status": backend.classify(exc), "error": backend.describe_error(exc)}
    report["cnn"] = {f"{w}-{mode}-{fmt}": _check_cnn(cls, name, w, mode, fmt) for w, mode, fmt in CNN_CHECKS}
    report["transformer"] = _check_transformer(cls, name)
    report["bad_option"] = str(_raised(lambda: cls("cpu", {"data_fromat": "channels_first"})))
    # classify() reads the engine's own errors: a real failed allocation (2**60 bytes: refused at once, nothing is
    # touched), and real linear-algebra kernels with no float16 version on this CPU (which ones lack it differs).
    keras, backend = sys.modules["keras"], cls("cpu")
    report["classify_oom"] = backend.classify(_raised(lambda: keras.ops.zeros((2**60,), "uint8")))
    half_eye = keras.ops.eye(2, dtype="float16")
    half_errors = [_raised(lambda: keras.ops.linalg.qr(half_eye)), _raised(lambda: keras.ops.linalg.det(half_eye))]
    report["classify_half_linalg"] = [backend.classify(e) for e in half_errors if e is not None]
    other = next(n for n in ENGINES if n != name)
    try:
        getattr(module, BACKENDS[other].target.partition(":")[2])
        report["second_engine"] = "allowed"
    except RuntimeError as exc:
        report["second_engine"] = str(exc)
    return report


def _check_cnn(cls: Any, name: str, workload: str, mode: str, data_format: str) -> dict[str, Any]:
    """One CNN step, fp32, against the float64 reference; or the status and reason the failure classifies as."""
    wl = get_workload(workload)
    size = wl.size(SIZES[workload])
    backend = cls("cpu", {"data_format": data_format})
    case = Case(workload, size, name, "fp32", mode, options={"data_format": data_format})
    try:
        result = backend.prepare(case, wl, wl.make_weights(size), wl.make_inputs(size))()
    except Exception as exc:  # noqa: BLE001 — the status and reason a result would record
        return {"status": backend.classify(exc), "error": backend.describe_error(exc)}
    ref_out, ref_grads = _reference(workload)
    out, grads = (result, {}) if mode == "forward" else result
    return {"output_error": rel_error(backend.to_numpy(out), ref_out), "grad_names": sorted(grads),
            "grad_errors": {k: rel_error(backend.to_numpy(g), ref_grads[k]) for k, g in grads.items()},
            "data_format": backend.settings()["data_format"]}  # fmt: skip


def _check_transformer(cls: Any, name: str) -> dict[str, Any]:
    """The transformer block's train step, fp32, against the float64 reference, and the Keras layers it is."""
    wl = get_workload("transformer")
    size = wl.size(SIZES["transformer"])
    backend = cls("cpu")
    out, grads = backend.prepare(Case("transformer", size, name, "fp32", "train"), wl, wl.make_weights(size),
                                 wl.make_inputs(size))()  # fmt: skip
    ref_out, ref_grads = _reference("transformer")
    model = backend._model
    return {"output_error": rel_error(backend.to_numpy(out), ref_out), "grad_names": sorted(grads),
            "grad_errors": {k: rel_error(backend.to_numpy(g), ref_grads[k]) for k, g in grads.items()},
            "qkv_kernel_in_step": list(grads["attn.qkv.weight"].shape),
            "layers": sorted({type(layer).__name__ for layer in model.layers}),
            "layer_norm_epsilons": sorted({layer.epsilon for layer in model.layers if hasattr(layer, "epsilon")}),
            "settings": backend.settings()}  # fmt: skip


def _raised(fn: Any) -> BaseException | None:
    try:
        fn()
    except Exception as exc:  # noqa: BLE001
        return exc
    return None


_PROCESSES: dict[str, subprocess.Popen[str]] = {}


def _start_all() -> None:
    """Start every available backend's process at once (they overlap: much of their time is imports and XLA)."""
    if _PROCESSES:
        return
    for name in ENGINES:
        if BACKENDS[name].available()[0]:
            command = [sys.executable, "-W", "error", __file__, name]  # warnings are errors there too
            _PROCESSES[name] = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module", autouse=True)
def _reap_processes() -> Any:
    """Whatever a test selection left unread (`-k keras-torch`) is stopped, not left running."""
    yield
    for proc in _PROCESSES.values():
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


@functools.cache
def findings(name: str) -> dict[str, Any]:
    _start_all()
    if name not in _PROCESSES:
        pytest.skip(BACKENDS[name].available()[1])
    out, err = _PROCESSES[name].communicate(timeout=300)
    assert _PROCESSES[name].returncode == 0, err[-4000:]
    return json.loads(out.strip().splitlines()[-1])


# -- tests ----------------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", list(ENGINES))
def test_settings_record_engine_compilation_layout_and_threads(name: str) -> None:
    found = findings(name)
    assert found["keras_backend"] == ENGINES[name]
    checks = observed(name)["checks"]  # the contract's run of this backend (test_backend_contract.py)
    lstm = checks[f"lstm-{name}-fp32-train"]["settings"]
    vgg = checks[f"vgg16-{name}-fp32-forward"]["settings"]
    assert all(checks[f"lstm-{name}-{p}-forward"]["settings"]["dtype_policy"] == d  # a pure policy: never mixed_*
               for p, d in (("fp32", "float32"), ("fp16", "float16"), ("bf16", "bfloat16")))  # fmt: skip
    assert lstm["keras_backend"] == ENGINES[name] and lstm["threads"] == 1
    assert lstm["use_cudnn"] == "auto" and lstm["cudnn_eligible"] is False  # the cpu device: no cuDNN
    assert vgg["data_format"] == "channels_last"  # Keras' default
    if name == "keras-jax":
        assert lstm["compiled"] == "jax.jit(model.stateless_call)"
        assert lstm["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
        # XLA CPU computes bf16 dots in f32 (read from the compiled HLO): settings() must say so.
        half = checks[f"lstm-{name}-bf16-forward"]["settings"]
        assert half["hlo_dot_conv_result_types"] == "f32" and "in f32" in half["compute_note"]
    elif name == "keras-torch":
        assert lstm["compiled"] == "eager" and lstm["torch_threads"] == 1
    else:
        assert lstm["compiled"] == "tf.function(jit_compile=False)"  # Keras' own rule: no XLA on CPU
        # TF's own settings, read by the tensorflow backends' helpers, under the tensorflow backend's names.
        assert lstm["intra_op_parallelism_threads"] == lstm["inter_op_parallelism_threads"] == 1
        assert lstm["threads_applied"] is True and "onednn" in lstm
    assert list(found["versions"])[:2] == ["keras", ENGINES[name]]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(ENGINES))
def test_channels_first_option_computes_the_same_function(name: str) -> None:
    found = findings(name)["channels_first"]
    if name == "keras-tensorflow" and "status" in found:
        # TensorFlow's own CPU convolution takes NHWC only; NCHW runs where oneDNN serves it (x86 CPUs with
        # AVX-512), not on others. Where it cannot, the case is `unsupported`, the reason TensorFlow's own words
        # first, not buried under its graph's traceback.
        assert found["status"] == "unsupported"
        assert found["error"].startswith("UnimplementedError: The Conv2D op currently only supports the NHWC")
        return
    assert found["data_format"] == "channels_first" and found["output_error"] < 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("name", list(ENGINES))
def test_cnns_are_functional_models_that_compute_the_workloads_function(name: str) -> None:
    # googlenet: Concatenate of inception branches, "same" and zero-padded max-pools; alexnet at a 2x2 last feature
    # map: Keras' Flatten gives (H, W, C) order in either data_format, the Dense after it has its rows permuted at
    # build; resnet50 forward: batch norm with batch statistics although the engine calls it with training=False
    # (moving statistics would give another function). Its gradients are ill-conditioned: not checked here.
    for check, result in findings(name)["cnn"].items():
        if name == "keras-tensorflow" and check.endswith("channels_first") and "status" in result:
            assert result["status"] == "unsupported", result  # TF's CPU conv: NHWC only, where oneDNN cannot serve
            continue
        workload = check.split("-")[0]
        assert result["output_error"] < (1e-4 if workload == "resnet50" else 1e-5), (check, result)
        assert result["data_format"] == check.rpartition("-")[2]
        if "-train-" in check:
            assert result["grad_names"] == sorted(_reference(workload)[1])
            assert max(result["grad_errors"].values()) < 1e-5, (check, result["grad_errors"])


@pytest.mark.slow
@pytest.mark.parametrize("name", list(ENGINES))
def test_the_transformer_block_is_keras_layers_that_compute_the_workloads_function(name: str) -> None:
    # LayerNormalization(epsilon=1e-5), Dense, Activation (tanh GELU), Add, and nanoGPT's attention as a small layer
    # of two Dense (stack.py says why not MultiHeadAttention); built for the size's heads and d_model (layers_for);
    # the fused qkv weight (3d, d) is a (d, 3d) Dense kernel in the step, (3d, d) only out of to_numpy.
    found = findings(name)["transformer"]
    assert found["output_error"] < 1e-5, found
    assert found["grad_names"] == sorted(_reference("transformer")[1])
    assert max(found["grad_errors"].values()) < 1e-5, found["grad_errors"]
    assert found["qkv_kernel_in_step"] == [32, 96]
    assert found["layers"] == ["Activation", "Add", "Dense", "InputLayer", "LayerNormalization", "SelfAttention"]
    assert found["layer_norm_epsilons"] == [1e-5]
    assert "data_format" not in found["settings"] and found["settings"]["dtype_policy"] == "float32"


@pytest.mark.slow
@pytest.mark.parametrize("name", list(ENGINES))
def test_refuses_what_it_cannot_do(name: str) -> None:
    found = findings(name)
    assert "unknown option 'data_fromat'" in found["bad_option"]
    assert found["classify_oom"] == "oom"
    assert found["classify_half_linalg"] and set(found["classify_half_linalg"]) == {"unsupported"}
    # A second Keras engine in the same process is refused, never mixed.
    assert "cannot also run on" in found["second_engine"]


@pytest.mark.slow
def test_cases_run_in_real_forked_workers(sweep_cases: Any) -> None:
    # "fork": each serving process imports Keras on its engine once (the registry's name lookup), then forks a
    # child per case. A Keras import in the child, or an engine started before the fork, would show here.
    names = [n for n in ENGINES if BACKENDS[n].available()[0]]
    plan = [Case("lstm", SIZES["lstm"], name, "fp32", "forward") for name in names]
    config = MeasureConfig(min_time_s=0.0, min_iters=2, max_time_s=0.5, warmup_iters=0)
    results = sweep_cases(plan, config, timeout_s=180, isolation="fork")
    assert [doc["status"] for doc in results] == ["ok"] * len(plan), results
    for doc in results:
        assert doc["settings"]["keras_backend"] == ENGINES[doc["case"]["backend"]]
        assert doc["import_s"] > 0.5  # Keras and its engine were imported by the serving process
        assert doc["first_step_s"] > 0 and len(doc["samples_s"]) >= 2


if __name__ == "__main__":
    print(json.dumps(_check_backend(sys.argv[1])))
