"""The workload made of layer records (stack.py): its records at a size, and everything a workload knows derived
from them (weights, shapes, FLOPs). Its base case is an image network (convnets.py); the transformer block
(transformer.py) overrides the size and the input.
Worker-side module: NumPy and the standard library only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar

import numpy as np

from dlbench.core.errors import UsageError
from dlbench.workloads import stack
from dlbench.workloads.base import Workload
from dlbench.workloads.stack import BatchNorm, Layer, LayerNorm


class StackWorkload(Workload):
    """A workload made of stack layers: its records at a size (`layers_for`), and everything else derived from them.
    This base is an image network: size = batch and image (square), NCHW input with 3 channels; the transformer
    block (transformer.py) overrides the size and the input."""

    layers_fn: ClassVar[Callable[[], tuple[Layer, ...]]]
    channels: ClassVar[int] = 3

    @property
    def layers(self) -> tuple[Layer, ...]:
        return type(self).layers_fn()

    def layers_for(self, size: dict[str, int]) -> tuple[Layer, ...]:
        """The records every backend builds at this size (an image network's do not depend on it)."""
        return self.layers

    def size(self, given: dict[str, int] | None = None) -> dict[str, int]:
        size = super().size(given)
        try:
            stack.output_shape(self.layers, self._sample(size))
        except stack.ShapeError as exc:
            smallest = stack.smallest_image(self.layers, self.channels, size["image"])
            raise UsageError(f"bad size image={size['image']} for {self.name}: too small ({exc}); the smallest it "
                             f"takes is {smallest}") from None  # fmt: skip
        return size

    def _sample(self, size: dict[str, int]) -> tuple[int, ...]:
        return (self.channels, size["image"], size["image"])

    def weight_shapes(self, size: dict[str, int]) -> dict[str, tuple[int, ...]]:
        return stack.weight_shapes(self.layers_for(size), self._sample(size))

    def input_shapes(self, size: dict[str, int]) -> dict[str, tuple[int, ...]]:
        return {"x": (size["batch"], *self._sample(size))}

    def output_shape(self, size: dict[str, int]) -> tuple[int, ...]:
        return (size["batch"], *stack.output_shape(self.layers_for(size), self._sample(size)))

    def weight_scale(self, name: str, shape: tuple[int, ...]) -> float:
        if len(shape) == 1:
            return 0.01 if name.endswith(".bias") else 0.1  # a norm's weight is 1 + 0.1·N(0, 1): make_weights
        return math.sqrt(2.0 / math.prod(shape[1:]))  # He init: activations keep their scale through the ReLUs

    def make_weights(self, size: dict[str, int], seed: int = 0) -> dict[str, np.ndarray]:
        weights = super().make_weights(size, seed)
        for layer, _, _ in stack.walk(self.layers_for(size), self._sample(size)):
            if isinstance(layer, (BatchNorm, LayerNorm)):
                weights[f"{layer.name}.weight"] += np.float32(1.0)
        return weights

    def batchnorms(self, size: dict[str, int]) -> list[str]:
        """Names of its batch norms (a backend keeps batch statistics in both modes where there are any)."""
        return [layer.name for layer, _, _ in stack.walk(self.layers_for(size), self._sample(size))
                if isinstance(layer, BatchNorm)]  # fmt: skip

    def flops_per_sample(self, size: dict[str, int], mode: str) -> float:
        return stack.flops_per_sample(self.layers_for(size), self._sample(size), mode)


__all__ = ["StackWorkload"]
