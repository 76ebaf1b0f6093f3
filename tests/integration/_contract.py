"""The backend contract's checks for one backend, run as `python _contract.py BACKEND` in a fresh process (each
framework imported by its own process, as a worker would; Keras can hold one engine per process); prints what it
observed as JSON, and test_backend_contract.py judges it.

For every (workload, precision, mode) of CHECKS: the backend's own step at a tiny size on the CPU, its output and
gradients compared with the float64 reference, the dtype each came back in, the settings it recorded; or the
status its failure classifies as. Then what every backend must do alike: refuse a precision it does not implement,
refuse a device it has not, call a MemoryError out of memory, say its versions.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import traceback
import warnings
from typing import Any

from dlbench.backends import BACKENDS
from dlbench.backends.base import Backend, Unsupported
from dlbench.core.cases import Case
from dlbench.workloads import get_workload
from dlbench.workloads.reference import reference, relative_error

SIZES: dict[str, dict[str, int]] = {
    "lstm": {"seq_len": 3, "batch": 2, "hidden": 8},
    "vgg16": {"batch": 1, "image": 32},
}
# VGG-16 in fp16/bf16 is checked forward only: its half-precision gradients at this size are ill-conditioned (max-pool
# and ReLU route each gradient through one winner, and rounding flips winners), which `dlbench verify` covers at its
# own sizes with its own bounds; and XLA CPU takes ~20 s to compile each VGG train step.
CHECKS: list[tuple[str, str, str]] = [
    *[("lstm", p, m) for p in ("fp32", "fp16", "bf16") for m in ("forward", "train")],
    ("vgg16", "fp32", "forward"), ("vgg16", "fp32", "train"),
    ("vgg16", "fp16", "forward"), ("vgg16", "bf16", "forward"),
]  # fmt: skip


def check_id(workload: str, backend: str, precision: str, mode: str) -> str:
    """`lstm-torch-fp32-train`: a check's readable id."""
    return f"{workload}-{backend}-{precision}-{mode}"


def _failure(backend: Backend, exc: BaseException) -> dict[str, Any]:
    status = "unsupported" if isinstance(exc, Unsupported) else backend.classify(exc) or "error"
    text = str(exc) if isinstance(exc, Unsupported) else backend.describe_error(exc)
    return {"status": status, "error": text[:1500], "traceback": traceback.format_exc()[-1500:]}


def _step(cls: type[Backend], name: str, workload: str, precision: str, mode: str, device: str = "cpu") -> Any:
    wl = get_workload(workload)
    size = wl.size(SIZES[workload])
    backend = cls(device)
    backend.configure(1)
    step = backend.prepare(Case(workload, size, name, precision, mode, device), wl, wl.make_weights(size),
                           wl.make_inputs(size))  # fmt: skip
    result = step()
    backend.synchronize(result)
    return backend, result


def check(cls: type[Backend], name: str, workload: str, precision: str, mode: str) -> dict[str, Any]:
    backend = cls("cpu")
    try:
        backend, result = _step(cls, name, workload, precision, mode)
    except Exception as exc:  # noqa: BLE001 — what the backend cannot do is the observation
        return _failure(backend, exc)
    ref_out, ref_grads = reference(get_workload(workload), SIZES[workload])
    out, grads = (result, {}) if mode == "forward" else result
    return {
        "status": "ok",
        "output_dtype": backend.dtype_name(out),
        "output_error": relative_error(backend.to_numpy(out), ref_out),
        "grad_names": sorted(grads),
        "grad_dtypes": {k: backend.dtype_name(g) for k, g in grads.items()},
        "grad_errors": {k: relative_error(backend.to_numpy(g), ref_grads[k]) for k, g in grads.items()},
        "settings": json.loads(json.dumps(backend.settings(), default=str)),
    }


@functools.cache
def observed(name: str) -> dict[str, Any]:
    """observe(name), run in a fresh process of its own (once per test session): what the tests read."""
    done = subprocess.run([sys.executable, __file__, name], capture_output=True, text=True, timeout=1200)
    if done.returncode != 0:
        raise AssertionError(f"_contract.py {name} failed:\n{done.stderr[-4000:]}")
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def observe(name: str) -> dict[str, Any]:
    cls = BACKENDS[name].load()
    found: dict[str, Any] = {"checks": {check_id(w, name, p, m): check(cls, name, w, p, m) for w, p, m in CHECKS}}
    try:
        _step(cls, name, "lstm", "amp-fp16", "forward")
        found["amp_fp16"] = {"status": "ok"}
    except Exception as exc:  # noqa: BLE001
        found["amp_fp16"] = _failure(cls("cpu"), exc)
    try:
        _step(cls, name, "lstm", "fp32", "forward", device="cuda")
        found["cuda"] = {"status": "ok"}
    except Exception as exc:  # noqa: BLE001
        found["cuda"] = _failure(cls("cpu"), exc)
    backend = cls("cpu")
    found["classify_memory_error"] = backend.classify(MemoryError())
    found["versions"] = backend.versions()
    return found


if __name__ == "__main__":
    warnings.simplefilter("error")  # as pytest's filterwarnings = error; but the frameworks' own, on paths taken here:
    # PyTensor's C linker falls back to Python for float16 ops, per op (settings()["ops_in_python"] lists them);
    warnings.filterwarnings("ignore", "Disabling C code for .* due to unsupported float16", UserWarning)
    # inductor's import uses torch's own deprecated torch.jit.script_method (torch 2.13).
    warnings.filterwarnings("ignore", "`torch.jit.script_method` is deprecated", DeprecationWarning)
    print(json.dumps(observe(sys.argv[1]), default=str))
