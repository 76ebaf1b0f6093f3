"""Keras 3's three engines, each its own fast path and autodiff; everything else about the engine (device, memory,
settings, versions, errors, first-step stages) comes from that framework's own helpers, as for its own backends.

- keras-jax: jax.jit over `model.stateless_call`, jax.value_and_grad for train (Keras' guide for custom JAX loops).
- keras-torch: eager, `model(x)` under torch.no_grad() for inference, torch.autograd for train (Keras' torch guide;
  its `jit_compile="auto"` is eager on torch too).
- keras-tensorflow: tf.function around `model(x)` (with tf.GradientTape for train), XLA where Keras' own
  `jit_compile="auto"` would use it: on GPUs, for models whose layers support it (not cuDNN's LSTM).

The registry loads `KerasJaxBackend` etc. by name; the name lookup (this module's `__getattr__`) imports Keras on
that engine first, so that a serving worker imports Keras once and its forked cases start with it imported. The
classes themselves are private so that the hook, not the class statement, answers the lookup.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from dlbench.backends.base import Step
from dlbench.backends.keras.backend import KerasBackend, import_keras, keras_device


class _KerasJax(KerasBackend):
    name = "keras-jax"
    engine = "jax"

    def __init__(self, device: str, options: dict[str, Any] | None = None) -> None:
        super().__init__(device, options)
        self._jitted: tuple[Any, tuple[Any, ...]] | None = None  # (jitted step, its arguments), for settings()
        self._device: Any = None

    def configure(self, threads: int) -> None:
        # XLA's CPU client sizes its thread pool from the affinity mask, which the worker set to `threads`
        # CPUs; jax has no runtime knob for it.
        self.threads = threads
        if self.cache_dir is not None:
            self.helpers.enable_persistent_cache(self.cache_dir)

    def compile_cache(self) -> dict[str, str]:
        return self.helpers.persistent_cache()  # type: ignore[no-any-return]

    def check_device(self) -> None:
        self._device = self.helpers.device(self.device, self.name)
        self.helpers.full_fp32(self._device)  # fp32 means fp32, as every backend on CUDA

    def compile_steps(self, model: Any, x: Any, mode: str) -> Step:
        import jax

        keras = self.keras
        # Committed to the case's device, the arrays take every jitted call there. (A keras.device scope around
        # each call would too, but measured ~0.9 ms a call here: a changed default device takes jax off its
        # fast dispatch path.)
        trainable = jax.device_put([v.value for v in model.trainable_variables], self._device)
        non_trainable = jax.device_put([v.value for v in model.non_trainable_variables], self._device)
        x = jax.device_put(x, self._device)
        self.compiled = "jax.jit(model.stateless_call)"
        args = (trainable, non_trainable, x)
        if mode == "forward":
            predict = jax.jit(lambda tv, ntv, x: model.stateless_call(tv, ntv, x, training=False)[0])
            self._jitted = (predict, args)
            return self.helpers.staged_first_call(self, predict, args,  # type: ignore[no-any-return]
                                                  lambda: predict(trainable, non_trainable, x))  # fmt: skip

        def loss_fn(tv: Any, ntv: Any, x: Any) -> Any:
            y, _ = model.stateless_call(tv, ntv, x, training=True)
            return self.loss(keras, y), y

        grad_fn = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))
        self._jitted = (grad_fn, args)

        def train() -> Any:
            (_, y), grads = grad_fn(trainable, non_trainable, x)
            return y, grads

        return self.helpers.staged_first_call(self, grad_fn, args, train)  # type: ignore[no-any-return]

    def synchronize(self, result: Any = None) -> None:
        import jax

        jax.block_until_ready(result)

    def peak_memory(self) -> dict[str, Any]:
        return self.helpers.peak_memory(self._device)  # type: ignore[no-any-return]

    def settings(self) -> dict[str, Any]:
        import jax

        settings = {
            **super().settings(),
            "threads_note": self.helpers.THREADS_NOTE,
            # None = XLA's default: full f32 on CPU; on NVIDIA GPUs from Ampere on, TF32 for f32 dot/conv.
            "jax_default_matmul_precision": jax.config.jax_default_matmul_precision,
            "XLA_PYTHON_CLIENT_PREALLOCATE": os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE"),
            "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""),
        }
        if self._jitted is not None:
            function, args = self._jitted
            hlo = function.lower(*args).compile().as_text()  # jit's cache: the first step compiled it
            settings.update(self.helpers.compute_settings(hlo, self.dtype or "float32"))
        return settings


class _KerasTorch(KerasBackend):
    name = "keras-torch"
    engine = "torch"

    def configure(self, threads: int) -> None:
        import torch

        torch.set_num_threads(threads)
        self.threads = threads

    def check_device(self) -> None:
        import torch

        self.helpers.check_device(self.device, self.name)
        if self.device == "cuda":  # as the torch backend: cuDNN's autotuner on, fp32 means fp32
            torch.backends.cudnn.benchmark = True
            self.helpers.full_fp32()

    def compile_steps(self, model: Any, x: Any, mode: str) -> Step:
        import torch

        keras, device = self.keras, keras_device(self.device)
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
        self.helpers.synchronize(self.device)

    def host_array(self, value: Any) -> np.ndarray:
        import torch

        value = value.detach().cpu()
        return (value.float() if value.dtype == torch.bfloat16 else value).numpy()  # NumPy has no bfloat16

    def reset_peak_memory(self) -> None:
        self.helpers.reset_peak_memory(self.device)

    def peak_memory(self) -> dict[str, Any]:
        return self.helpers.peak_memory(self.device)  # type: ignore[no-any-return]

    def settings(self) -> dict[str, Any]:
        # torch's settings; its thread counts named torch_* beside Keras' own `threads`.
        torch_settings = {(f"torch_{k}" if k.endswith("threads") else k): v
                          for k, v in self.helpers.settings(self.device).items()}  # fmt: skip
        return {**super().settings(), **torch_settings}


class _KerasTensorFlow(KerasBackend):
    name = "keras-tensorflow"
    engine = "tensorflow"

    def __init__(self, device: str, options: dict[str, Any] | None = None) -> None:
        super().__init__(device, options)
        self.threads_applied: bool | None = None

    def configure(self, threads: int) -> None:
        self.threads = threads
        self.threads_applied = self.helpers.configure(threads, self.device)

    def check_device(self) -> None:
        if self.helpers.device_name(self.device, self.name).startswith("/GPU"):
            self.helpers.full_fp32()  # fp32 means fp32, as every backend on CUDA

    def compile_steps(self, model: Any, x: Any, mode: str) -> Step:
        import tensorflow as tf

        keras, device = self.keras, keras_device(self.device)
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

            return self.helpers.traced_first_call(self, predict, (x,), lambda: predict(x))  # type: ignore[no-any-return]

        weights = model.trainable_weights

        @tf.function(jit_compile=jit)
        def grad_fn(x: Any) -> Any:
            with keras.device(device), tf.GradientTape() as tape:
                y = model(x, training=True)
                loss = self.loss(keras, y)
            return y, tape.gradient(loss, weights)

        return self.helpers.traced_first_call(self, grad_fn, (x,), lambda: grad_fn(x))  # type: ignore[no-any-return]

    def synchronize(self, result: Any = None) -> None:
        self.helpers.synchronize(self.device)

    def host_array(self, value: Any) -> np.ndarray:
        return value.numpy()  # type: ignore[no-any-return]

    def reset_peak_memory(self) -> None:
        self.helpers.reset_peak_memory(self.device)

    def peak_memory(self) -> dict[str, Any]:
        return self.helpers.peak_memory(self.device)  # type: ignore[no-any-return]

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "threads_applied": self.threads_applied, **self.helpers.settings(self.device)}

    def describe_error(self, exc: BaseException) -> str:
        return self.helpers.op_error_text(exc)  # type: ignore[no-any-return]


_PUBLIC: dict[str, type[KerasBackend]] = {
    "KerasJaxBackend": _KerasJax,
    "KerasTorchBackend": _KerasTorch,
    "KerasTensorFlowBackend": _KerasTensorFlow,
}


def __getattr__(name: str) -> type[KerasBackend]:
    try:
        cls = _PUBLIC[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    import_keras(cls.engine)
    return cls


__all__ = list(_PUBLIC)
