"""Worker-side usability probes: debugging (does a print in the model's forward run on every step? what does a
shape mismatch's error look like?) and moving to production (which export paths work, and does the exported
artifact reproduce the outputs?). Each runs in a worker process through the worker's `task="call"`:

    debugging(case, backend_cls)                 dlbench.backends.usability:debugging
    shape_error(case, backend_cls)               dlbench.backends.usability:shape_error
    export(case, backend_cls, path, directory)   dlbench.backends.usability:export

The probes run dlbench's own models, not toy ones: `debugging` and `shape_error` run the backend's own
prepare() and step, with the framework module's builder patched (in the worker only) so that the model's forward
first calls a Python `print`; `export` builds the same model from the backend module's builders in float32.
The per-framework parts are one module each (torch, tensorflow, jax, pytensor, keras), imported only in a worker.
This package's __init__ imports no framework: the parent reads PROBE_MODULES and EXPORT_PATHS from it.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import re
import sys
import traceback
import warnings
from typing import Any

from dlbench.backends.base import Backend
from dlbench.core.cases import Case
from dlbench.workloads import get_workload

# backend -> the module holding its probes (a compiled variant shares its framework's module).
PROBE_MODULES: dict[str, str] = {
    "torch": "torch",
    "torch-compile": "torch",
    "tensorflow": "tensorflow",
    "tensorflow-xla": "tensorflow",
    "jax": "jax",
    "pytensor": "pytensor",
    "pytensor-jax": "pytensor",
    "keras-jax": "keras",
    "keras-torch": "keras",
    "keras-tensorflow": "keras",
}

# backend -> export paths probed. A compiled variant exports the same model as its base backend, so only the
# base is probed (torch-compile, tensorflow-xla, pytensor-jax are left out). Keras' paths run on each engine.
_KERAS_PATHS = (".keras", "export-tf_saved_model", "export-onnx")
EXPORT_PATHS: dict[str, tuple[str, ...]] = {
    "torch": ("torch.export", "torchscript-trace", "torchscript-script", "torch.onnx"),
    "tensorflow": ("saved_model", "tflite", "tf2onnx"),
    "jax": ("jax.export", "stablehlo-text", "jax2tf-saved_model"),
    "pytensor": ("pickle-function",),
    "keras-jax": _KERAS_PATHS,
    "keras-torch": _KERAS_PATHS,
    "keras-tensorflow": _KERAS_PATHS,
}

MARKER = "dlbench-usability-print"
BREAK_MARKER = "dlbench-usability-breakpoint"


class NotProbed(Exception):
    """The path needs something that is not installed here (the message names it): not a failure."""


def needs(*modules: str) -> None:
    """Raise NotProbed unless every module is importable (checked without importing it)."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise NotProbed(f"needs {', '.join(missing)} (not installed: pip install {' '.join(missing)})")


# A reloaded artifact reproduces the model if its outputs agree within fp32's verification tolerance.
REPRODUCE_TOLERANCE = 1e-5


def _probes(backend: str) -> Any:
    return importlib.import_module(f"dlbench.backends.usability.{PROBE_MODULES[backend]}")


def _backend_module(backend: Backend) -> Any:
    return sys.modules[type(backend).__module__]


def _data(case: Case, wrong: bool = False) -> tuple[Any, dict[str, Any], dict[str, Any], dict[str, Any]]:
    workload = get_workload(case.workload)
    size = workload.size(case.size)
    weights, inputs = workload.make_weights(size, case.seed), workload.make_inputs(size, case.seed)
    if wrong:
        import numpy as np

        shape = list(inputs["x"].shape)
        shape[-1 if case.workload == "lstm" else 1] += 1  # LSTM features hidden+1; VGG channels 4
        inputs = {"x": np.random.default_rng(0).standard_normal(shape, dtype=np.float32)}
    return workload, size, weights, inputs


def debugging(case: Case, backend_cls: type[Backend]) -> dict[str, Any]:
    """Run the backend's own step 3 times with a `print` at the top of the model's forward; count the prints
    while the step is prepared ("build"), in step 1 (where tracing/compiling happens) and in steps 2-3."""
    from dlbench.runner.worker import new_backend

    workload, size, weights, inputs = _data(case)
    backend = new_backend(case, backend_cls)
    probes = _probes(case.backend)
    counts: dict[str, int] = {}
    stops: dict[str, int] = {}

    def phase(name: str) -> contextlib.AbstractContextManager[Any]:
        buffer = io.StringIO()

        @contextlib.contextmanager
        def capture() -> Any:
            with contextlib.redirect_stdout(buffer):
                yield
            counts[name] = buffer.getvalue().count(MARKER)
            stops[name] = buffer.getvalue().count(BREAK_MARKER)

        return capture()

    def hook() -> None:
        print(MARKER)
        breakpoint()  # reaches sys.breakpointhook, replaced below by one that counts instead of stopping

    saved_hook, saved_env = sys.breakpointhook, os.environ.pop("PYTHONBREAKPOINT", None)  # "0" would disable it
    sys.breakpointhook = lambda *args, **kwargs: print(BREAK_MARKER)
    try:
        with probes.instrument(_backend_module(backend), case.workload, hook):
            with phase("build"):
                step = backend.prepare(case, workload, weights, inputs)
            with phase("step1"):
                backend.synchronize(step())
            with phase("steps2_3"):
                backend.synchronize(step())
                backend.synchronize(step())
    finally:
        sys.breakpointhook = saved_hook
        if saved_env is not None:
            os.environ["PYTHONBREAKPOINT"] = saved_env
    return {
        "part": "debugging",
        "backend": case.backend,
        "workload": case.workload,
        "size": size,
        "compiled_by": probes.IDIOM[case.backend],
        "prints": counts,
        "breakpoints": stops,
        "every_step": counts["steps2_3"] == 2,
    }


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # .../dlbench
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # Keras bolds the core of its messages for terminals


def _frame_kind(filename: str) -> str:
    """dlbench (its own source: the user's code here), framework (an installed package), or other (stdlib, code
    that a framework generated into a temporary file)."""
    if os.path.abspath(filename).startswith(_PACKAGE_DIR + os.sep):
        return "dlbench"
    path = filename.replace(os.sep, "/")
    return "framework" if ("site-packages/" in path or "dist-packages/" in path) else "other"


def _short(filename: str) -> str:
    path = filename.replace(os.sep, "/")
    for anchor in ("site-packages/", "dist-packages/", "src/"):
        if anchor in path:
            return path.split(anchor, 1)[1]
    return path


def describe_exception(exc: BaseException, lines: int = 15, chars: int = 1500) -> dict[str, Any]:
    """The exception as a user meets it: type, message (first lines, verbatim), and where its traceback ends."""
    message = _ANSI.sub("", str(exc))
    kept = message.splitlines()[:lines]
    text = "\n".join(kept)
    truncated = len(kept) < len(message.splitlines()) or len(text) > chars
    frames = traceback.extract_tb(exc.__traceback__)
    kinds = [_frame_kind(f.filename) for f in frames]
    user = next((f for f in reversed(frames) if _frame_kind(f.filename) == "dlbench"), None)
    last = frames[-1] if frames else None
    return {
        "exception": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "message": text[:chars] + (" …" if truncated else ""),
        "message_lines": len(message.splitlines()),
        "traceback_frames": len(frames),
        "framework_frames": kinds.count("framework"),
        "innermost": f"{_short(last.filename)}:{last.lineno} in {last.name}" if last else None,
        "innermost_kind": _frame_kind(last.filename) if last else None,
        "user_frame": f"{_short(user.filename)}:{user.lineno}: {(user.line or '').strip()}" if user else None,
        "message_names_dlbench_file": "dlbench/" in message,
    }


def shape_error(case: Case, backend_cls: type[Backend]) -> dict[str, Any]:
    """Feed the model an input one feature too wide (LSTM: hidden+1 features; VGG-16: 4 channels) and capture
    the error as a user would see it: raised while preparing ("build") or in the first step."""
    from dlbench.runner.worker import new_backend

    workload, size, weights, inputs = _data(case, wrong=True)
    expected = tuple(workload.input_shapes(size)["x"])
    doc: dict[str, Any] = {
        "part": "shape_error",
        "backend": case.backend,
        "workload": case.workload,
        "size": size,
        "input": f"x of shape {tuple(inputs['x'].shape)} where the model takes {expected}",
    }
    backend = new_backend(case, backend_cls)
    phase = "build"
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            step = backend.prepare(case, workload, weights, inputs)
            phase = "step1"
            backend.synchronize(step())
    except Exception as exc:  # noqa: BLE001 — the error is what is measured
        return {**doc, "raised_in": phase, **describe_exception(exc)}
    return {**doc, "raised_in": None, "note": "no error: the framework accepted the wrongly shaped input"}


def export(case: Case, backend_cls: type[Backend], path: str, directory: str) -> dict[str, Any]:
    """Export the float32 model by `path`, reload the artifact, and compare its output with the model's."""
    import numpy as np

    from dlbench.runner.worker import new_backend

    workload, size, weights, inputs = _data(case)
    backend = new_backend(case, backend_cls)
    doc: dict[str, Any] = {
        "part": "export",
        "backend": case.backend,
        "workload": case.workload,
        "path": path,
        "size": size,
    }
    probes = _probes(case.backend)
    os.makedirs(directory, exist_ok=True)
    try:
        # Deprecation warnings on the way are part of the answer ("works, but deprecated"): recorded.
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = probes.export(backend, _backend_module(backend), workload, size, weights, inputs, path, directory)
    except NotProbed as exc:
        return {**doc, "outcome": "not probed", "reason": str(exc)}
    except Exception as exc:  # noqa: BLE001 — a failing export path is the finding
        return {**doc, "outcome": "fails", **describe_exception(exc, lines=6, chars=600)}
    deprecations = [
        str(w.message).splitlines()[0][:240]
        for w in caught
        if issubclass(w.category, (DeprecationWarning, FutureWarning, PendingDeprecationWarning))
    ]
    if deprecations:
        doc["deprecation_warnings"] = list(dict.fromkeys(deprecations))[:3]
    doc.update({k: v for k, v in result.items() if k not in ("reference", "reloaded")})
    doc["artifact_bytes"] = sum(
        os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(directory) for f in files
    )
    if result.get("reloaded") is None:
        doc["outcome"] = "exported, not re-run"
        return doc
    ref = np.asarray(result["reference"], dtype=np.float64)
    got = np.asarray(result["reloaded"], dtype=np.float64)
    if ref.shape != got.shape:
        doc.update(outcome="differs", detail=f"output shape {got.shape}, expected {ref.shape}")
        return doc
    scale = float(np.max(np.abs(ref))) or 1.0
    doc["max_rel_error"] = float(np.max(np.abs(got - ref))) / scale
    doc["outcome"] = "reproduces" if doc["max_rel_error"] <= REPRODUCE_TOLERANCE else "differs"
    return doc
