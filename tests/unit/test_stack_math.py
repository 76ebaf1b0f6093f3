"""The layer stack's NumPy math (workloads/stack_math.py) against finite differences, layer kind by layer kind:
the float64 reference every framework's CNN is verified against is only as good as these gradients."""

from __future__ import annotations

import numpy as np
import pytest

from dlbench.workloads import stack, stack_math
from dlbench.workloads.stack import (
    BatchNorm,
    Concat,
    Conv,
    Flatten,
    GlobalAvgPool,
    Linear,
    LogSoftmax,
    MaxPool,
    ReLU,
    Residual,
)

NETS = {
    "conv-stride-pad-pool-linear": (Conv("c1", 4, 5, 2, 2), ReLU(), MaxPool(3, 2, 1), Conv("c2", 3, 3, 1, 1),
                                    ReLU(), Flatten(), Linear("fc", 5)),
    "inception": (Conv("c1", 4, 3, 1, 1), ReLU(),
                  Concat(((Conv("a", 2, 1), ReLU()), (Conv("b", 3, 3, 1, 1),), (MaxPool(3, 1, 1), Conv("p", 2, 1)))),
                  GlobalAvgPool(), Linear("fc", 3)),
    "residual-batchnorm": (Conv("c1", 4, 3, 1, 1, bias=False), BatchNorm("bn1"), ReLU(),
                           Residual((Conv("r1", 4, 3, 1, 1, bias=False), BatchNorm("rb1"), ReLU(),
                                     Conv("r2", 6, 1, 2, bias=False), BatchNorm("rb2")),
                                    (Conv("d", 6, 1, 2, bias=False), BatchNorm("db"))),
                           ReLU(), Residual((Conv("r3", 6, 3, 1, 1), ReLU())), GlobalAvgPool(), Linear("fc", 4),
                           LogSoftmax()),
}  # fmt: skip


def _arrays(layers: tuple[stack.Layer, ...], rng: np.random.Generator) -> tuple[dict[str, np.ndarray], np.ndarray]:
    shapes = stack.weight_shapes(layers, (3, 8, 8))
    weights = {name: rng.standard_normal(shape) * (0.5 if len(shape) > 1 else 0.3) for name, shape in shapes.items()}
    for name in weights:
        if name.endswith(".weight") and weights[name].ndim == 1:
            weights[name] += 1.0
    return weights, rng.standard_normal((2, 3, 8, 8))


@pytest.mark.parametrize("net", list(NETS))
def test_gradients_agree_with_finite_differences(net: str) -> None:
    layers = NETS[net]
    rng = np.random.default_rng(5)
    weights, x = _arrays(layers, rng)
    out, grads = stack_math.loss_and_grads(layers, weights, x)
    assert out.shape == (2, *stack.output_shape(layers, (3, 8, 8)))
    assert set(grads) == set(weights)

    def loss(w: dict[str, np.ndarray]) -> float:
        return float(stack_math.output(layers, w, x).mean())

    eps = 1e-6
    for name, value in weights.items():
        for index in list(np.ndindex(value.shape))[:: max(1, value.size // 7)]:
            plus, minus = dict(weights), dict(weights)
            plus[name], minus[name] = value.copy(), value.copy()
            plus[name][index] += eps
            minus[name][index] -= eps
            numeric = (loss(plus) - loss(minus)) / (2 * eps)
            assert grads[name][index] == pytest.approx(numeric, rel=1e-4, abs=1e-8), (name, index)


def test_stack_records_compare_by_value_and_a_dropped_shortcut_changes_the_output() -> None:
    layers = NETS["residual-batchnorm"]
    assert layers == NETS["residual-batchnorm"] and hash(layers) == hash(NETS["residual-batchnorm"])
    weights, x = _arrays(layers, np.random.default_rng(1))
    no_skip = tuple(layer.body[0] if isinstance(layer, Residual) and not layer.shortcut else layer for layer in layers)
    assert not np.allclose(stack_math.output(no_skip, weights, x), stack_math.output(layers, weights, x))
