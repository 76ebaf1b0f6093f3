"""The workloads in Theano's API, shared by the `theano` (Theano 1.0.5) and `aesara` (Aesara 2.9) backends.

Aesara is Theano renamed: the same symbolic tensors, `scan`, `grad`, `function`, `nnet.conv2d` and `pool_2d`
under another module name. This module holds the graphs and the backend logic once, for a `TheanoAPI` that
each backend's own module fills in from the framework it imported (the only place that framework is imported,
inside the worker). Written as Theano's users wrote these models (the deeplearning.net LSTM tutorial,
Lasagne's VGG-16 model zoo):

- lstm: scan_lstm.py's, shared with PyTensor: the input projection of every step is one `dot` outside the
  recurrence; `scan` steps over it with the previous (h, c). The gradient is `grad`'s (scan's own backward scan).
- vgg16: `nnet.conv2d` (the abstract conv op that Theano's optimizer turns into CorrMM, im2col + BLAS gemm)
  with border_mode=(1, 1), the workload's padding, and filter_flip=False: the workload's OIHW weights are
  cross-correlation kernels, as PyTorch's and Caffe's are (Lasagne's model zoo loads VGG-16 with
  flip_filters=False for the same reason); bias broadcast with dimshuffle, `nnet.relu`; `pool_2d` with
  ws=(2, 2), ignore_border=True, mode="max". NCHW throughout, the framework's own layout.
- Weights are shared variables (`theano.shared`), the input a symbolic tensor: the compiled function takes
  the input only, as a Theano user's training function does. Shapes are symbolic (conv2d without
  input_shape/filter_shape), so one compiled C module serves every batch size, sequence length and hidden size.
- Compile time: prepare() builds the graph and its gradient; `function` runs in the FIRST call of the step,
  so the graph optimizations, C code generation and g++ (for modules not yet in the cache) are first_step_s.
- Loss = mean(output), reduced in float32 (as a user would for fp16); its gradient is cast back.

Worker-side module: Python >= 3.9, NumPy >= 1.21 and the standard library (it runs in a legacy environment).
"""

from __future__ import annotations

import ctypes
import glob
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dlbench.backends.base import Backend, Step, Unsupported
from dlbench.backends.theano.scan_lstm import scan_lstm
from dlbench.core.cases import Case
from dlbench.workloads import vgg16
from dlbench.workloads.base import Workload

DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def cache_dir(framework: str) -> Path:
    """dlbench's compile cache for a Theano-family framework: $DLBENCH_CACHE_DIR/<framework>, else
    $XDG_CACHE_HOME/dlbench/<framework>, else ~/.cache/dlbench/<framework> (not ~/.theano or ~/.aesara)."""
    root = os.environ.get("DLBENCH_CACHE_DIR")
    if root:
        return Path(root).expanduser() / framework
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "dlbench" / framework


def set_flags(variable: str, defaults: list[str]) -> None:
    """Put dlbench's defaults in front of the user's own THEANO_FLAGS / AESARA_FLAGS entries: both frameworks
    read the entries in order and the last one of a name wins, so a user's own setting overrides ours.
    Called before the framework is imported: it reads its flags once, at import."""
    os.environ[variable] = ",".join([*defaults, os.environ.get(variable, "")]).rstrip(",")


class TheanoAPI:
    """The framework's names that the graphs use: filled in by the backend's module after its import."""

    def __init__(self, label: str, module: Any, tensor: Any, conv2d: Any, pool_2d: Any, sigmoid: Any,
                 relu: Any, scan_op: type, perform_in_c: Callable[[], bool]) -> None:  # fmt: skip
        self.label, self.module, self.tensor = label, module, tensor
        self.conv2d, self.pool_2d, self.sigmoid, self.relu = conv2d, pool_2d, sigmoid, relu
        self.scan_op = scan_op  # the Scan op class, to look inside its compiled inner function
        self.scan_in_c = perform_in_c  # whether scan's loop runs compiled (scan_perform), not in Python


# -- graphs --------------------------------------------------------------------------------------------------


def lstm(api: Any, x: Any, w: dict[str, Any]) -> Any:
    """x: (seq_len, batch, hidden) -> h at every step, (seq_len, batch, hidden): the family's scan LSTM."""
    hidden = w["weight_hh"].get_value(borrow=True).shape[1]

    def scan(step: Any, **kwargs: Any) -> Any:
        outputs, _updates = api.module.scan(step, strict=True, **kwargs)
        return outputs

    return scan_lstm(api.tensor, scan, api.sigmoid, x, w, hidden)


def vgg16_body(api: Any, x: Any, w: dict[str, Any]) -> Any:
    """x: NCHW (batch, 3, image, image) -> NCHW (batch, 512, image/32, image/32)."""
    y = x
    convs = iter(vgg16.layers())
    for item in vgg16.CONFIG:
        if item == "M":
            y = api.pool_2d(y, ws=(2, 2), ignore_border=True, mode="max")
        else:
            name, _, _ = next(convs)
            y = api.conv2d(y, w[name + ".weight"], border_mode=(1, 1), filter_flip=False)
            y = api.relu(y + w[name + ".bias"].dimshuffle("x", 0, "x", "x"))
    return y


GRAPHS: dict[str, Callable[[Any, Any, dict[str, Any]], Any]] = {"lstm": lstm, "vgg16": vgg16_body}


# -- NumPy's OpenBLAS --------------------------------------------------------------------------------------


def numpy_openblas() -> ctypes.CDLL | None:
    """NumPy's own OpenBLAS (numpy.libs/libopenblas*.so in its wheel), whose thread count configure() sets: with
    blas.ldflags empty, Theano's C code calls its BLAS routines through NumPy's C API, so this is the BLAS
    that runs Theano's matrix products. None where NumPy links another BLAS (it is then left alone)."""
    folder = Path(np.__file__).parent.parent / "numpy.libs"
    for path in sorted(glob.glob(str(folder / "libopenblas*.so"))):
        return ctypes.CDLL(path)  # dlopen returns the instance NumPy already loaded
    return None


def _openblas_call(lib: ctypes.CDLL, name: str) -> Any:
    for symbol in (name + "64_", name):  # NumPy's wheels build OpenBLAS with 64-bit integers and a 64_ suffix
        if hasattr(lib, symbol):
            return getattr(lib, symbol)
    return None


# -- the backend -------------------------------------------------------------------------------------------


class TheanoFamilyBackend(Backend):
    """Theano's API on the CPU, with its C linker (mode FAST_RUN: the cvm linker and the fast_run optimizer)."""

    api: Any = None  # the TheanoAPI, set by the subclass's module

    def __init__(self, device: str, options: dict[str, Any] | None = None) -> None:
        super().__init__(device, options)
        self.dtype: str | None = None
        self.function: Any = None  # the last compiled function (for settings())
        self.workload: str | None = None
        config, framework = self.api.module.config, self.api.module.__name__
        if self.cache_dir is not None and Path(config.base_compiledir) != Path(self.cache_dir) / framework:
            raise Unsupported(
                f"option cache_dir={self.cache_dir!r}: {self.api.label} fixed its compiledir when it was imported "
                f"({config.base_compiledir}); run with isolation spawn, whose worker sets it first"
            )

    def configure(self, threads: int) -> None:
        lib = numpy_openblas()
        setter = _openblas_call(lib, "openblas_set_num_threads") if lib is not None else None
        if setter is not None:
            setter(threads)

    def prepare(
        self, case: Case, workload: Workload, weights: dict[str, np.ndarray], inputs: dict[str, np.ndarray]
    ) -> Step:
        api = self.api
        if self.device != "cpu":
            raise Unsupported(f"the {self.name} backend runs on the CPU only ({api.label}'s C linker)")
        self.check_supported(case, workload, DTYPES, GRAPHS)
        dtype = DTYPES[case.precision]
        try:
            tensor_type = api.tensor.TensorType(dtype, (False,) * inputs["x"].ndim)
        except TypeError as exc:  # bf16: "Unsupported dtype for TensorType: bfloat16"
            raise Unsupported(f"{api.label} {api.module.__version__}: {exc}") from exc
        self.dtype, self.workload = dtype, workload.name

        self.check_graph(workload.name, tensor_type)
        names = list(weights)  # the workload's weight names, in its order
        train = case.mode == "train"
        with self.phase("prepare_graph_s"):
            shared = {k: api.module.shared(np.array(v, dtype=dtype), name=k, borrow=True) for k, v in weights.items()}
            x = tensor_type("x")
            out = GRAPHS[workload.name](api, x, shared)
            outputs = [out]
            if train:
                outputs += api.module.grad(out.astype("float32").mean(), [shared[k] for k in names])
        x_value = np.array(inputs["x"], dtype=dtype)
        function = None  # this prepare()'s own: a backend object may prepare several steps (dlbench verify)

        def step() -> Any:
            nonlocal function
            if function is None:  # compile on the first call: its time is the case's first_step_s
                with self.phase("compile_s"):  # optimizations, C code generation, g++ or the compiledir's modules
                    self.function = function = api.module.function([x], outputs)
                function.trust_input = True  # x is already an array of the right dtype
                with self.phase("first_execute_s"):
                    result = function(x_value)
            else:
                result = function(x_value)
            return (result[0], {name: result[1 + i] for i, name in enumerate(names)}) if train else result[0]

        return step

    def check_graph(self, workload: str, tensor_type: Any) -> None:
        """Raise Unsupported where the framework is known to be unable to compile this workload (subclasses)."""

    def compile_cache(self) -> dict[str, str]:
        config = self.api.module.config
        return {"what": f"{self.api.label} compiledir (compiled C modules)", "dir": str(config.compiledir)}

    def settings(self) -> dict[str, Any]:
        config = self.api.module.config
        settings: dict[str, Any] = {
            "mode": config.mode,
            "linker": config.linker,
            "optimizer": config.optimizer,
            "device": config.device,
            "floatX": config.floatX,
            "dtype": self.dtype,
            "compiled": f"in the first step ({self.api.module.__name__}.function)",
            "weights": "shared variables; the compiled function takes the input only",
            "blas.ldflags": config.blas.ldflags,
            "blas": (f"linked: {config.blas.ldflags}" if config.blas.ldflags else
                     "none linked: BLAS calls go through NumPy's C API (its OpenBLAS)"),  # fmt: skip
            "openmp": config.openmp,
            "allow_gc": config.allow_gc,
            "compile_cache": str(config.compiledir),
            "cxx": config.cxx,
        }
        if self.workload == "vgg16":
            settings["vgg16_ops"] = "nnet.conv2d(border_mode=(1, 1), filter_flip=False) + nnet.relu; pool_2d(max, 2x2)"
        lib = numpy_openblas()
        getter = _openblas_call(lib, "openblas_get_num_threads") if lib is not None else None
        if getter is not None:
            settings["numpy_openblas_threads"] = getter()
        if self.function is not None:
            settings["ops"] = self.op_names(self.function)
            settings["ops_in_python"] = self.ops_in_python(self.function)
            if "Scan" in settings["ops"]:
                settings["scan_loop"] = "C (scan_perform)" if self.api.scan_in_c() else "Python (Scan.execute)"
        return settings

    def _vm_nodes(self, function: Any) -> list[Any]:
        """(node, thunk) of the compiled function and of scan's inner functions."""
        found, pending = [], [function]
        while pending:
            function = pending.pop()
            vm = getattr(function, "vm", None) or getattr(function, "fn", None)  # Aesara's name, Theano's
            for node, thunk in zip(getattr(vm, "nodes", ()), getattr(vm, "thunks", ())):  # noqa: B905 (3.9)
                found.append((node, thunk))
                inner = getattr(node.op, "fn", None) if isinstance(node.op, self.api.scan_op) else None
                if inner is not None:
                    pending.append(inner)
        return found

    def op_names(self, function: Any) -> list[str]:
        """The ops the optimizer chose (CorrMM, Pool, Scan, Gemm, ...): what ran, not what was written."""
        return sorted({type(node.op).__name__ for node, _ in self._vm_nodes(function)})

    def ops_in_python(self, function: Any) -> list[str]:
        """Ops that run their Python `perform` instead of C code (the framework falls back silently, e.g. for
        float16). Empty when every op runs compiled."""
        return sorted({type(node.op).__name__ for node, thunk in self._vm_nodes(function)
                       if not isinstance(node.op, self.api.scan_op) and not hasattr(thunk, "cthunk")})  # fmt: skip

    def versions(self) -> dict[str, str]:
        return {self.api.module.__name__: self.api.module.__version__, "numpy": np.__version__}

    def classify(self, exc: BaseException) -> str | None:
        current: BaseException | None = exc
        for _ in range(10):
            if current is None:
                break
            text = str(current)
            if isinstance(current, MemoryError) or "Failed to allocate" in text or "alloc failed" in text:
                return "oom"
            # The optimizer found no implementation of an abstract op for these options (e.g. conv2d in
            # float16 on the CPU): "... optimization failed: there is no implementation available ...".
            if "there is no implementation available" in text or isinstance(current, NotImplementedError):
                return "unsupported"
            current = current.__cause__ or current.__context__
        return None
