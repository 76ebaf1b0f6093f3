"""Keras 3 on three engines, `keras-jax`, `keras-torch` and `keras-tensorflow`: one implementation, written as
a Keras user would; each engine's part (engines.py) kept to its fast path and its autodiff.

- Keras reads KERAS_BACKEND once, at its first import, and a process holds one Keras backend for good. So no
  module here imports Keras at its top: the registry's `getattr(engines, "KerasJaxBackend")` lands in that
  module's `__getattr__`, which imports Keras on that engine first (`import_keras`). In fork isolation that is the
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
- the layer stacks (the CNNs alexnet, overfeat, vgga, googlenet, resnet50, and the transformer block): functional
  models built from their layer records by stack.py (Conv2D, MaxPooling2D, BatchNormalization, Dense, Concatenate,
  Add, LayerNormalization, ...), in the same data_format and weight layouts as VGG-16 here; its docstring says how
  padding, Flatten, batch norm and the attention are written. A (batch, seq, d) sequence has no data_format.
- precision: a pure dtype policy on every layer ("float32", "float16", "bfloat16"; never "mixed_*").
  Initializers are "zeros": the weights come from the workload anyway, and Keras' default orthogonal
  recurrent initializer runs a QR that has no fp16/bf16 kernels.
- outputs and gradients come back in Keras' layouts (batch-major output, (kh, kw, in, out) kernels): converting
  them in every step would be work no Keras user does. `to_numpy` converts them to the workload's layouts.
- the loss, mean(output), is written with keras.ops once for all engines, reduced in fp32 (as `torch` does).
- first_step_phases: keras-jax times jit's stages as the `jax` backend does (trace_s, lower_s, compile_s,
  first_execute_s); keras-tensorflow traces, then calls, as `tensorflow` does (trace_s, first_call_s);
  keras-torch is eager: first_execute_s. Option `cache_dir`: JAX's persistent compilation cache (keras-jax);
  Keras on torch (eager) and on TensorFlow on the CPU (no XLA) have no compiled code to cache.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from dlbench.backends.base import Backend, Step, Unsupported
from dlbench.backends.keras import stack as keras_stack
from dlbench.core.cases import Case
from dlbench.workloads import vgg16
from dlbench.workloads.base import Workload
from dlbench.workloads.convnets import STACKS, StackWorkload

_STACKS = [w.name for w in STACKS]  # built from their layer records by stack.py

_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
# Each engine's own helpers (the engine framework's folder): what it sets before it is imported, and what every
# backend on that framework shares.
_HELPERS = {engine: f"dlbench.backends.{engine}.helpers" for engine in ("jax", "torch", "tensorflow")}
# Keras picks its torch device at import with torch.cuda.is_available(), which initialises CUDA unless torch asks
# NVML instead; a CUDA-initialised serving process would leave its forked children no CUDA.
_ENV_BEFORE_IMPORT = {"torch": {"PYTORCH_NVML_BASED_CUDA_CHECK": "1"}}


def import_keras(engine: str) -> Any:
    """Keras on `engine` ("jax", "torch", "tensorflow"), imported on first use; refuses a second engine."""
    if "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = engine
        for key, value in _ENV_BEFORE_IMPORT.get(engine, {}).items():
            os.environ.setdefault(key, value)
        importlib.import_module(_HELPERS[engine])  # the engine's settings before Keras imports the engine
    import keras

    if keras.backend.backend() != engine:
        raise RuntimeError(
            f"Keras is already running on {keras.backend.backend()!r} in this process; it cannot also run on "
            f"{engine!r} (Keras fixes its backend at import): run each Keras backend in its own process"
        )
    return keras


def keras_device(device: str) -> str:
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


class KerasBackend(Backend):
    engine: ClassVar[str]  # KERAS_BACKEND

    def __init__(self, device: str, options: dict[str, Any] | None = None) -> None:
        super().__init__(device, options)
        unknown = sorted(set(self.options) - {"data_format"})
        if unknown:
            raise ValueError(f"unknown option {unknown[0]!r} for the {self.name} backend (known: data_format)")
        self.data_format = self.options.get("data_format", "channels_last")  # Keras' default
        if self.data_format not in ("channels_last", "channels_first"):
            raise ValueError(f"bad data_format={self.data_format!r}: must be channels_last or channels_first")
        self.keras = import_keras(self.engine)
        self.helpers: Any = importlib.import_module(_HELPERS[self.engine])  # the engine framework's own
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
        self.check_supported(case, workload, _DTYPES, ("lstm", "vgg16", *_STACKS))
        if self.device not in ("cpu", "cuda"):
            raise Unsupported(f"device {self.device!r} is not implemented by the {self.name} backend")
        self.check_device()
        keras, size = self.keras, workload.size(case.size)
        self.dtype, self.workload = _DTYPES[case.precision], workload.name
        x = inputs["x"]
        with keras.device(keras_device(self.device)):
            if workload.name == "lstm":
                model, names, self._layouts = _build_lstm(keras, size, weights, self.dtype)
                x = x.transpose(1, 0, 2)  # time-major -> Keras' batch-major, once
            else:
                if isinstance(workload, StackWorkload):
                    model, names, self._layouts = keras_stack.build(keras, workload.layers_for(size), x.shape, weights,
                                                                    self.dtype, self.data_format, workload.name)
                else:
                    model, names, self._layouts = _build_vgg16(keras, size, weights, self.dtype, self.data_format)
                if self.data_format == "channels_last" and x.ndim == 4:
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

    def dtype_name(self, value: Any) -> str:
        return str(self.keras.backend.standardize_dtype(value.dtype))

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
            # The first layer with weights or a layout (a functional model's layers start with its InputLayer).
            layer = next(lay for lay in model.layers if not isinstance(lay, self.keras.layers.InputLayer))
            settings["dtype_policy"] = layer.dtype_policy.name  # pure: compute dtype = variable dtype
            settings["compute_dtype"] = layer.compute_dtype
            settings["variable_dtype"] = layer.variable_dtype
            if hasattr(layer, "data_format"):  # image layers (a sequence's first layer has none)
                settings["data_format"] = layer.data_format
            if self.workload == "lstm":
                settings["use_cudnn"] = layer.use_cudnn
                settings["cudnn_eligible"] = self._cudnn_eligible(layer)
                if self.engine == "torch" and self.device != "cpu":
                    # Keras 3's torch LSTM catches any exception of its cuDNN path and falls back to a Python loop
                    # without a word: eligible is not proof that cuDNN ran (the device check's profile is).
                    settings["cudnn_ran"] = "not observable: Keras' torch LSTM falls back silently"
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
        return {"keras": self.keras.version(), **self.helpers.versions()}

    def classify(self, exc: BaseException) -> str | None:
        return self.helpers.classify(exc)  # type: ignore[no-any-return]
