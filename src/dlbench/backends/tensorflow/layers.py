"""TensorFlow's layers for `dlbench probe` (see backends/layers.py for the contract), written with tf ops
on tf.Variables inside one tf.function, as the tensorflow backend does: tf.matmul, tf.nn.conv2d + bias_add,
an LSTM loop unrolled over its 16 steps, tf.nn.moments + tf.nn.batch_normalization, tf.nn.softmax, attention
from two matmuls and a softmax, tf.nn.embedding_lookup, tf.nn.max_pool2d.

- Images are NHWC and conv filters HWIO (TF's CPU kernels refuse NCHW in fp16): converted at build, and back in
  fetch, untimed.
- fp32/fp16/bf16: variables and inputs stored in that dtype. amp-*: float32 variables, cast to the compute type
  inside the function: what Keras' mixed-precision policy does for TF (AutoCastVariable); raw TF has no autocast.
- backward: tf.GradientTape over Σ float32(output) · g, every float input and weight a tf.Variable.
- variant "xla": the same tf.function with jit_compile=True.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# isort: off
from dlbench.backends.tensorflow import helpers  # first: it keeps TF's chatter out of the logs
import numpy as np
import tensorflow as tf

# isort: on
from dlbench.backends.base import Unsupported
from dlbench.backends.layers import CHANNELS_LAST, Built
from dlbench.workloads.layers import BN_EPS, LAYERS

DTYPES = {"fp32": tf.float32, "fp16": tf.float16, "bf16": tf.bfloat16, "amp-fp16": tf.float16,
          "amp-bf16": tf.bfloat16}  # fmt: skip


def _lstm(t: dict[str, tf.Tensor]) -> tf.Tensor:
    x, w_ih, w_hh = t["x"], t["weight_ih"], t["weight_hh"]
    steps, batch, hidden = x.shape[0], x.shape[1], w_hh.shape[1]
    xs = tf.reshape(tf.matmul(tf.reshape(x, (-1, x.shape[2])), w_ih, transpose_b=True), (steps, batch, 4 * hidden))
    xs = xs + t["bias_ih"] + t["bias_hh"]
    h = c = tf.zeros((batch, hidden), x.dtype)
    outputs = []
    for step in range(steps):
        i, f, g, o = tf.split(xs[step] + tf.matmul(h, w_hh, transpose_b=True), 4, axis=-1)
        c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
        h = tf.sigmoid(o) * tf.tanh(c)
        outputs.append(h)
    return tf.stack(outputs)


def _batchnorm(t: dict[str, tf.Tensor]) -> tf.Tensor:
    mean, variance = tf.nn.moments(t["x"], axes=[0, 1, 2])
    return tf.nn.batch_normalization(t["x"], mean, variance, t["bias"], t["weight"], BN_EPS)


def _attention(t: dict[str, tf.Tensor]) -> tf.Tensor:
    q = t["q"]
    scores = tf.matmul(q, t["k"], transpose_b=True) * tf.cast(q.shape[-1] ** -0.5, q.dtype)
    return tf.matmul(tf.nn.softmax(scores, axis=-1), t["v"])


_LAYERS: dict[str, Callable[[dict[str, tf.Tensor]], tf.Tensor]] = {
    "linear": lambda t: tf.matmul(t["x"], t["weight"], transpose_b=True) + t["bias"],
    "conv2d": lambda t: tf.nn.bias_add(tf.nn.conv2d(t["x"], t["weight"], 1, "SAME"), t["bias"]),
    "lstm": _lstm,
    "batchnorm": _batchnorm,
    "softmax": lambda t: tf.nn.softmax(t["x"], axis=-1),
    "attention": _attention,
    "embedding": lambda t: tf.nn.embedding_lookup(t["weight"], t["ids"]),
    "maxpool": lambda t: tf.nn.max_pool2d(t["x"], 2, 2, "VALID"),
}


def _device(device: str) -> str:
    if device == "cpu":
        return "/CPU:0"
    if device == "cuda" and tf.config.list_physical_devices("GPU"):
        helpers.full_fp32()  # fp32 means fp32, as in the tensorflow backend
        return "/GPU:0"
    raise Unsupported(f"tensorflow {tf.__version__} has no device {device!r}")


def build(layer: str, direction: str, arrays: dict[str, np.ndarray], cotangent: np.ndarray, precision: str,
          device: str, variant: str) -> Built:  # fmt: skip
    place = _device(device)
    amp = precision.startswith("amp-")
    compute = DTYPES[precision]
    stored = tf.float32 if amp else compute
    layouts = CHANNELS_LAST.get(layer, {})
    names = LAYERS[layer].differentiable

    def to_tf(name: str, array: np.ndarray) -> np.ndarray:
        return array.transpose(layouts[name]) if name in layouts else array

    def from_tf(name: str, value: Any) -> tuple[np.ndarray, str]:
        value = tf.convert_to_tensor(value)  # the embedding's gradient comes as IndexedSlices
        array = value.numpy().astype(np.float64)
        return (array.transpose(np.argsort(layouts[name])) if name in layouts else array), value.dtype.name

    with tf.device(place):
        tensors: dict[str, Any] = {
            k: tf.Variable(to_tf(k, v), dtype=stored, name=k) if k in names else tf.constant(v.astype(np.int32))
            for k, v in arrays.items()
        }
        g = tf.constant(to_tf("output", cotangent), dtype=tf.float32)
    layer_fn = _LAYERS[layer]

    def apply() -> tf.Tensor:
        t = {k: tf.cast(v, compute) if amp and k in names else v for k, v in tensors.items()}
        return layer_fn(t)

    jit = variant == "xla"
    if direction == "forward":

        @tf.function(jit_compile=jit)
        def forward() -> Any:
            with tf.device(place):
                return apply()

        return forward, lambda out: {"output": from_tf("output", out)}

    variables = [tensors[k] for k in names]

    @tf.function(jit_compile=jit)
    def backward() -> Any:
        with tf.device(place), tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.cast(apply(), tf.float32) * g)
        return tape.gradient(loss, variables)

    return backward, lambda grads: {k: from_tf(k, v) for k, v in zip(names, grads, strict=True)}
