"""The worker side of the usability probes: debugging (does a print in the model's forward run on every step? what
does a shape mismatch's error look like?) and moving to production (which export paths work, and does the exported
artifact reproduce the outputs?). Each runs in a worker process through the worker's `task="call"`, on the case's
backend, instantiated and configured there:

    debugging(case, backend)                 dlbench.usability.worker:debugging
    shape_error(case, backend)               dlbench.usability.worker:shape_error
    export(case, backend, path, directory)   dlbench.usability.worker:export

The probes run dlbench's own models, not toy ones: `debugging` and `shape_error` run the backend's own
prepare() and step, with the framework's model builder patched (in the worker only) so that the model's forward
first calls a Python `print`; `export` builds the same model from the backend's builders in float32. What is
framework-specific (how to patch the builder, how to export) is each framework folder's usability.py, named by the
backend registry (`usability_of`) and imported only in a worker.
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

from dlbench.backends import get_backend, usability_of
from dlbench.backends.base import Backend, ExportCase, NotProbed, Unsupported
from dlbench.core.cases import Case
from dlbench.workloads import get_workload

MARKER = "dlbench-usability-print"
BREAK_MARKER = "dlbench-usability-breakpoint"


# A reloaded artifact reproduces the model if its outputs agree within fp32's verification tolerance.
REPRODUCE_TOLERANCE = 1e-5


def _probes(backend: str) -> Any:
    module, reason = usability_of(backend)
    if module is None:
        raise Unsupported(reason)  # the parent asks only backends with probes: a guard, not a path
    return importlib.import_module(module)


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


def debugging(case: Case, backend: Backend) -> dict[str, Any]:
    """Run the backend's own step 3 times with a `print` at the top of the model's forward; count the prints
    while the step is prepared ("build"), in step 1 (where tracing/compiling happens) and in steps 2-3."""
    workload, size, weights, inputs = _data(case)
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
        with probes.instrument(case.workload, hook):
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
        "compiled_by": get_backend(case.backend).idiom,
        "prints": counts,
        "breakpoints": stops,
        "every_step": counts["steps2_3"] == 2,
    }


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # .../dlbench
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


def shape_error(case: Case, backend: Backend) -> dict[str, Any]:
    """Feed the model an input one feature too wide (LSTM: hidden+1 features; VGG-16: 4 channels) and capture
    the error as a user would see it: raised while preparing ("build") or in the first step."""
    workload, size, weights, inputs = _data(case, wrong=True)
    expected = tuple(workload.input_shapes(size)["x"])
    doc: dict[str, Any] = {
        "part": "shape_error",
        "backend": case.backend,
        "workload": case.workload,
        "size": size,
        "input": f"x of shape {tuple(inputs['x'].shape)} where the model takes {expected}",
    }
    phase = "build"
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            step = backend.prepare(case, workload, weights, inputs)
            phase = "step1"
            backend.synchronize(step())
    except Exception as exc:  # noqa: BLE001 — the error is what is measured
        return {**doc, "raised_in": phase, **describe_exception(exc)}
    return {**doc, "raised_in": None, "note": "no error: the framework accepted the wrongly shaped input"}


def export(case: Case, backend: Backend, path: str, directory: str) -> dict[str, Any]:
    """Export the float32 model by `path`, reload the artifact, and compare its output with the model's."""
    import numpy as np

    workload, size, weights, inputs = _data(case)
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
            result = probes.export(ExportCase(backend, workload, size, weights, inputs), path, directory)
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
