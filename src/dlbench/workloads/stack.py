"""A network of standard layers, described once and framework-free: the CNNs (AlexNet, OverFeat, VGG-A, GoogLeNet,
ResNet-50) are data made of the layer records below, and every backend builds its model from that data with its
own idiomatic layers (backends/<framework>/stack.py: `nn.Conv2d` in PyTorch, `keras.layers.Conv2D` in Keras,
`lax.conv_general_dilated` in JAX, `tf.nn.conv2d` in TensorFlow). The shapes, the weights' names and shapes, the
FLOP count and the float64 reference (stack_math.py) are derived from the same data, so a model is written once.

Why records and not a small framework of our own: each backend's builder is a `match` over thirteen layer kinds that
calls the framework's own layer for each (what a user of that framework writes, and what its compiler sees),
while the model itself (which layers, in what order, with which sizes) is stated once. A new CNN made of these
layers is one function in convnets.py and one line in the registry; a new kind of layer is one record here, its
math in stack_math.py, and one case in each backend's builder.

Conventions (every backend follows them; the reference defines them):
- activations NCHW at the interface (as the workload's input), weights in PyTorch's layouts: conv OIHW, linear
  (out, in); a backend that computes channels-last converts the weights once, when it builds the model;
- Flatten flattens (C, H, W) in that order, so the first Linear after it sees PyTorch's feature order;
- padding is symmetric and explicit; a max-pool pads with -inf (in these networks every pool follows a ReLU, so
  zero padding, which Keras users write as ZeroPadding2D, gives the same output and gradients);
- BatchNorm computes batch statistics (training mode) in both modes, eps 1e-5, no running statistics read;
- FLOPs: 2 per multiply-add of every convolution (counted directly, as if computed as written: Winograd or FFT
  kernels do fewer and can exceed 100% of a measured peak) and every linear layer; nothing else is counted.
  `train` adds each weighted layer's two backward products (the gradient of its weights and of its input),
  except the input gradient of a layer applied to the image, which nobody computes (torch.utils.flop_counter
  counts the same: tests/unit/test_flop_counts.py).
Worker-side module: NumPy and the standard library only.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Union

from dlbench.core.errors import UsageError


@dataclass(frozen=True)
class Conv:
    """2-D convolution, square kernel, symmetric padding; weight (out, in, k, k), bias (out,) when `bias`."""

    name: str
    out: int
    kernel: int
    stride: int = 1
    pad: int = 0
    bias: bool = True


@dataclass(frozen=True)
class ReLU:
    pass


@dataclass(frozen=True)
class MaxPool:
    kernel: int
    stride: int
    pad: int = 0


@dataclass(frozen=True)
class GlobalAvgPool:
    """Mean over H and W: (C, H, W) -> (C,)."""


@dataclass(frozen=True)
class Flatten:
    """(C, H, W) -> (C·H·W,), in that order."""


@dataclass(frozen=True)
class Linear:
    """y = x Wᵀ + b on the last axis; weight (out, in), bias (out,)."""

    name: str
    out: int


@dataclass(frozen=True)
class BatchNorm:
    """Per-channel batch normalization with batch statistics; weight (C,) and bias (C,)."""

    name: str


@dataclass(frozen=True)
class LogSoftmax:
    """log(softmax(x)) over the last axis. With the workloads' loss, mean(output), it makes the loss a cross-entropy
    against a uniform target; a batch-norm network needs it: the mean of raw logits sends every batch norm a
    gradient that is nearly constant over the batch, which batch norm cancels (ResNet-50's gradients were then
    mostly rounding error, 7e-2 apart between float32 and float64 NumPy)."""


@dataclass(frozen=True)
class LayerNorm:
    """Normalization over the last axis (eps 1e-5); weight and bias of that axis' size."""

    name: str


@dataclass(frozen=True)
class GELU:
    """GELU, tanh approximation (GPT-2's; NumPy has no erf): 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))."""


@dataclass(frozen=True)
class SelfAttention:
    """Multi-head self-attention over (seq, d) as nanoGPT writes it: one (3d, d) projection to q, k, v (in that order,
    heads of d/heads consecutive features each), softmax(q kᵀ / √(d/heads)) v per head (causal: a position sees
    itself and the positions before it), heads concatenated, then a (d, d) output projection. Weights
    `<name>.qkv.weight` (3d, d), `.qkv.bias`, `<name>.proj.weight` (d, d), `.proj.bias`."""

    name: str
    heads: int
    causal: bool = True


@dataclass(frozen=True)
class Concat:
    """Each branch applied to the same input; their outputs concatenated along channels (an inception module)."""

    branches: tuple[tuple[Layer, ...], ...]


@dataclass(frozen=True)
class Residual:
    """body(x) + shortcut(x); an empty shortcut is the identity. A ReLU after the sum is its own record."""

    body: tuple[Layer, ...]
    shortcut: tuple[Layer, ...] = ()


# Union, not `|`: this alias is evaluated, and worker-side modules run on Python 3.9 (Theano's env).
Layer = Union[Conv, ReLU, MaxPool, GlobalAvgPool, Flatten, Linear, BatchNorm, LogSoftmax, LayerNorm, GELU,  # noqa: UP007
              SelfAttention, Concat, Residual]
Shape = tuple[int, ...]  # one sample's shape: (C, H, W) or (F,)
BN_EPS = 1e-5


class ShapeError(ValueError):
    """The input is too small for the network: a feature map vanishes at the named layer."""


def _spatial(n: int, kernel: int, stride: int, pad: int, where: str) -> int:
    out = (n + 2 * pad - kernel) // stride + 1
    if out < 1:
        raise ShapeError(f"{where}: a {n}x{n} input to a {kernel}x{kernel} window leaves nothing")
    return out


def walk(layers: tuple[Layer, ...], shape: Shape) -> Iterator[tuple[Layer, Shape, Shape]]:
    """Every layer in order (branches and residual parts depth-first), with its input and output shapes. A Concat
    or Residual is yielded after its parts, with the shapes of the whole."""
    for layer in layers:
        if isinstance(layer, Concat):
            outs = []
            for branch in layer.branches:
                out = shape
                for item in walk(branch, shape):
                    yield item
                    out = item[2]  # the last item walked is the branch's last layer
                outs.append(out)
            if any(o[1:] != outs[0][1:] for o in outs):
                raise ShapeError(f"inception branches disagree in size: {outs}")
            out = (sum(o[0] for o in outs), *outs[0][1:])
        elif isinstance(layer, Residual):
            parts = []
            for part in (layer.body, layer.shortcut):
                out = shape
                for item in walk(part, shape):
                    yield item
                    out = item[2]
                parts.append(out)
            if parts[0] != parts[1]:
                raise ShapeError(f"residual body {parts[0]} and shortcut {parts[1]} disagree")
            out = parts[0]
        else:
            out = _out_shape(layer, shape)
        yield layer, shape, out
        shape = out


def _out_shape(layer: Layer, shape: Shape) -> Shape:
    if isinstance(layer, Conv):
        c, h, w = shape
        return (layer.out, *(_spatial(n, layer.kernel, layer.stride, layer.pad, layer.name) for n in (h, w)))
    if isinstance(layer, MaxPool):
        c, h, w = shape
        where = f"max-pool {layer.kernel}/{layer.stride}"
        return (c, *(_spatial(n, layer.kernel, layer.stride, layer.pad, where) for n in (h, w)))
    if isinstance(layer, GlobalAvgPool):
        return shape[:1]
    if isinstance(layer, Flatten):
        return (math.prod(shape),)
    if isinstance(layer, Linear):
        return (*shape[:-1], layer.out)
    return shape  # ReLU, BatchNorm


def output_shape(layers: tuple[Layer, ...], shape: Shape) -> Shape:
    items = list(walk(layers, shape))  # a Concat's or Residual's parts come before the whole: the last item is
    return items[-1][2] if items else shape  # the last layer


def weight_shapes(layers: tuple[Layer, ...], shape: Shape) -> dict[str, Shape]:
    """Every weight's name and shape, in the order the layers use them."""
    shapes: dict[str, Shape] = {}
    for layer, inp, _out in walk(layers, shape):
        if isinstance(layer, Conv):
            shapes[f"{layer.name}.weight"] = (layer.out, inp[0], layer.kernel, layer.kernel)
            if layer.bias:
                shapes[f"{layer.name}.bias"] = (layer.out,)
        elif isinstance(layer, Linear):
            shapes[f"{layer.name}.weight"] = (layer.out, inp[-1])
            shapes[f"{layer.name}.bias"] = (layer.out,)
        elif isinstance(layer, BatchNorm):
            shapes[f"{layer.name}.weight"] = (inp[0],)
            shapes[f"{layer.name}.bias"] = (inp[0],)
        elif isinstance(layer, LayerNorm):
            shapes[f"{layer.name}.weight"] = (inp[-1],)
            shapes[f"{layer.name}.bias"] = (inp[-1],)
        elif isinstance(layer, SelfAttention):
            d = inp[-1]
            shapes.update({f"{layer.name}.qkv.weight": (3 * d, d), f"{layer.name}.qkv.bias": (3 * d,),
                           f"{layer.name}.proj.weight": (d, d), f"{layer.name}.proj.bias": (d,)})  # fmt: skip
    return shapes


def _first_weighted(layers: tuple[Layer, ...]) -> set[str]:
    """Names of the weighted layers that see the network's input (no one computes their input gradient)."""
    names: set[str] = set()
    for layer in layers:
        if isinstance(layer, (Conv, Linear)):
            return names | {layer.name}
        if isinstance(layer, (BatchNorm, LayerNorm)):
            return names  # the layers after it need their input gradients, for its own weights
        if isinstance(layer, SelfAttention):
            return names | {layer.name}
        if isinstance(layer, Concat):
            for branch in layer.branches:
                names |= _first_weighted(branch)
            return names
        if isinstance(layer, Residual):
            return names | _first_weighted(layer.body) | _first_weighted(layer.shortcut)
    return names


def flops_per_sample(layers: tuple[Layer, ...], shape: Shape, mode: str) -> float:
    """Convolution and linear FLOPs per sample, 2 per multiply-add (see the module docstring for `train`)."""
    on_input = _first_weighted(layers)
    forward = backward = 0
    for layer, inp, out in walk(layers, shape):
        if isinstance(layer, Conv):
            flops = 2 * inp[0] * layer.kernel**2 * math.prod(out)
        elif isinstance(layer, Linear):
            flops = 2 * math.prod(inp) * layer.out
        elif isinstance(layer, SelfAttention):
            seq, d = inp
            # q, k, v and output projections, then q kᵀ and (attention) v in full: a causal kernel may skip the
            # masked half, which this count (like torch.utils.flop_counter's) does not.
            flops = 2 * seq * d * 4 * d + 2 * 2 * seq * seq * d
        else:
            continue
        forward += flops
        backward += flops if layer.name in on_input else 2 * flops
    return float(forward if mode == "forward" else forward + backward)


def smallest_image(layers: tuple[Layer, ...], channels: int, start: int, multiple_of: int = 1) -> int:
    """The smallest square image (from `start`, in steps of `multiple_of`) that every layer can take."""
    image = start
    while image <= 4096:
        try:
            output_shape(layers, (channels, image, image))
            return image
        except ShapeError:
            image += multiple_of
    raise UsageError("no image size up to 4096 fits this network")


__all__ = [
    "BN_EPS",
    "BatchNorm",
    "Concat",
    "Conv",
    "Flatten",
    "GlobalAvgPool",
    "Layer",
    "Linear",
    "GELU",
    "LayerNorm",
    "LogSoftmax",
    "MaxPool",
    "ReLU",
    "Residual",
    "SelfAttention",
    "ShapeError",
    "flops_per_sample",
    "output_shape",
    "smallest_image",
    "walk",
    "weight_shapes",
]
