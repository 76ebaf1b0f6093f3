"""The workload interface: a framework-neutral model spec that knows its shapes, FLOPs, weights and inputs.

Worker-side module: NumPy and the standard library only. Every backend builds its model from the arrays made
here, so every framework computes the same function.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from dlbench.core.errors import UsageError


@dataclass(frozen=True)
class SizeParam:
    name: str
    default: int
    help: str
    minimum: int = 1
    multiple_of: int = 1
    maximum: int = 2**24  # beyond it a value is a typo, not a size any device holds (and would overflow int32 shapes)


class Workload:
    """Base class. Subclasses set `name`, `params`, and implement the shape and generation methods.

    Conventions every backend follows:
    - weights and inputs are float32 arrays (exactly representable in fp32; the float64 reference upcasts them);
    - `loss = mean(final output)`; mode `train` computes the gradient of that loss w.r.t. every weight,
      with no optimizer step (the seed's "forward + backward").
    """

    name: ClassVar[str]
    description: ClassVar[str]
    params: ClassVar[tuple[SizeParam, ...]]

    def size(self, given: dict[str, int] | None = None) -> dict[str, int]:
        """Fill defaults and validate; raises UsageError naming the bad value and what is allowed."""
        given = dict(given or {})
        known = {p.name: p for p in self.params}
        for key in given:
            if key not in known:
                raise UsageError(
                    f"unknown size parameter {key!r} for workload {self.name!r} (allowed: {', '.join(known)})"
                )
        size: dict[str, int] = {}
        for p in self.params:
            value = given.get(p.name, p.default)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise UsageError(f"bad size {p.name}={value!r} for {self.name}: must be an integer")
            if not p.minimum <= value <= p.maximum or value % p.multiple_of:
                rule = f"an integer from {p.minimum} to {p.maximum}"
                if p.multiple_of > 1:
                    rule += f" and a multiple of {p.multiple_of}"
                raise UsageError(f"bad size {p.name}={value} for {self.name}: must be {rule}")
            size[p.name] = int(value)
        return size

    def batch(self, size: dict[str, int]) -> int:
        return int(size["batch"])

    def weight_shapes(self, size: dict[str, int]) -> dict[str, tuple[int, ...]]:
        raise NotImplementedError

    def input_shapes(self, size: dict[str, int]) -> dict[str, tuple[int, ...]]:
        raise NotImplementedError

    def output_shape(self, size: dict[str, int]) -> tuple[int, ...]:
        raise NotImplementedError

    def weight_scale(self, name: str, shape: tuple[int, ...]) -> float:
        raise NotImplementedError

    def flops_per_sample(self, size: dict[str, int], mode: str) -> float:
        """Matrix-multiply/convolution FLOPs (2 per multiply-add) per sample; `train` counts backward as 2×."""
        raise NotImplementedError

    # -- generation: deterministic from the seed, independent of any framework ------------------------------

    def make_weights(self, size: dict[str, int], seed: int = 0) -> dict[str, np.ndarray]:
        rng = np.random.default_rng([seed, 0])
        weights: dict[str, np.ndarray] = {}
        for name, shape in self.weight_shapes(size).items():
            scale = self.weight_scale(name, shape)
            weights[name] = (rng.standard_normal(shape, dtype=np.float32) * np.float32(scale)).astype(np.float32)
        return weights

    def make_inputs(self, size: dict[str, int], seed: int = 0) -> dict[str, np.ndarray]:
        rng = np.random.default_rng([seed, 1])
        return {
            name: rng.standard_normal(shape, dtype=np.float32) for name, shape in self.input_shapes(size).items()
        }
