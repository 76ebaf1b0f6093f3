"""PyTensor backends: `pytensor` (C linker, mode "CVM") and `pytensor-jax` (the same graphs in JAX mode).

PyTensor is Theano's maintained fork; the graphs are written the way a Theano user writes them: symbolic
variables, `pytensor.scan` over time steps, `pytensor.grad` (scan's own gradient), one `pytensor.function`.

- lstm: the Theano family's scan LSTM (backends/theano/scan_lstm.py, as Theano 1.0.5 and Aesara run it): the input
  projection of all steps is one dot outside the scan; the scan step adds `h @ W_hh.T`, applies the gates
  (i, f, g, o) and returns (h, c).
- vgg16: PyTensor 3 no longer has Theano's neural-net `conv2d`/`pool_2d` ops (only a one-channel signal
  `convolve2d`), so the body is built from tensor primitives, as a PyTensor user would write it today:
  activations NHWC; each conv3x3 is im2col (the zero-padded input, 9 shifted slices stacked on a new last
  axis) plus ONE matrix product with the OIHW weight reshaped (a free view) to (O, C·9); bias + ReLU; a 2x2
  max-pool is a reshape + max. The NCHW input and output are transposed inside the graph; the weights stay
  OIHW, so the gradients come out in the workload's layout with no copy outside the graph.
- the layer stacks (alexnet, overfeat, vgga, googlenet, resnet50, transformer): stack.py builds any stack of the
  workloads' layer records the same way (im2col for any kernel/stride/padding, max-pool as the maximum of shifted
  strided slices, batch norm from the batch's mean and variance, PyTensor's log_softmax; the transformer block's
  sequence Linear as one dot, layer norm, tanh GELU, attention with pt.matmul and special.softmax).
  special.softmax and log_softmax are OpFromGraph ops in PyTensor 3 ("symbolic ops", no C code of their own):
  the first call compiles their inner graph in `pytensor.config.mode`, Numba by default, so the step compiles and
  first runs with config.mode set to the case's mode (CVM: their inner graph is C code; fp16 fails in Numba).
- The weights and the input are explicit function inputs, passed as arrays converted once in prepare()
  (NumPy for the C linker, device arrays for JAX), with `trust_input=True`. `pytensor` keeps shapes symbolic,
  so its compiled C modules (cached on disk) serve every batch size, sequence length and hidden size.
- Compile time: prepare() builds the graph and its gradient; `pytensor.function` runs in the FIRST call of the
  step, so compilation (rewrites + C code generation + g++, or JAX tracing + XLA) is the case's first_step_s.
  `first_step_phases`: prepare_graph_s (in prepare(), part of setup_s: the symbolic graph and pytensor.grad),
  then, in the first step, rewrite_s and link_s, the outer function's graph rewrites and linking as PyTensor's
  own timers log them (linking includes compiling scan's inner function, generating and compiling C code, or
  loading it from the compiledir), then first_execute_s, the compiled function's first call (in JAX mode that
  is where jax.jit traces and XLA compiles). Where those log lines are missing, compile_s is the whole
  pytensor.function call.
- Linker: CVM, the C VM linker with the fast_run rewrites (Theano's default). PyTensor 3's default, Numba,
  compiled VGG-16 cold in 79 s (forward) / 249 s (train) with 5.8 GB peak RSS on this 2-CPU machine, and has
  no float16 ("NotImplementedError: float16" from numba). CVM, cold cache: ~50 s for either, ~270 MB peak RSS;
  warm cache: ~3 s (forward) / ~12 s (train), the graph rewrites that PyTensor redoes in every process.
- BLAS: pip's PyTensor finds no BLAS to link (and warns): its matrix products then run NumPy from Python
  (Dot22) or through NumPy's C API (Gemm in scan). SciPy, a PyTensor dependency, ships OpenBLAS in its wheel
  (scipy.libs/libscipy_openblas-<hash>.so) with every symbol prefixed (`scipy_sgemm_`): `blas__ldflags` links
  it (-L<scipy.libs> -lscipy_openblas-<hash>) and maps PyTensor's Fortran names onto the prefixed ones with
  -D defines (-Dsgemm_=scipy_sgemm_, ...), so Dot22/Gemm/Gemv call OpenBLAS from C (LSTM 1.6-1.9x faster).
  A user's own blas__ldflags (PYTENSOR_FLAGS) wins. configure() sets that OpenBLAS's threads through its
  own API (scipy_openblas_set_num_threads: OPENBLAS_NUM_THREADS is read when a library loads, and NumPy's
  copy loads before any backend code runs). PyTensor's other C ops are single-threaded (`openmp` stays off).
- Caches: PyTensor's compile cache (base_compiledir) is $DLBENCH_CACHE_DIR/pytensor (the worker sets
  DLBENCH_CACHE_DIR from the option `cache_dir` before this module loads; JAX mode then also keeps JAX's
  persistent compilation cache in <cache_dir>/jax), else
  $XDG_CACHE_HOME/dlbench/pytensor, else ~/.cache/dlbench/pytensor, set in PYTENSOR_FLAGS before PyTensor is
  imported (helpers.py does that: import it before pytensor; a user's own base_compiledir wins). NUMBA_CACHE_DIR points
  there too (neither linker here uses Numba). PyTensor's JAX dispatch writes each generated function's source
  to a temporary file it never deletes: compilation runs with `tempfile` pointed into <cache>/tmp/, in a
  folder removed afterwards, so /tmp stays clean.
- Precision: fp32; fp16 is honest but slow on CPU: PyTensor has no float16 C code for most ops and runs their
  Python/NumPy implementation instead (settings()["ops_in_python"] lists them; Elemwise loops per element in
  Python, Dot22 is NumPy's BLAS-less float16 matmul). JAX mode computes fp16 with XLA. PyTensor has no
  bfloat16: `unsupported`, with PyTensor's own error text.
- JAX mode needs static shapes (jax.jit traces concrete ones) and turns on jax_enable_x64. Its sums come back
  in their accumulator dtype (bias gradients float64 in fp32, float32 in fp16): settings() records it. A sum
  inside the graph carries that dtype onward: stack.py's layer norm declares its statistics float32, but the
  sums pytensor.grad adds still make part of the transformer's fp32 backward pass float64 in JAX mode.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# isort: off
from dlbench.backends.pytensor import helpers  # first: it sets PYTENSOR_FLAGS, read when PyTensor is imported
import numpy as np
import pytensor
import pytensor.tensor as pt

# isort: on
from dlbench.backends.base import Backend, Step, Unsupported
from dlbench.backends.pytensor import stack
from dlbench.backends.theano.scan_lstm import scan_lstm
from dlbench.core.cases import Case
from dlbench.workloads import vgg16
from dlbench.workloads.base import Workload
from dlbench.workloads.convnets import STACKS, StackWorkload

DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


# -- graphs --------------------------------------------------------------------------------------------------


def _lstm(x: Any, w: dict[str, Any]) -> Any:
    """x: (seq_len, batch, hidden) -> h at every step, (seq_len, batch, hidden): the Theano family's scan LSTM."""
    scan = functools.partial(pytensor.scan, strict=True, return_updates=False)
    return scan_lstm(pt, scan, pt.sigmoid, x, w, w["weight_hh"].shape[1])


def _conv3x3_relu(x: Any, weight: Any, bias: Any, n: Any, h: Any, w: Any, c: int) -> Any:
    """x NHWC, weight OIHW (O, C, 3, 3): im2col with columns ordered (c, ky, kx), the order of OIHW's rows, so
    the weight's (O, 9·C) matrix is a reshape (a view), and its transpose is free inside the BLAS call.
    n, h, w are symbolic scalars taken from the graph's INPUT: shapes read off deep activations make PyTensor
    build a shape graph of the whole network for every zeros()/reshape (minutes of graph construction)."""
    cout = weight.shape[0]
    padded = pt.set_subtensor(pt.zeros((n, h + 2, w + 2, c), dtype=x.dtype)[:, 1:-1, 1:-1, :], x)
    shifted = [padded[:, dy : dy + h, dx : dx + w, :] for dy in range(3) for dx in range(3)]
    cols = pt.stack(shifted, axis=-1).reshape((n * h * w, c * 9))  # (N·H·W, C·9)
    out = pt.dot(cols, weight.reshape((cout, c * 9)).T) + bias
    return pt.maximum(out, 0).reshape((n, h, w, cout))


def _max_pool(x: Any, n: Any, h: Any, w: Any, c: int) -> Any:
    return x.reshape((n, h // 2, 2, w // 2, 2, c)).max(axis=(2, 4))


def _vgg16(x: Any, w: dict[str, Any]) -> Any:
    """x: NCHW (batch, 3, image, image) -> NCHW (batch, 512, image/32, image/32)."""
    n, _, height, width = x.shape
    y, channels = x.transpose(0, 2, 3, 1), 3  # NHWC inside
    convs = iter(vgg16.layers())
    for item in vgg16.CONFIG:
        if item == "M":
            y = _max_pool(y, n, height, width, channels)
            height, width = height // 2, width // 2
        else:
            name, cin, channels = next(convs)
            y = _conv3x3_relu(y, w[f"{name}.weight"], w[f"{name}.bias"], n, height, width, cin)
    return y.transpose(0, 3, 1, 2)


_GRAPHS: dict[str, Callable[[Any, dict[str, Any]], Any]] = {"lstm": _lstm, "vgg16": _vgg16}
_STACKS = [w.name for w in STACKS]  # built from their layer records by stack.py


# -- backends ------------------------------------------------------------------------------------------------


class PyTensorBackend(Backend):
    name = "pytensor"
    mode = "CVM"  # a predefined PyTensor mode: the C VM linker with the fast_run rewrites
    # Symbolic shapes: one compiled C module serves every batch size and sequence length (cache reuse).
    static_shapes = False

    def __init__(self, device: str, options: dict[str, Any] | None = None) -> None:
        super().__init__(device, options)
        self.dtype: str | None = None
        self.function: Any = None  # the last compiled function (for settings())
        self.outputs_in_other_dtype: dict[str, str] = {}
        if self.cache_dir is not None and Path(pytensor.config.base_compiledir) != Path(self.cache_dir) / "pytensor":
            raise Unsupported(
                f"option cache_dir={self.cache_dir!r}: PyTensor fixed its compiledir when it was imported "
                f"({pytensor.config.base_compiledir}); run with isolation spawn, whose worker sets it first"
            )

    def configure(self, threads: int) -> None:
        lib = helpers.openblas()
        if lib is not None:
            lib.scipy_openblas_set_num_threads(threads)

    def _check_device(self) -> None:
        if self.device != "cpu":
            raise Unsupported(f"the {self.name} backend runs on the CPU only (PyTensor's C linker)")

    def to_device(self, value: np.ndarray) -> Any:
        return value

    def prepare(
        self, case: Case, workload: Workload, weights: dict[str, np.ndarray], inputs: dict[str, np.ndarray]
    ) -> Step:
        self._check_device()
        self.check_supported(case, workload, DTYPES, [*_GRAPHS, *_STACKS])
        dtype = DTYPES[case.precision]
        try:
            pt.TensorType(dtype, shape=())
        except TypeError as exc:
            # bf16: "Invalid dtype: bfloat16" ("Unsupported dtype for TensorType: bfloat16" once ml_dtypes,
            # which jax imports, has taught NumPy the name).
            raise Unsupported(f"PyTensor {pytensor.__version__}: {exc}") from exc
        self.dtype = dtype

        names = list(weights)  # the workload's weight names, in its order
        shape = (lambda a: a.shape) if self.static_shapes else (lambda a: (None,) * a.ndim)
        train = case.mode == "train"
        with self.phase("prepare_graph_s"):
            sym = {k: pt.tensor(k, dtype=dtype, shape=shape(v)) for k, v in weights.items()}
            x = pt.tensor("x", dtype=dtype, shape=shape(inputs["x"]))
            if isinstance(workload, StackWorkload):
                out = stack.build(workload.layers_for(workload.size(case.size)), x, sym, inputs["x"].shape)
            else:
                out = _GRAPHS[workload.name](x, sym)
            outputs = [out]
            if train:
                # Loss = mean(output), reduced in fp32 (as a user would for fp16); its gradient is cast back.
                outputs += pytensor.grad(out.astype("float32").mean(), [sym[k] for k in names])
        graph_inputs = [x, *(sym[k] for k in names)]
        # Copies (np.array copies by default) in C order: trust_input=True skips PyTensor's own checks.
        args = [self.to_device(np.array(a, dtype=dtype, order="C")) for a in (inputs["x"], *weights.values())]

        function = None  # this prepare()'s own: a backend object may prepare several steps (dlbench verify)

        def step() -> Any:
            nonlocal function
            if function is None:  # compile on the first call: its time is the case's first_step_s
                # PyTensor 3's symbolic ops (special.softmax, log_softmax: OpFromGraph) compile their inner graph
                # when they first run, in config.mode, whose default is Numba: the case's mode holds for them too.
                with helpers.temp_files_in_cache(), pytensor.config.change_flags(mode=self.mode):
                    start = time.perf_counter()
                    with helpers.compile_times() as times:
                        self.function = function = pytensor.function(
                            graph_inputs, outputs, mode=self.mode, trust_input=True
                        )
                    self.phases.update(times.outer() or {"compile_s": time.perf_counter() - start})
                    with self.phase("first_execute_s"):
                        result = function(*args)  # the JAX linker traces and compiles here
                        self.synchronize(result)
                # Recorded, not repaired: PyTensor's JAX CAReduce returns a sum cast to its accumulator dtype
                # (float64 for float32, float32 for float16), so bias gradients come back in that dtype.
                self.outputs_in_other_dtype = {
                    name: str(value.dtype)
                    for name, value in zip(["output", *names], result, strict=False)
                    if value.dtype != dtype
                }
            else:
                result = function(*args)
            return (result[0], dict(zip(names, result[1:], strict=True))) if train else result[0]

        return step

    def to_numpy(self, value: Any) -> np.ndarray:
        return np.asarray(value)

    def compile_cache(self) -> dict[str, str]:
        return {"what": "PyTensor compiledir (compiled C modules)", "dir": str(pytensor.config.compiledir)}

    def settings(self) -> dict[str, Any]:
        config = pytensor.config
        settings: dict[str, Any] = {
            "mode": self.mode,
            "linker": type(pytensor.compile.get_mode(self.mode).linker).__name__,
            "rewrites": "fast_run" if self.mode == "CVM" else f"fast_run + {self.mode.lower()}",
            "device": self.device,
            "dtype": self.dtype,
            "compiled": "in the first step (pytensor.function)",
            "trust_input": True,
            "static_shapes": self.static_shapes,
            "vgg16_layout": "NHWC activations, OIHW weights; im2col (9 shifted slices) + one dot per conv",
            "stack_layout": "as vgg16's, any kernel/stride/padding; max-pool: maximum of k² strided slices, -inf pad",
            "outputs_in_other_dtype": self.outputs_in_other_dtype,  # {} when all came back in `dtype`
        }
        if self.mode != "JAX":
            # PyTensor's default: intermediates are freed within each call.
            settings["allow_gc"] = config.allow_gc
            settings["compile_cache"] = str(config.compiledir)
            settings.update(helpers.blas_settings())
            settings["openmp"] = config.openmp  # PyTensor's C ops other than BLAS are single-threaded
            if self.function is not None:
                settings["ops_in_python"] = helpers.ops_in_python(self.function)
        return settings

    def versions(self) -> dict[str, str]:
        return {"pytensor": pytensor.__version__, "numpy": np.__version__}

    def classify(self, exc: BaseException) -> str | None:
        # PyTensor re-raises an op's error with the op's details added; XLA says RESOURCE_EXHAUSTED.
        current: BaseException | None = exc
        for _ in range(10):
            if current is None:
                break
            if isinstance(current, MemoryError) or "RESOURCE_EXHAUSTED" in str(current):
                return "oom"
            if isinstance(current, NotImplementedError):  # e.g. "No JAX conversion for the given `Op`"
                return "unsupported"
            current = current.__cause__ or current.__context__
        return None


@functools.cache
def _jax() -> Any:
    import jax  # only here: the plain `pytensor` backend must neither need JAX nor pay for its import

    return jax


@functools.cache
def _jax_helpers() -> Any:
    from dlbench.backends.jax import helpers  # the jax backends' own: devices, memory, the persistent cache

    return helpers


class PyTensorJaxBackend(PyTensorBackend):
    name = "pytensor-jax"
    mode = "JAX"
    # jax.jit needs concrete shapes: with symbolic ones, reshapes and zeros() fail to trace ("Shapes must be
    # 1D sequences of concrete values of integer type"). PyTensor's JAX docs ask for static shapes.
    static_shapes = True

    def configure(self, threads: int) -> None:
        """No threads to set: XLA's CPU thread pool follows the process's CPU affinity, which the worker has set;
        JAX is imported after that, in the case's own process."""
        if self.cache_dir is not None:
            _jax_helpers().enable_persistent_cache(self.cache_dir)

    def compile_cache(self) -> dict[str, str]:
        """JAX's cache: the JAX linker generates its Python code afresh in every process and caches none of it."""
        return _jax_helpers().persistent_cache()  # type: ignore[no-any-return]

    def _check_device(self) -> None:
        self.jax_device = _jax_helpers().device(self.device, self.name)
        _jax_helpers().full_fp32(self.jax_device)  # fp32 means fp32, as every backend on CUDA

    def to_device(self, value: np.ndarray) -> Any:
        return _jax().device_put(value, self.jax_device)

    def synchronize(self, result: Any = None) -> None:
        if result is not None:
            _jax().block_until_ready(result)

    def peak_memory(self) -> dict[str, Any]:
        return _jax_helpers().peak_memory(getattr(self, "jax_device", None))  # type: ignore[no-any-return]

    def settings(self) -> dict[str, Any]:
        jax = _jax()
        return {
            **super().settings(),
            "jit": "jax.jit (PyTensor's JAXLinker)",
            "platform": getattr(getattr(self, "jax_device", None), "platform", None),
            "x64_enabled": bool(jax.config.jax_enable_x64),  # PyTensor's JAX linker turns it on
            # None = XLA's default: full f32 on CPU; on NVIDIA GPUs from Ampere on, TF32 for f32 dot/conv.
            "jax_default_matmul_precision": jax.config.jax_default_matmul_precision,
            "jax_compilation_cache_dir": jax.config.jax_compilation_cache_dir,  # None: XLA compiles in memory
            "XLA_PYTHON_CLIENT_PREALLOCATE": os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE"),
            "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""),
        }

    def versions(self) -> dict[str, str]:
        return {"pytensor": pytensor.__version__, **_jax_helpers().versions()}
