"""A layer stack (dlbench.workloads.stack) as a Keras 3 functional model (keras.Input -> layers -> keras.Model; a
Sequential cannot branch), written as keras.applications writes its CNNs, one builder for every engine:

- `Conv2D` (activation="relu" folded in where a ReLU follows, as keras.applications.VGG16 does; otherwise
  `Activation("relu")`), padding "same" where that is exactly the record's padding (stride 1, pad (k-1)/2), else
  `ZeroPadding2D(pad)` then padding "valid" (keras.applications.ResNet50's conv1);
- `MaxPooling2D`: "valid", or "same" where exactly the same (GoogLeNet's 3/1/1), else `ZeroPadding2D` then "valid"
  (ResNet50's pool1). Zero padding is the reference's -inf padding only where the pool's input cannot be negative:
  the builder tracks that (after a ReLU, a pool of such, a concatenation of such) and refuses any other padded
  pool as Unsupported (Keras has no -inf padding layer);
- `GlobalAveragePooling2D`, `Flatten`, `Dense`, `Concatenate` and `Add`, `Activation("log_softmax")`;
- `BatchNormalization(epsilon=1e-5)` always computing batch statistics (`BatchStatistics`, below): the workloads'
  batch norm, in both modes. Keras lets a model call's `training` flag override the one given to a layer in the
  graph, and the engines call forward with training=False, as Keras' predict does; the subclass keeps it True,
  as PyTorch's model.train() does for the torch backend. Its moving statistics are updated as Keras does in
  training and never read. In fp16/bf16 Keras normalizes in float32 itself.

The transformer block (a (batch, seq, d) input): `LayerNormalization(epsilon=1e-5)`, `Dense` for the MLP with
`Activation` of `keras.activations.gelu(approximate=True)` (GPT-2's tanh form; Keras' "gelu" string is the erf
form), `Add` for the residuals, and the attention as nanoGPT's `CausalSelfAttention` ported to Keras: a small
layer (`SelfAttention`, below) of two `Dense` (the fused qkv projection and the output projection) and keras.ops
for the scores, the causal mask and the softmax. Not `MultiHeadAttention`: its per-head (d, heads, d/heads)
query/key/value kernels would split the workload's one fused qkv weight over three variables, whose gradient would
then be reassembled outside the timed step; the arithmetic is the same either way.

Weights (Keras' layouts, set once at build): Conv2D kernels (kh, kw, in, out) in either data_format, Dense kernels
(in, out), batch norm's gamma and beta (its moving statistics are left as Keras initialised them). Keras' Flatten
gives (H, W, C) order in either data_format (with channels_first it transposes to channels-last first, to keep
weight order across formats); the reference's is (C, H, W), so the rows of the Dense right after a Flatten are
permuted once at build. Outputs and gradients stay in Keras' layouts; `layouts` (keyed by an array's shape, as
the backend's to_numpy reads them) convert them back, and a shape two layouts share converts to an error, never a
guess (a Dense kernel (in, out) with in = batch, say: verification runs at batch 1 or 2, where none occurs).
Worker-side module: imports nothing from a framework itself; it is handed Keras.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from dlbench.backends.base import Unsupported
from dlbench.workloads import stack


@dataclass(frozen=True)
class ToWorkload:
    """How a Keras array converts to the workload's layout: a permutation, or (flat) the (H·W·C, out) kernel of a
    Dense after a Flatten of a (C, H, W) map back to (out, C·H·W)."""

    perm: tuple[int, ...] | None = None
    flat: tuple[int, int, int] | None = None

    def to_keras(self, a: np.ndarray) -> np.ndarray:
        if self.flat is not None:
            c, h, w = self.flat
            return a.reshape(-1, c, h, w).transpose(2, 3, 1, 0).reshape(h * w * c, -1)
        return a if self.perm is None else a.transpose(np.argsort(self.perm))

    def __call__(self, a: np.ndarray) -> np.ndarray:
        if self.flat is not None:
            c, h, w = self.flat
            return a.reshape(h, w, c, -1).transpose(3, 2, 0, 1).reshape(-1, c * h * w)
        return a if self.perm is None else a.transpose(self.perm)


@dataclass(frozen=True)
class Ambiguous:
    """A shape that two arrays of different layouts share: converting it is refused."""

    shape: tuple[int, ...]
    layouts: tuple[ToWorkload, ...]

    def __call__(self, a: np.ndarray) -> np.ndarray:
        raise ValueError(f"an array of shape {self.shape} could be in either of these Keras layouts: {self.layouts}; "
                         "verify at another batch size")  # fmt: skip


SAME = ToWorkload()
OIHW = ToWorkload((3, 2, 0, 1))  # (kh, kw, in, out) -> (out, in, kh, kw)
OUT_IN = ToWorkload((1, 0))  # (in, out) -> (out, in)
NCHW = ToWorkload((0, 3, 1, 2))  # a channels_last image output -> NCHW


_FLATTEN = ("a Flatten not followed by a Linear layer: Keras' Flatten gives (H, W, C) order, the reference's "
            "(C, H, W), and only the Dense after it is permuted to match")  # fmt: skip


def _keras_name(name: str) -> str:
    """The workload's layer name as a Keras layer name: Keras on torch registers each variable as a torch parameter,
    whose name cannot contain "." (`inception3a.1x1` -> `inception3a_1x1`)."""
    return name.replace(".", "_")


def _batch_statistics_class(keras: Any) -> type:
    class BatchStatistics(keras.layers.BatchNormalization):  # type: ignore[name-defined,misc]
        """BatchNormalization that normalizes with the batch's statistics whatever `training` its model is called
        with (see the module docstring)."""

        def call(self, inputs: Any, training: Any = None, mask: Any = None) -> Any:
            return super().call(inputs, training=True, mask=mask)

    return BatchStatistics


def _attention_class(keras: Any) -> type:
    ops = keras.ops

    class SelfAttention(keras.layers.Layer):  # type: ignore[name-defined,misc]
        """nanoGPT's causal self-attention: qkv = Dense(3d)(x), per-head softmax(q kᵀ/√dh) v, Dense(d)."""

        def __init__(self, d: int, heads: int, causal: bool, name: str, dtype: Any = None) -> None:
            super().__init__(name=name, dtype=dtype)
            self.d, self.heads, self.causal = d, heads, causal
            self.qkv = keras.layers.Dense(3 * d, dtype=dtype, name=f"{name}_qkv")
            self.proj = keras.layers.Dense(d, dtype=dtype, name=f"{name}_proj")

        def build(self, input_shape: Any) -> None:
            self.qkv.build(input_shape)
            self.proj.build(input_shape)

        def call(self, x: Any) -> Any:
            batch, seq = ops.shape(x)[0], ops.shape(x)[1]
            dh = self.d // self.heads
            q, k, v = (ops.transpose(ops.reshape(part, (batch, seq, self.heads, dh)), (0, 2, 1, 3))
                       for part in ops.split(self.qkv(x), 3, axis=-1))  # fmt: skip
            scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) * ops.cast(1.0 / dh**0.5, x.dtype)
            if self.causal:  # a position sees itself and the positions before it
                later = ops.triu(ops.ones((seq, seq), dtype="bool"), k=1)
                scores = ops.where(later, ops.cast(float("-inf"), scores.dtype), scores)
            out = ops.matmul(ops.softmax(scores, axis=-1), v)
            return self.proj(ops.reshape(ops.transpose(out, (0, 2, 1, 3)), (batch, seq, self.d)))

    return SelfAttention


class _Builder:
    def __init__(self, keras: Any, weights: dict[str, np.ndarray], dtype: str, data_format: str) -> None:
        self.keras, self.weights, self.dtype, self.data_format = keras, weights, dtype, data_format
        self.channels_axis = -1 if data_format == "channels_last" else 1
        self.batch_norm = _batch_statistics_class(keras)
        self.attention = _attention_class(keras)
        self.names: dict[int, str] = {}  # id(Keras variable) -> the workload's weight name
        self.layouts: dict[str, ToWorkload] = {}  # the workload's weight name -> its conversion

    def _set(self, name: str, variable: Any, layout: ToWorkload) -> None:
        variable.assign(np.ascontiguousarray(layout.to_keras(self.weights[name])))
        self.names[id(variable)], self.layouts[name] = name, layout

    def _padded(self, x: Any, pad: int) -> Any:
        return self.keras.layers.ZeroPadding2D(pad, data_format=self.data_format, dtype=self.dtype)(x)

    def apply(self, layers: tuple[stack.Layer, ...], x: Any, shape: tuple[int, ...], nonneg: bool) -> tuple[Any, bool]:
        """The symbolic tensor `x` (of per-sample (C, H, W) `shape`) through `layers`; and whether the result is
        non-negative (a zero-padded pool is then exact)."""
        kl, dtype, fmt = self.keras.layers, self.dtype, self.data_format
        flat: tuple[int, int, int] | None = None
        i = 0
        while i < len(layers):
            layer = layers[i]
            out_shape = stack.output_shape((layer,), shape)
            match layer:
                case stack.Conv(name, out, kernel, stride, pad, bias):
                    same = stride == 1 and 2 * pad == kernel - 1
                    if pad and not same:
                        x = self._padded(x, pad)
                    relu = i + 1 < len(layers) and isinstance(layers[i + 1], stack.ReLU)
                    conv = kl.Conv2D(out, kernel, strides=stride, padding="same" if pad and same else "valid",
                                     activation="relu" if relu else None, use_bias=bias, data_format=fmt,
                                     dtype=dtype, name=_keras_name(name))  # fmt: skip
                    x, nonneg = conv(x), relu
                    if relu:
                        i += 1  # the ReLU record is the Conv2D's activation
                    self._set(f"{name}.weight", conv.kernel, OIHW)
                    if bias:
                        self._set(f"{name}.bias", conv.bias, SAME)
                case stack.ReLU():
                    x, nonneg = kl.Activation("relu", dtype=dtype)(x), True
                case stack.MaxPool(kernel, stride, pad):
                    same = stride == 1 and 2 * pad == kernel - 1
                    if pad and not same:
                        if not nonneg:
                            raise Unsupported(f"max-pool {kernel}/{stride} padded by {pad} after a layer whose output "
                                              "can be negative: Keras pads a pool with zeros only (ZeroPadding2D), "
                                              "the reference with -inf")  # fmt: skip
                        x = self._padded(x, pad)
                    x = kl.MaxPooling2D(kernel, stride, padding="same" if pad and same else "valid", data_format=fmt,
                                        dtype=dtype)(x)  # fmt: skip
                case stack.GlobalAvgPool():
                    x = kl.GlobalAveragePooling2D(data_format=fmt, dtype=dtype)(x)
                case stack.Flatten():
                    if len(shape) == 3:
                        if not (i + 1 < len(layers) and isinstance(layers[i + 1], stack.Linear)):
                            raise Unsupported(_FLATTEN)
                        flat = (shape[0], shape[1], shape[2])
                    x = kl.Flatten(data_format=fmt, dtype=dtype)(x)
                case stack.Linear(name, out):
                    dense = kl.Dense(out, dtype=dtype, name=_keras_name(name))
                    x, nonneg = dense(x), False
                    self._set(f"{name}.weight", dense.kernel, ToWorkload(flat=flat) if flat else OUT_IN)
                    self._set(f"{name}.bias", dense.bias, SAME)
                case stack.BatchNorm(name):
                    bn = self.batch_norm(axis=self.channels_axis, epsilon=stack.BN_EPS, dtype=dtype,
                                         name=_keras_name(name))  # fmt: skip
                    x, nonneg = bn(x), False
                    self._set(f"{name}.weight", bn.gamma, SAME)
                    self._set(f"{name}.bias", bn.beta, SAME)
                case stack.LogSoftmax():
                    x, nonneg = kl.Activation("log_softmax", dtype=dtype)(x), False
                case stack.LayerNorm(name):
                    norm = kl.LayerNormalization(epsilon=stack.BN_EPS, dtype=dtype, name=_keras_name(name))
                    x, nonneg = norm(x), False
                    self._set(f"{name}.weight", norm.gamma, SAME)
                    self._set(f"{name}.bias", norm.beta, SAME)
                case stack.GELU():
                    gelu = partial(self.keras.activations.gelu, approximate=True)
                    x, nonneg = kl.Activation(gelu, dtype=dtype)(x), False
                case stack.SelfAttention(name, heads, causal):
                    attention = self.attention(shape[-1], heads, causal, _keras_name(name), dtype=dtype)
                    x, nonneg = attention(x), False
                    for part, dense in (("qkv", attention.qkv), ("proj", attention.proj)):
                        self._set(f"{name}.{part}.weight", dense.kernel, OUT_IN)
                        self._set(f"{name}.{part}.bias", dense.bias, SAME)
                case stack.Concat(branches):
                    built = [self.apply(branch, x, shape, nonneg) for branch in branches]
                    x = kl.Concatenate(axis=self.channels_axis, dtype=dtype)([out for out, _ in built])
                    nonneg = all(positive for _, positive in built)
                case stack.Residual(body, shortcut):
                    y, _ = self.apply(body, x, shape, nonneg)
                    z = self.apply(shortcut, x, shape, nonneg)[0] if shortcut else x
                    x, nonneg = kl.Add(dtype=dtype)([y, z]), False
                case _:
                    raise Unsupported(f"{type(layer).__name__} layers are not built by the Keras backends")
            if not isinstance(layer, stack.Flatten):
                flat = None
            shape = out_shape  # a ReLU folded into its Conv2D keeps the shape
            i += 1
        return x, nonneg


def build(keras: Any, layers: tuple[stack.Layer, ...], input_shape: tuple[int, ...], weights: dict[str, np.ndarray],
          dtype: str, data_format: str, name: str) -> Any:  # fmt: skip
    """The functional model for an input of `input_shape` (NCHW images, or (batch, seq, d) sequences), its weights
    (Keras' order, as tuples of the workload's names, as backend.py's builders return them), and the layout
    converters keyed by shape."""
    if len(input_shape) not in (3, 4):
        raise Unsupported("the Keras backends build image (NCHW) and sequence (batch, seq, d) stacks")
    batch, sample = input_shape[0], tuple(input_shape[1:])
    builder = _Builder(keras, weights, dtype, data_format)
    if len(sample) == 3 and data_format == "channels_last":
        c, h, w = sample
        inputs = keras.Input((h, w, c), dtype=dtype)
    else:
        inputs = keras.Input(sample, dtype=dtype)
    outputs, _ = builder.apply(layers, inputs, sample, nonneg=False)
    model = keras.Model(inputs, outputs, name=name)
    names = [(builder.names[id(v)],) for v in model.trainable_weights]
    if sorted(n for (n,) in names) != sorted(weights):
        raise RuntimeError(f"weights do not fit the model: {sorted(set(weights) ^ {n for (n,) in names})}")
    found: dict[tuple[int, ...], set[ToWorkload]] = {}
    for variable in model.trainable_weights:
        found.setdefault(tuple(variable.shape), set()).add(builder.layouts[builder.names[id(variable)]])
    out = (batch, *model.output_shape[1:])
    found.setdefault(out, set()).add(NCHW if len(out) == 4 and data_format == "channels_last" else SAME)
    layouts = {shape: next(iter(kinds)) if len(kinds) == 1 else Ambiguous(shape, tuple(kinds))
               for shape, kinds in found.items()}  # fmt: skip
    return model, names, layouts


__all__ = ["Ambiguous", "ToWorkload", "build"]
