"""Keras 3 on three engines, `keras-jax`, `keras-torch` and `keras-tensorflow`: one implementation, written as
a Keras user would, each engine's part kept to its fast path and its autodiff.

- Keras reads KERAS_BACKEND once, at its first import, and a process holds one Keras backend for good. So this
  module never imports Keras at its top: the registry's `getattr(module, "KerasJaxBackend")` lands in the
  module's `__getattr__` (below), which imports Keras on that engine first. In fork isolation that is the
  serving process, once per backend, so each case's child starts with Keras and its engine imported (import
  time and RSS baseline then cover them, as for every other backend), and no child pays 3-5 s to import it.
  A second engine in the same process is refused, never silently mixed.
- lstm: `keras.layers.LSTM(H, return_sequences=True)`. Keras' gates (i, f, c, o) are the workload's
  (i, f, g, o); its kernel is weight_ih.T (H, 4H), its recurrent_kernel weight_hh.T, its one bias
  bias_ih + bias_hh (whose gradient is therefore both biases' gradient). Keras is batch-major: the input is
  transposed once at build. On GPU, Keras picks cuDNN itself (`use_cudnn="auto"`).
- vgg16: a Sequential of `Conv2D(cout, 3, padding="same", activation="relu")` and `MaxPooling2D(2)`, as
  keras.applications.VGG16 writes it, in Keras' default data_format, channels_last, on every engine (the
  input is transposed once at build). A case option `data_format="channels_first"` measures the other one:
  Keras on torch copies channels_last activations into NCHW and back around each conv and pool; measured on a
  shared 2-core CPU the two were within noise of each other.
- precision: a pure dtype policy on every layer ("float32", "float16", "bfloat16"; never "mixed_*").
  Initializers are "zeros": the weights come from the workload anyway, and Keras' default orthogonal
  recurrent initializer runs a QR that has no fp16/bf16 kernels.
- outputs and gradients come back in Keras' layouts (batch-major output, (kh, kw, in, out) kernels): converting
  them in every step would be work no Keras user does. `to_numpy` converts them to the workload's layouts.
- the loss, mean(output), is written with keras.ops once for all engines, reduced in fp32 (as torch.py does).
- first_step_phases: keras-jax times jit's stages as the `jax` backend does (trace_s, lower_s, compile_s,
  first_execute_s); keras-tensorflow traces, then calls, as `tensorflow` does (trace_s, first_call_s);
  keras-torch is eager: first_execute_s. Option `cache_dir`: JAX's persistent compilation cache (keras-jax);
  Keras on torch (eager) and on TensorFlow on the CPU (no XLA) have no compiled code to cache.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from dlbench.backends.base import Backend, Step, Unsupported, exception_chain
from dlbench.core.cases import Case
from dlbench.workloads import vgg16
from dlbench.workloads.base import Workload

_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
_ENV_BEFORE_IMPORT = {
    # jax on GPU would otherwise grab 75% of the GPU memory up front: peak memory would mean nothing.
    "jax": {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"},
    # Keras picks its torch device at import with torch.cuda.is_available(), which initialises CUDA unless
    # torch asks NVML instead; a CUDA-initialised serving process would leave its forked children no CUDA.
    "torch": {"PYTORCH_NVML_BASED_CUDA_CHECK": "1"},
    "tensorflow": {},
}


def _import_keras(engine: str) -> Any:
    """Keras on `engine` ("jax", "torch", "tensorflow"), imported on first use; refuses a second engine."""
    if "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = engine
        for key, value in _ENV_BEFORE_IMPORT[engine].items():
            os.environ.setdefault(key, value)
    import keras

    if keras.backend.backend() != engine:
        raise RuntimeError(
            f"Keras is already running on {keras.backend.backend()!r} in this process; it cannot also run on "
            f"{engine!r} (Keras fixes its backend at import): run each Keras backend in its own process"
        )
    return keras


# Result element types of dot/convolution instructions in XLA's compiled HLO, including the cuBLAS/cuDNN calls
# XLA GPU lowers them to (whose result is a tuple led by the output): the type XLA really computes in.
_HLO_COMPUTE = re.compile(
    r"=\s*\(?(\w+)\[[^\n]*?\s(?:dot|convolution)\(|=\s*\(?(\w+)\[[^\n]*custom-call\([^\n]*"
    r"custom_call_target=\"__(?:cublas|cudnn)"
)


def _keras_device(device: str) -> str:
    # "cpu", not "cpu:0": Keras 3.15 on torch moves each new variable with `.to("cpu:0")`, which copies a
    # CPU tensor into a non-Parameter (an int32 seed-generator state then fails to build: LSTM under
    # keras.device("cpu:0") raises "Only Tensors of floating point ... can require gradients").
    return {"cpu": "cpu", "cuda": "gpu:0"}[device]


# -- models ---------------------------------------------------------------------------------------------------
# Each builder returns the model, its weights in Keras' order with the workload's names for them, and the
# converters from Keras' layouts to the workload's, keyed by the Keras array's shape (see `to_numpy`).


def _build_lstm(keras: Any, size: dict[str, int], weights: dict[str, np.ndarray], dtype: str) -> Any:
    h, t = size["hidden"], size["seq_len"]
    layer = keras.layers.LSTM(
        h, return_sequences=True, dtype=dtype, name="lstm",
        kernel_initializer="zeros", recurrent_initializer="zeros", bias_initializer="zeros",
    )  # fmt: skip
    model = keras.Sequential([keras.Input((t, h), dtype=dtype), layer], name="lstm")
    layer.set_weights(
        [weights["weight_ih"].T, weights["weight_hh"].T, weights["bias_ih"] + weights["bias_hh"]]
    )
    # trainable_weights: kernel, recurrent_kernel, bias; Keras' single bias stands for both of the workload's.
    names = [("weight_ih",), ("weight_hh",), ("bias_ih", "bias_hh")]
    batch = size["batch"]
    layouts: dict[tuple[int, ...], Callable[[np.ndarray], np.ndarray]] = {
        (batch, t, h): lambda a: a.transpose(1, 0, 2),  # output: batch-major -> time-major
        (h, 4 * h): lambda a: a.T,  # kernels: (in, 4H) -> (4H, in)
    }
    return model, names, layouts


def _build_vgg16(
    keras: Any, size: dict[str, int], weights: dict[str, np.ndarray], dtype: str, data_format: str
) -> Any:
    side = size["image"]
    shape = (3, side, side) if data_format == "channels_first" else (side, side, 3)
    layers: list[Any] = [keras.Input(shape, dtype=dtype)]
    convs, block = iter(vgg16.layers()), 1
    for item in vgg16.CONFIG:
        if item == "M":
            layers.append(keras.layers.MaxPooling2D(2, data_format=data_format, dtype=dtype, name=f"pool{block}"))
            block += 1
            continue
        name, _, cout = next(convs)
        layers.append(
            keras.layers.Conv2D(
                cout, 3, padding="same", activation="relu", data_format=data_format, dtype=dtype, name=name,
                kernel_initializer="zeros", bias_initializer="zeros",
            )  # fmt: skip
        )
    model = keras.Sequential(layers, name="vgg16")
    names = []
    for name, _, _ in vgg16.layers():
        # Keras' Conv2D kernel is (kh, kw, in, out) in either data_format; the workload's is OIHW.
        model.get_layer(name).set_weights([weights[f"{name}.weight"].transpose(2, 3, 1, 0), weights[f"{name}.bias"]])
        names += [(f"{name}.weight",), (f"{name}.bias",)]
    layouts: dict[tuple[int, ...], Callable[[np.ndarray], np.ndarray]] = {
        tuple(model.get_layer(n).kernel.shape): lambda a: a.transpose(3, 2, 0, 1) for n, _, _ in vgg16.layers()
    }
    out = (size["batch"], *model.output_shape[1:])
    if out in layouts:  # never with VGG's shapes; guards the shape-keyed lookup
        raise AssertionError(f"output shape {out} is also a kernel's shape")
    if data_format == "channels_last":
        layouts[out] = lambda a: a.transpose(0, 3, 1, 2)  # NHWC -> NCHW
    return model, names, layouts


# -- the shared backend ---------------------------------------------------------------------------------------


class _KerasBackend(Backend):
    engine: ClassVar[str]  # KERAS_BACKEND

    def __init__(self, device: str, options: dict[str, Any] | None = None) -> None:
        super().__init__(device, options)
        unknown = sorted(set(self.options) - {"data_format"})
        if unknown:
            raise ValueError(f"unknown option {unknown[0]!r} for the {self.name} backend (known: data_format)")
        self.data_format = self.options.get("data_format", "channels_last")  # Keras' default
        if self.data_format not in ("channels_last", "channels_first"):
            raise ValueError(f"bad data_format={self.data_format!r}: must be channels_last or channels_first")
        self.keras = _import_keras(self.engine)
        self.threads: int | None = None
        self.dtype: str | None = None
        self.workload: str | None = None
        self.compiled: str | None = None
        self._layouts: dict[tuple[int, ...], Callable[[np.ndarray], np.ndarray]] = {}
        self._model: Any = None

    # engine parts, each overridden below
    def check_device(self) -> None:
        raise NotImplementedError

    def compile_steps(self, model: Any, x: Any, mode: str) -> Step:
        raise NotImplementedError

    def prepare(
        self, case: Case, workload: Workload, weights: dict[str, np.ndarray], inputs: dict[str, np.ndarray]
    ) -> Step:
        if case.precision not in _DTYPES:
            raise Unsupported(f"precision {case.precision!r} is not implemented by the {self.name} backend")
        if workload.name not in ("lstm", "vgg16"):
            raise Unsupported(f"workload {workload.name!r} is not implemented by the {self.name} backend")
        if self.device not in ("cpu", "cuda"):
            raise Unsupported(f"device {self.device!r} is not implemented by the {self.name} backend")
        self.check_device()
        keras, size = self.keras, workload.size(case.size)
        self.dtype, self.workload = _DTYPES[case.precision], workload.name
        x = inputs["x"]
        with keras.device(_keras_device(self.device)):
            if workload.name == "lstm":
                model, names, self._layouts = _build_lstm(keras, size, weights, self.dtype)
                x = x.transpose(1, 0, 2)  # time-major -> Keras' batch-major, once
            else:
                model, names, self._layouts = _build_vgg16(keras, size, weights, self.dtype, self.data_format)
                if self.data_format == "channels_last":
                    x = x.transpose(0, 2, 3, 1)  # NCHW -> NHWC, once
            # A copy: some engines (torch) would otherwise share the caller's array's memory.
            x = keras.ops.convert_to_tensor(np.array(x, order="C", copy=True), dtype=self.dtype)
        self._model = model
        run = self.compile_steps(model, x, case.mode)
        if case.mode == "forward":
            return run

        def train_step() -> Any:
            out, grads = run()
            return out, {name: g for names_of, g in zip(names, grads, strict=True) for name in names_of}

        return train_step

    @staticmethod
    def loss(keras: Any, y: Any) -> Any:
        """The workload's loss, mean(output), reduced in fp32 whatever the model's dtype."""
        return keras.ops.mean(keras.ops.cast(y, "float32"))

    # -- measurement ---------------------------------------------------------------------------------------

    def to_numpy(self, value: Any) -> np.ndarray:
        """A Keras-layout output or gradient as a NumPy array in the workload's layout (float32 for bf16). Which
        layout conversion applies is told by the array's shape: unambiguous for these models (checked at build)."""
        array = self.host_array(value)
        if array.dtype not in (np.float16, np.float32, np.float64):
            array = array.astype(np.float32)  # bfloat16 (ml_dtypes): NumPy itself has no such type
        convert = self._layouts.get(tuple(array.shape))
        return np.ascontiguousarray(convert(array) if convert else array)

    def host_array(self, value: Any) -> np.ndarray:
        """The engine's array as NumPy (its own dtype; bf16 as ml_dtypes.bfloat16)."""
        return np.asarray(value)

    def settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = {
            "keras_backend": self.keras.backend.backend(),
            "device": self.device,
            "compiled": self.compiled,
            "threads": self.threads,
            "loss_dtype": "float32",
        }
        model = self._model
        if model is not None:
            layer = model.layers[0]
            settings["dtype_policy"] = layer.dtype_policy.name  # pure: compute dtype = variable dtype
            settings["compute_dtype"] = layer.compute_dtype
            settings["variable_dtype"] = layer.variable_dtype
            if self.workload == "vgg16":
                settings["data_format"] = layer.data_format
            if self.workload == "lstm":
                settings["use_cudnn"] = layer.use_cudnn
                settings["cudnn_eligible"] = self._cudnn_eligible(layer)
        return settings

    def _cudnn_eligible(self, layer: Any) -> bool | str:
        """Keras' own test for its cuDNN LSTM path (activations, no unroll, bias, a GPU); on the cpu device the
        inputs live on the CPU and Keras runs its generic loop."""
        if self.device == "cpu":
            return False
        try:
            from keras.src.backend import cudnn_ok  # Keras' private test, the one LSTM.inner_loop relies on

            cell = layer.cell
            return bool(cudnn_ok(cell.activation, cell.recurrent_activation, layer.unroll, cell.use_bias))
        except Exception as exc:  # noqa: BLE001 — a settings reader only
            return f"unknown ({type(exc).__name__}: {exc})"

    def versions(self) -> dict[str, str]:
        return {"keras": self.keras.version()}




# -- keras-jax ------------------------------------------------------------------------------------------------


class _KerasJax(_KerasBackend):
    """jax.jit over `model.stateless_call`, jax.value_and_grad for train: Keras' guide for custom JAX loops."""

    name = "keras-jax"
    engine = "jax"

    def __init__(self, device: str, options: dict[str, Any] | None = None) -> None:
        super().__init__(device, options)
        self._jitted: tuple[Any, tuple[Any, ...]] | None = None  # (jitted step, its arguments), for settings()

    def configure(self, threads: int) -> None:
        # XLA's CPU client sizes its thread pool from the affinity mask, which the worker set to `threads`
        # CPUs; jax has no runtime knob for it.
        self.threads = threads
        if self.cache_dir is not None:
            from dlbench.backends.jax import enable_persistent_cache

            enable_persistent_cache(self.cache_dir)

    def compile_cache(self) -> dict[str, str]:
        from dlbench.backends.jax import persistent_cache

        return persistent_cache()

    def check_device(self) -> None:
        import jax

        if self.device == "cuda":
            try:
                jax.devices("gpu")
            except RuntimeError as exc:
                raise Unsupported(f"jax {jax.__version__} has no GPU: {exc}") from exc

    def compile_steps(self, model: Any, x: Any, mode: str) -> Step:
        import jax

        from dlbench.backends.jax import staged_first_call  # jit's stages timed one by one, as for `jax`

        keras = self.keras
        # Committed to the case's device, the arrays take every jitted call there. (A keras.device scope around
        # each call would too, but measured ~0.9 ms a call here: a changed default device takes jax off its
        # fast dispatch path.)
        device = jax.devices("cpu" if self.device == "cpu" else "gpu")[0]
        trainable = jax.device_put([v.value for v in model.trainable_variables], device)
        non_trainable = jax.device_put([v.value for v in model.non_trainable_variables], device)
        x = jax.device_put(x, device)
        self.compiled = "jax.jit(model.stateless_call)"
        args = (trainable, non_trainable, x)
        if mode == "forward":
            predict = jax.jit(lambda tv, ntv, x: model.stateless_call(tv, ntv, x, training=False)[0])
            self._jitted = (predict, args)
            return staged_first_call(self, predict, args, lambda: predict(trainable, non_trainable, x))

        def loss_fn(tv: Any, ntv: Any, x: Any) -> Any:
            y, _ = model.stateless_call(tv, ntv, x, training=True)
            return self.loss(keras, y), y

        grad_fn = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))
        self._jitted = (grad_fn, (trainable, non_trainable, x))

        def train() -> Any:
            (_, y), grads = grad_fn(trainable, non_trainable, x)
            return y, grads

        return staged_first_call(self, grad_fn, args, train)

    def synchronize(self, result: Any = None) -> None:
        import jax

        jax.block_until_ready(result)

    def peak_memory(self) -> dict[str, int]:
        if self.device != "cuda":
            return {}  # on cpu the worker measures RSS itself
        import jax

        stats = jax.devices("gpu")[0].memory_stats() or {}
        return {"jax_peak_bytes_in_use": int(stats["peak_bytes_in_use"])} if "peak_bytes_in_use" in stats else {}

    def settings(self) -> dict[str, Any]:
        import jax

        settings = {
            **super().settings(),
            "threads_note": "XLA CPU sizes its thread pool from the CPU affinity; jax has no thread setting",
            # None = XLA's default: full f32 on CPU; on NVIDIA GPUs from Ampere on, TF32 for f32 dot/conv.
            "jax_default_matmul_precision": jax.config.jax_default_matmul_precision,
            "XLA_PYTHON_CLIENT_PREALLOCATE": os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE"),
            "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""),
        }
        if self._jitted is not None:
            function, args = self._jitted
            hlo = function.lower(*args).compile().as_text()  # jit's cache: the first step compiled it
            types = sorted({a or b for a, b in _HLO_COMPUTE.findall(hlo)})
            settings["hlo_dot_conv_result_types"] = ",".join(types)
            if self.dtype != "float32" and "f32" in types:
                settings["compute_note"] = (
                    f"XLA computes {self.dtype} dot/convolution in f32 on this device (compiled HLO: operands "
                    f"converted to f32, results rounded back); storage stays {self.dtype}"
                )
        return settings

    def versions(self) -> dict[str, str]:
        import jax
        import jaxlib

        return {**super().versions(), "jax": jax.__version__, "jaxlib": jaxlib.__version__}

    def classify(self, exc: BaseException) -> str | None:
        for e in exception_chain(exc):
            if isinstance(e, MemoryError) or "RESOURCE_EXHAUSTED" in str(e):
                return "oom"
            if isinstance(e, NotImplementedError) or "UNIMPLEMENTED" in str(e):
                return "unsupported"  # e.g. NotImplementedError("Unsupported dtype float16.") from a f16 QR
        return None


# -- keras-torch ----------------------------------------------------------------------------------------------


_TORCH_OOM = ("CUDA out of memory", "DefaultCPUAllocator: can't allocate memory")


class _KerasTorch(_KerasBackend):
    """Eager: `model(x)` under torch.no_grad() for inference, torch.autograd for train (Keras' torch guide; its
    `jit_compile="auto"` is eager on torch too)."""

    name = "keras-torch"
    engine = "torch"

    def configure(self, threads: int) -> None:
        import torch

        torch.set_num_threads(threads)
        self.threads = threads

    def check_device(self) -> None:
        import torch

        if self.device == "cuda" and not torch.cuda.is_available():
            raise Unsupported(
                f"CUDA is not available to torch {torch.__version__}: "
                + ("this is a CPU-only build" if torch.version.cuda is None else "no usable GPU/driver was found")
            )

    def compile_steps(self, model: Any, x: Any, mode: str) -> Step:
        import torch

        keras, device = self.keras, _keras_device(self.device)
        self.compiled = "eager"
        if mode == "forward":

            def step() -> Any:
                with keras.device(device), torch.no_grad():  # inference, as model.predict runs it
                    return model(x, training=False)

            return self.time_first_call(step)

        params = [v.value for v in model.trainable_weights]  # the torch Parameters behind Keras' Variables

        def train() -> Any:
            with keras.device(device):
                y = model(x, training=True)
                grads = torch.autograd.grad(self.loss(keras, y), params)
            return y.detach(), grads

        return self.time_first_call(train)

    def synchronize(self, result: Any = None) -> None:
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()

    def host_array(self, value: Any) -> np.ndarray:
        import torch

        value = value.detach().cpu()
        return (value.float() if value.dtype == torch.bfloat16 else value).numpy()  # NumPy has no bfloat16

    def reset_peak_memory(self) -> None:
        if self.device == "cuda":
            import torch

            torch.cuda.reset_peak_memory_stats()

    def peak_memory(self) -> dict[str, int]:
        if self.device != "cuda":
            return {}
        import torch

        return {
            "torch_cuda_max_allocated": torch.cuda.max_memory_allocated(),
            "torch_cuda_max_reserved": torch.cuda.max_memory_reserved(),
        }

    def settings(self) -> dict[str, Any]:
        import torch

        settings = {
            **super().settings(),
            "torch_threads": torch.get_num_threads(),
            "torch_interop_threads": torch.get_num_interop_threads(),
            "float32_matmul_precision": torch.get_float32_matmul_precision(),
        }
        if self.device == "cuda":
            settings.update(
                {
                    "cudnn.benchmark": torch.backends.cudnn.benchmark,
                    "cuda.matmul.allow_tf32": torch.backends.cuda.matmul.allow_tf32,
                    "cudnn.allow_tf32": torch.backends.cudnn.allow_tf32,
                }
            )
        return settings

    def versions(self) -> dict[str, str]:
        import torch

        return {
            **super().versions(),
            "torch": torch.__version__,
            "cuda": torch.version.cuda or "",
            "cudnn": str(torch.backends.cudnn.version() or ""),
        }

    def classify(self, exc: BaseException) -> str | None:
        import torch

        for e in exception_chain(exc):
            if isinstance(e, (torch.cuda.OutOfMemoryError, MemoryError)) or any(t in str(e) for t in _TORCH_OOM):
                return "oom"
            if isinstance(e, NotImplementedError) or "not implemented for" in str(e):
                return "unsupported"  # e.g. "\"addmm_impl_cpu_\" not implemented for 'Half'"
        return None


# -- keras-tensorflow -----------------------------------------------------------------------------------------


class _KerasTensorFlow(_KerasBackend):
    """tf.function around `model(x)` (with tf.GradientTape for train), XLA where Keras' own
    `jit_compile="auto"` would use it: on GPUs, for models whose layers support it (not cuDNN's LSTM)."""

    name = "keras-tensorflow"
    engine = "tensorflow"

    def configure(self, threads: int) -> None:
        import tensorflow as tf

        # TF's own defaults on a machine with `threads` cores: both pools that size. Must precede TF's first op.
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        if self.device == "cuda":
            # Allocate as needed instead of (nearly) all GPU memory at start: peak memory must mean something.
            for gpu in tf.config.list_physical_devices("GPU"):
                tf.config.experimental.set_memory_growth(gpu, True)
        self.threads = threads

    def check_device(self) -> None:
        import tensorflow as tf

        if self.device == "cuda" and not tf.config.list_physical_devices("GPU"):
            raise Unsupported(
                f"tensorflow {tf.__version__} sees no GPU"
                + ("" if tf.test.is_built_with_cuda() else " (this build has no CUDA support)")
            )

    def compile_steps(self, model: Any, x: Any, mode: str) -> Step:
        import tensorflow as tf

        from dlbench.backends.tensorflow import traced_first_call  # trace, then first call, as for `tensorflow`

        keras, device = self.keras, _keras_device(self.device)
        # Keras' rule for jit_compile="auto" (Trainer._resolve_auto_jit_compile): no XLA on CPU, XLA on GPU if
        # every layer supports it. Applied to the case's device, not to whether the machine has a GPU.
        jit = self.device != "cpu" and bool(model.jit_compile)
        self.compiled = f"tf.function(jit_compile={jit})"
        # The device scope inside the traced functions pins their ops when traced, at no cost per call.
        if mode == "forward":

            @tf.function(jit_compile=jit)
            def predict(x: Any) -> Any:
                with keras.device(device):
                    return model(x, training=False)

            return traced_first_call(self, predict, (x,), lambda: predict(x))

        weights = model.trainable_weights

        @tf.function(jit_compile=jit)
        def grad_fn(x: Any) -> Any:
            with keras.device(device), tf.GradientTape() as tape:
                y = model(x, training=True)
                loss = self.loss(keras, y)
            return y, tape.gradient(loss, weights)

        return traced_first_call(self, grad_fn, (x,), lambda: grad_fn(x))

    def synchronize(self, result: Any = None) -> None:
        # On the CPU a tf.function's results are computed when it returns; GPU kernels run asynchronously.
        if self.device == "cuda":
            import tensorflow as tf

            tf.test.experimental.sync_devices()

    def host_array(self, value: Any) -> np.ndarray:
        return value.numpy()

    def reset_peak_memory(self) -> None:
        if self.device == "cuda":
            import tensorflow as tf

            tf.config.experimental.reset_memory_stats("GPU:0")

    def peak_memory(self) -> dict[str, int]:
        if self.device != "cuda":
            return {}
        import tensorflow as tf

        return {"tf_gpu_peak_bytes": int(tf.config.experimental.get_memory_info("GPU:0")["peak"])}

    def settings(self) -> dict[str, Any]:
        import tensorflow as tf

        settings = {
            **super().settings(),
            "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
            "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on for x86 CPUs)"),
        }
        if self.device == "cuda":
            settings["tensor_float_32_execution"] = tf.config.experimental.tensor_float_32_execution_enabled()
            settings["gpu_memory_growth"] = True
        return settings

    def versions(self) -> dict[str, str]:
        import tensorflow as tf

        build = tf.sysconfig.get_build_info()
        return {
            **super().versions(),
            "tensorflow": tf.__version__,
            "cuda": str(build.get("cuda_version", "")),
            "cudnn": str(build.get("cudnn_version", "")),
        }

    def describe_error(self, exc: BaseException) -> str:
        from dlbench.backends.tensorflow import op_error_text  # TF's graph errors, as for `tensorflow`

        return op_error_text(exc)

    def classify(self, exc: BaseException) -> str | None:
        import tensorflow as tf

        for e in exception_chain(exc):
            if isinstance(e, (tf.errors.ResourceExhaustedError, MemoryError)):
                return "oom"
            if isinstance(e, (tf.errors.NotFoundError, tf.errors.UnimplementedError)):
                return "unsupported"  # e.g. "Could not find device for node: ... MatrixDeterminant[T=DT_HALF]"
        return None


# The registry loads `KerasJaxBackend` etc. by name; the name lookup imports Keras on that engine first (see the
# module docstring). The classes above are private so that this hook, not the class statement, answers it.
_PUBLIC: dict[str, type[_KerasBackend]] = {
    "KerasJaxBackend": _KerasJax,
    "KerasTorchBackend": _KerasTorch,
    "KerasTensorFlowBackend": _KerasTensorFlow,
}


def __getattr__(name: str) -> type[_KerasBackend]:
    try:
        cls = _PUBLIC[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    _import_keras(cls.engine)
    return cls


__all__ = list(_PUBLIC)


# What `dlbench usability` counts as each workload's model code and as the step built from it, per backend of this
# module (read from the source by dlbench.usability.code_metrics, never imported; a unit test checks the names).
CODE_PARTS = {
    "keras-jax": {"lstm": ("_build_lstm",), "vgg16": ("_build_vgg16",),
                  "step": ("_KerasBackend.prepare", "_KerasBackend.loss", "_KerasJax.compile_steps")},
    "keras-torch": {"lstm": ("_build_lstm",), "vgg16": ("_build_vgg16",),
                    "step": ("_KerasBackend.prepare", "_KerasBackend.loss", "_KerasTorch.compile_steps")},
    "keras-tensorflow": {"lstm": ("_build_lstm",), "vgg16": ("_build_vgg16",),
                         "step": ("_KerasBackend.prepare", "_KerasBackend.loss", "_KerasTensorFlow.compile_steps")},
}  # fmt: skip
