"""The CNNs, each a stack of standard layers (stack.py): the four models of soumith/convnet-benchmarks as benchmarked
there (torch7/imagenet_winners/{alexnet,overfeat,vgg_a,googlenet}.lua at 5b96dbc/5db156e: full forward and
backward, dropout and softmax removed, no LRN), and ResNet-50 (torchvision's layout, batch norm in training mode).

Departures from those files, each exact at the published sizes: nn.Threshold(0, 1e-6) after the classifiers'
linear layers is a ReLU here (it differs only where an input is exactly 0); GoogLeNet's final 7x7 average pool is a
global average pool (the same at 224x224; a smaller image, as the CPU suite uses, keeps the structure). The loss
is mean(output) like every workload's, so `train` is the forward pass and the gradients of every weight, without
the image's gradient (convnet-benchmarks also dropped it: `features:get(1).gradInput = nil`).
Worker-side module: NumPy and the standard library only.
"""

from __future__ import annotations

from dlbench.workloads.base import SizeParam
from dlbench.workloads.stack import (
    BatchNorm,
    Concat,
    Conv,
    Flatten,
    GlobalAvgPool,
    Layer,
    Linear,
    LogSoftmax,
    MaxPool,
    ReLU,
    Residual,
)
from dlbench.workloads.stacked import StackWorkload
from dlbench.workloads.transformer import TransformerBlock


def _conv_relu(name: str, out: int, kernel: int, stride: int = 1, pad: int = 0) -> tuple[Layer, ...]:
    return Conv(name, out, kernel, stride, pad), ReLU()


def _classifier(*widths: int) -> tuple[Layer, ...]:
    """Flatten, then fc6, fc7, ... of these widths with a ReLU between them (none after the last)."""
    layers: list[Layer] = [Flatten()]
    for i, width in enumerate(widths):
        layers.append(Linear(f"fc{6 + i}", width))
        if i < len(widths) - 1:
            layers.append(ReLU())
    return tuple(layers)


def alexnet() -> tuple[Layer, ...]:
    """AlexNet as in "One weird trick" (Krizhevsky 2014), convnet-benchmarks' alexnet.lua."""
    return (
        *_conv_relu("conv1", 64, 11, 4, 2), MaxPool(3, 2),
        *_conv_relu("conv2", 192, 5, 1, 2), MaxPool(3, 2),
        *_conv_relu("conv3", 384, 3, 1, 1), *_conv_relu("conv4", 256, 3, 1, 1), *_conv_relu("conv5", 256, 3, 1, 1),
        MaxPool(3, 2),
        *_classifier(4096, 4096, 1000),
    )  # fmt: skip


def overfeat() -> tuple[Layer, ...]:
    """OverFeat's fast model (Sermanet et al. 2013), convnet-benchmarks' overfeat.lua."""
    return (
        *_conv_relu("conv1", 96, 11, 4), MaxPool(2, 2),
        *_conv_relu("conv2", 256, 5), MaxPool(2, 2),
        *_conv_relu("conv3", 512, 3, 1, 1), *_conv_relu("conv4", 1024, 3, 1, 1),
        *_conv_relu("conv5", 1024, 3, 1, 1), MaxPool(2, 2),
        *_classifier(3072, 4096, 1000),
    )  # fmt: skip


VGG_A: tuple[int | str, ...] = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


def vgga() -> tuple[Layer, ...]:
    """VGG configuration A (Simonyan & Zisserman 2014), convnet-benchmarks' vgg_a.lua."""
    layers: list[Layer] = []
    for i, item in enumerate(VGG_A):
        layers.extend([MaxPool(2, 2)] if item == "M" else _conv_relu(f"conv{i + 1}", int(item), 3, 1, 1))
    return (*layers, *_classifier(4096, 4096, 1000))


# GoogLeNet v1's inception modules: (name, 1x1, (3x3 reduce, 3x3), (5x5 reduce, 5x5), pool projection).
INCEPTIONS = (
    ("3a", 64, (96, 128), (16, 32), 32), ("3b", 128, (128, 192), (32, 96), 64), "M",
    ("4a", 192, (96, 208), (16, 48), 64), ("4b", 160, (112, 224), (24, 64), 64),
    ("4c", 128, (128, 256), (24, 64), 64), ("4d", 112, (144, 288), (32, 64), 64),
    ("4e", 256, (160, 320), (32, 128), 128), "M",
    ("5a", 256, (160, 320), (32, 128), 128), ("5b", 384, (192, 384), (48, 128), 128),
)  # fmt: skip


def _inception(name: str, one: int, three: tuple[int, int], five: tuple[int, int], pool: int) -> Concat:
    n = f"inception{name}"
    return Concat((
        _conv_relu(f"{n}.1x1", one, 1),
        (*_conv_relu(f"{n}.3x3_reduce", three[0], 1), *_conv_relu(f"{n}.3x3", three[1], 3, 1, 1)),
        (*_conv_relu(f"{n}.5x5_reduce", five[0], 1), *_conv_relu(f"{n}.5x5", five[1], 5, 1, 2)),
        (MaxPool(3, 1, 1), *_conv_relu(f"{n}.pool_proj", pool, 1)),
    ))  # fmt: skip


def googlenet() -> tuple[Layer, ...]:
    """GoogLeNet v1 (Szegedy et al. 2014) without LRN, convnet-benchmarks' googlenet.lua (including its ReLU after
    the last linear layer)."""
    layers: list[Layer] = [
        *_conv_relu("conv1", 64, 7, 2, 3), MaxPool(3, 2, 1),
        *_conv_relu("conv2_reduce", 64, 1), *_conv_relu("conv2", 192, 3, 1, 1), MaxPool(3, 2, 1),
    ]  # fmt: skip
    for item in INCEPTIONS:
        layers.append(MaxPool(3, 2, 1) if item == "M" else _inception(*item))
    return (*layers, GlobalAvgPool(), Linear("fc", 1000), ReLU())


def _bottleneck(name: str, width: int, stride: int, project: bool) -> tuple[Layer, ...]:
    """torchvision's Bottleneck (v1.5: the stride on the 3x3 convolution), then the ReLU after the sum."""
    body = (
        Conv(f"{name}.conv1", width, 1, bias=False), BatchNorm(f"{name}.bn1"), ReLU(),
        Conv(f"{name}.conv2", width, 3, stride, 1, bias=False), BatchNorm(f"{name}.bn2"), ReLU(),
        Conv(f"{name}.conv3", 4 * width, 1, bias=False), BatchNorm(f"{name}.bn3"),
    )  # fmt: skip
    shortcut: tuple[Layer, ...] = ()
    if project:
        shortcut = (Conv(f"{name}.downsample.0", 4 * width, 1, stride, bias=False), BatchNorm(f"{name}.downsample.1"))
    return Residual(body, shortcut), ReLU()


def resnet50() -> tuple[Layer, ...]:
    """ResNet-50 (He et al. 2015) in torchvision's layout and weight names, ending in a log-softmax (see
    stack.LogSoftmax: with it the workloads' mean loss is a cross-entropy, and batch norm's gradients are not
    cancelled)."""
    layers: list[Layer] = [Conv("conv1", 64, 7, 2, 3, bias=False), BatchNorm("bn1"), ReLU(), MaxPool(3, 2, 1)]
    for stage, (blocks, width, stride) in enumerate(((3, 64, 1), (4, 128, 2), (6, 256, 2), (3, 512, 2)), start=1):
        for block in range(blocks):
            layers.extend(_bottleneck(f"layer{stage}.{block}", width, stride if block == 0 else 1, block == 0))
    return (*layers, GlobalAvgPool(), Linear("fc", 1000), LogSoftmax())


def _sizes(batch: int, image: int) -> tuple[SizeParam, ...]:
    """An image network's size parameters, defaulting to its published input."""
    return SizeParam("batch", batch, "images per batch"), SizeParam("image", image, "image height = width")


class AlexNet(StackWorkload):
    name = "alexnet"
    description = "AlexNet (one weird trick), convnet-benchmarks' model: 5 conv + 3 linear layers, NCHW input"
    layers_fn = alexnet
    params = _sizes(128, 224)


class OverFeat(StackWorkload):
    name = "overfeat"
    description = "OverFeat fast, convnet-benchmarks' model: 5 conv + 3 linear layers, NCHW input"
    layers_fn = overfeat
    params = _sizes(128, 231)


class VGGA(StackWorkload):
    name = "vgga"
    description = "VGG configuration A, convnet-benchmarks' model: 8 conv3x3 + 3 linear layers, NCHW input"
    layers_fn = vgga
    params = _sizes(64, 224)


class GoogLeNet(StackWorkload):
    name = "googlenet"
    description = "GoogLeNet v1 without LRN, convnet-benchmarks' model: 9 inception modules, NCHW input"
    layers_fn = googlenet
    params = _sizes(128, 224)


class ResNet50(StackWorkload):
    name = "resnet50"
    description = "ResNet-50 (torchvision's layout), batch norm with batch statistics, log-softmax output, NCHW input"
    layers_fn = resnet50
    params = _sizes(64, 224)


CONVNETS: tuple[StackWorkload, ...] = (AlexNet(), OverFeat(), VGGA(), GoogLeNet(), ResNet50())


STACKS: tuple[StackWorkload, ...] = (*CONVNETS, TransformerBlock())  # every workload made of layer records

__all__ = ["CONVNETS", "STACKS", "StackWorkload", "alexnet", "googlenet", "overfeat", "resnet50", "vgga"]
