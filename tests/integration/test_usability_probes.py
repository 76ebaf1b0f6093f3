"""`dlbench usability` end to end with real workers and real frameworks (CPU): a print in the model's forward runs on
every step in eager PyTorch and only while tracing under jax.jit; a shape mismatch's error is captured verbatim;
torch.export, jax.export and a TensorFlow SavedModel reload and reproduce the model's output."""

from __future__ import annotations

import importlib.util
import json

import pytest

from dlbench import cli
from dlbench.store import Store

pytestmark = pytest.mark.slow


def _need(*modules: str) -> None:
    for module in modules:
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed")


def _findings(path: str) -> tuple[dict[str, dict], dict[str, dict]]:  # type: ignore[type-arg]
    store = Store(path, create=False)
    try:
        run_id = store.latest_run_with("usability") or store.latest_run_with("export")
        assert run_id is not None
        assert store.get_run(run_id)["status"] == "complete"
        return store.findings(run_id, "usability"), store.findings(run_id, "export")
    finally:
        store.close()


def test_torch_eager_prints_every_step_jax_jit_once_and_exports_reproduce(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    _need("torch", "jax")
    store = str(tmp_path / "u.sqlite")
    argv = [
        "usability",
        "--backends",
        "torch,jax",
        "--workloads",
        "lstm",
        "--parts",
        "debugging,export",
        "--paths",
        "torch.export,jax.export",
        "--store",
        store,
        "--format",
        "json",
    ]
    assert cli.main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    usability, exports = _findings(store)
    assert len(printed["usability"]) == len(usability) == 4  # debugging + shape_error, per backend

    torch_debug, jax_debug = usability["debugging-torch-lstm"], usability["debugging-jax-lstm"]
    assert torch_debug["prints"] == {"build": 0, "step1": 1, "steps2_3": 2} and torch_debug["every_step"]
    assert jax_debug["prints"] == {"build": 0, "step1": 1, "steps2_3": 0} and not jax_debug["every_step"]
    # A breakpoint() beside the print is reached exactly as often (its hook counts instead of stopping).
    assert torch_debug["breakpoints"] == torch_debug["prints"] and jax_debug["breakpoints"] == jax_debug["prints"]

    shape = usability["shape_error-torch-lstm"]
    assert shape["raised_in"] == "step1" and shape["exception"] == "builtins.RuntimeError"
    assert "Expected 8, got 9" in shape["message"]  # torch's own words, verbatim
    assert usability["shape_error-jax-lstm"]["raised_in"] == "step1"

    assert set(exports) == {"torch-lstm-torch.export", "jax-lstm-jax.export"}
    for doc in exports.values():
        assert doc["status"] == "ok" and doc["outcome"] == "reproduces", doc
        assert doc["max_rel_error"] <= 1e-5 and doc["artifact_bytes"] > 0


def test_tensorflow_saved_model_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    _need("tensorflow")
    store = str(tmp_path / "u.sqlite")
    argv = [
        "usability",
        "--backends",
        "tensorflow",
        "--workloads",
        "lstm",
        "--parts",
        "export",
        "--paths",
        "saved_model",
        "--store",
        store,
        "--format",
        "markdown",
    ]
    assert cli.main(argv) == 0
    _, exports = _findings(store)
    doc = exports["tensorflow-lstm-saved_model"]
    assert doc["outcome"] == "reproduces" and doc["max_rel_error"] <= 1e-5, doc
