"""Keras 3's layers for `dlbench probe` (see backends/layers.py for the contract), on the engine the
worker's keras-* backend imported Keras with (`variant`): Dense, Conv2D (channels_last), LSTM, BatchNormalization
(training=True), Softmax, a small attention layer over keras.ops (two matmuls and a softmax), Embedding,
MaxPooling2D, each built with the workload's weights set in Keras' layouts.

- precision = the layers' dtype policy: "float32", "float16", "bfloat16", or for amp "mixed_float16",
  "mixed_bfloat16" (float32 variables, compute in the low type: Keras' own mixed precision).
- Each engine runs the layer its own way, as keras.py's backends do: jax — jax.jit over layer.stateless_call,
  jax.grad for backward; torch — eager, torch.autograd; tensorflow — tf.function, tf.GradientTape. Backward is the
  gradient of Σ float32(output) · g over every float input and trainable weight.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from dlbench.backends.keras.backend import keras_device
from dlbench.backends.layers import CHANNELS_LAST, Built
from dlbench.workloads.layers import BN_EPS, LAYERS

POLICIES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16", "amp-fp16": "mixed_float16",
            "amp-bf16": "mixed_bfloat16"}  # fmt: skip
_BATCH_MAJOR = (1, 0, 2)  # Keras' LSTM is batch-major; the reference is time-major
_T = lambda a: a.T  # noqa: E731
_SAME = lambda a: a  # noqa: E731


class _Attention(keras.layers.Layer):
    """softmax(q kᵀ/√d) v with keras.ops: a Layer, so that a mixed policy casts q, k, v to its compute type."""

    def call(self, q: Any, k: Any, v: Any) -> Any:
        ops = keras.ops
        scores = ops.matmul(q, ops.transpose(k, (0, 2, 1))) * ops.cast(q.shape[-1] ** -0.5, q.dtype)
        return ops.matmul(ops.softmax(scores, axis=-1), v)


# Per layer: make(arrays, policy) -> (the Keras layer, its weights in Keras' layouts for set_weights, and for each
# trainable weight in order: (reference names it stands for, Keras layout -> reference layout)).
Params = list[tuple[tuple[str, ...], Callable[[np.ndarray], np.ndarray]]]


def _linear(a: dict[str, np.ndarray], policy: str) -> tuple[Any, list[np.ndarray], Params]:
    layer = keras.layers.Dense(a["weight"].shape[0], dtype=policy)
    return layer, [a["weight"].T, a["bias"]], [(("weight",), _T), (("bias",), _SAME)]


def _conv(a: dict[str, np.ndarray], policy: str) -> tuple[Any, list[np.ndarray], Params]:
    layer = keras.layers.Conv2D(a["weight"].shape[0], 3, padding="same", dtype=policy)
    kernel = a["weight"].transpose(CHANNELS_LAST["conv2d"]["weight"])
    return layer, [kernel, a["bias"]], [(("weight",), lambda k: k.transpose(3, 2, 0, 1)), (("bias",), _SAME)]


def _lstm(a: dict[str, np.ndarray], policy: str) -> tuple[Any, list[np.ndarray], Params]:
    # zeros: Keras' default orthogonal initializer runs a QR at build, which has no fp16 kernel (weights are set after)
    layer = keras.layers.LSTM(a["weight_hh"].shape[1], return_sequences=True, dtype=policy,
                              recurrent_initializer="zeros")  # fmt: skip
    weights = [a["weight_ih"].T, a["weight_hh"].T, a["bias_ih"] + a["bias_hh"]]
    return layer, weights, [(("weight_ih",), _T), (("weight_hh",), _T), (("bias_ih", "bias_hh"), _SAME)]


def _batchnorm(a: dict[str, np.ndarray], policy: str) -> tuple[Any, list[np.ndarray], Params]:
    layer = keras.layers.BatchNormalization(axis=-1, epsilon=BN_EPS, dtype=policy)
    channels = a["weight"].shape[0]
    weights = [a["weight"], a["bias"], np.zeros(channels, np.float32), np.ones(channels, np.float32)]
    return layer, weights, [(("weight",), _SAME), (("bias",), _SAME)]


def _embedding(a: dict[str, np.ndarray], policy: str) -> tuple[Any, list[np.ndarray], Params]:
    layer = keras.layers.Embedding(*a["weight"].shape, dtype=policy)
    return layer, [a["weight"]], [(("weight",), _SAME)]


def _plain(make: Callable[[str], Any]) -> Callable[[dict[str, np.ndarray], str], tuple[Any, list[np.ndarray], Params]]:
    return lambda a, policy: (make(policy), [], [])


_LAYERS = {
    "linear": _linear,
    "conv2d": _conv,
    "lstm": _lstm,
    "batchnorm": _batchnorm,
    "softmax": _plain(lambda policy: keras.layers.Softmax(axis=-1, dtype=policy)),
    "attention": _plain(lambda policy: _Attention(dtype=policy, name="attention")),
    "embedding": _embedding,
    "maxpool": _plain(lambda policy: keras.layers.MaxPooling2D(2, dtype=policy)),
}
_LAYOUTS = {**CHANNELS_LAST, "lstm": {"x": _BATCH_MAJOR, "output": _BATCH_MAJOR}}


def _host(value: Any) -> tuple[np.ndarray, str]:
    """An engine's array as a float64 NumPy array and its dtype name."""
    if hasattr(value, "detach"):  # torch
        dtype = str(value.dtype).removeprefix("torch.")
        return value.detach().to("cpu").double().numpy(), dtype
    if type(value).__name__ == "IndexedSlices":  # tensorflow's gradient of a gather (the embedding)
        import tensorflow as tf

        value = tf.convert_to_tensor(value)
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):  # tensorflow
        return value.numpy().astype(np.float64), value.dtype.name
    array = np.asarray(value)  # jax
    return array.astype(np.float64), str(array.dtype)


def build(layer: str, direction: str, arrays: dict[str, np.ndarray], cotangent: np.ndarray, precision: str,
          device: str, variant: str) -> Built:  # fmt: skip
    if keras.backend.backend() != variant:
        raise RuntimeError(f"Keras runs on {keras.backend.backend()!r} in this process, not on {variant!r}")
    spec, policy = LAYERS[layer], POLICIES[precision]
    layouts = _LAYOUTS.get(layer, {})
    to_keras = {k: v.transpose(layouts[k]) if k in layouts else v for k, v in arrays.items()}
    g = cotangent.transpose(layouts["output"]) if "output" in layouts else cotangent
    input_dtype = "float32" if precision.startswith("amp-") else policy
    place = keras_device(device)
    with keras.device(place):
        obj, weights, params = _LAYERS[layer](arrays, policy)
        inputs = [keras.ops.convert_to_tensor(np.array(to_keras[k], copy=True), "int32" if k == "ids" else input_dtype)
                  for k in spec.inputs]  # fmt: skip
        obj(*inputs)  # builds the weights
        if weights:
            obj.set_weights(weights)
    float_inputs = [i for i, k in enumerate(spec.inputs) if k != "ids"]

    def fetch_output(out: Any) -> dict[str, tuple[np.ndarray, str]]:
        array, dtype = _host(out)
        return {"output": (array.transpose(np.argsort(layouts["output"])) if "output" in layouts else array, dtype)}

    def fetch_grads(grads: Any) -> dict[str, tuple[np.ndarray, str]]:
        grads = list(grads)
        found: dict[str, tuple[np.ndarray, str]] = {}
        for i, value in zip(float_inputs, grads[: len(float_inputs)], strict=True):
            name = spec.inputs[i]
            array, dtype = _host(value)
            found[name] = (array.transpose(np.argsort(layouts[name])) if name in layouts else array, dtype)
        for (names, to_ref), value in zip(params, grads[len(float_inputs) :], strict=True):
            array, dtype = _host(value)
            for name in names:
                found[name] = (to_ref(array), dtype)
        return found

    # training=True (batch statistics) where the layer's call takes it (the others' call has no such argument).
    kwargs = {"training": True} if "training" in inspect.signature(obj.call).parameters else {}
    run = {"jax": _jax_steps, "torch": _torch_steps, "tensorflow": _tensorflow_steps}[variant]
    step = run(obj, inputs, float_inputs, g, direction, place, kwargs)
    return step, fetch_output if direction == "forward" else fetch_grads


def _loss(out: Any, g: Any) -> Any:
    return keras.ops.sum(keras.ops.cast(out, "float32") * g)


class _Through(keras.layers.Layer):
    """Calls the layer through Layer.__call__ (input casting, variable autocast under a mixed policy, `training`
    only where its call takes it): stateless_call on the layer itself would run its `call` bare."""

    def __init__(self, inner: Any, kwargs: dict[str, Any]) -> None:
        super().__init__(name="through")
        self.inner, self.kwargs = inner, kwargs
        self.built = True

    def call(self, *xs: Any) -> Any:
        return self.inner(*xs, **self.kwargs)


def _jax_steps(obj: Any, inputs: list[Any], float_inputs: list[int], g: np.ndarray, direction: str,
               place: str, kwargs: dict[str, Any]) -> Callable[[], Any]:  # fmt: skip
    import jax

    through = _Through(obj, kwargs)
    trainable = [v.value for v in through.trainable_variables]
    fixed = [v.value for v in through.non_trainable_variables]

    def apply(tv: list[Any], xs: list[Any]) -> Any:
        return through.stateless_call(tv, fixed, *xs)[0]

    if direction == "forward":
        forward = jax.jit(apply)
        return lambda: forward(trainable, inputs)
    ints = {i: x for i, x in enumerate(inputs) if i not in float_inputs}
    floats = [inputs[i] for i in float_inputs]
    gj = jax.numpy.asarray(g, dtype="float32")

    def loss(floats: list[Any], tv: list[Any], g: Any) -> Any:  # g an argument: XLA would constant-fold it
        it = iter(floats)
        xs = [ints[i] if i in ints else next(it) for i in range(len(inputs))]
        return _loss(apply(tv, xs), g)

    gradient = jax.jit(jax.grad(loss, argnums=(0, 1)))

    def backward() -> Any:
        d_inputs, d_params = gradient(floats, trainable, gj)
        return [*d_inputs, *d_params]

    return backward


def _torch_steps(obj: Any, inputs: list[Any], float_inputs: list[int], g: np.ndarray, direction: str,
                 place: str, kwargs: dict[str, Any]) -> Callable[[], Any]:  # fmt: skip
    import torch

    if direction == "forward":

        def forward() -> Any:
            with keras.device(place), torch.no_grad():
                return obj(*inputs, **kwargs)

        return forward
    for i in float_inputs:
        inputs[i].requires_grad_(True)
    leaves = [inputs[i] for i in float_inputs] + [v.value for v in obj.trainable_weights]
    gt = torch.from_numpy(np.array(g, dtype=np.float32)).to(leaves[0].device)

    def backward() -> Any:
        with keras.device(place):
            out = obj(*inputs, **kwargs)
            return torch.autograd.grad(_loss(out, gt), leaves)

    return backward


def _tensorflow_steps(obj: Any, inputs: list[Any], float_inputs: list[int], g: np.ndarray, direction: str,
                      place: str, kwargs: dict[str, Any]) -> Callable[[], Any]:  # fmt: skip
    import tensorflow as tf

    if direction == "forward":

        @tf.function
        def forward() -> Any:
            with keras.device(place):
                return obj(*inputs, **kwargs)

        return forward
    gt = tf.constant(g, dtype=tf.float32)
    weights = obj.trainable_weights

    @tf.function
    def backward() -> Any:
        with keras.device(place), tf.GradientTape() as tape:
            for i in float_inputs:
                tape.watch(inputs[i])
            loss = _loss(obj(*inputs, **kwargs), gt)
        return tape.gradient(loss, [inputs[i] for i in float_inputs] + list(weights))

    return backward
