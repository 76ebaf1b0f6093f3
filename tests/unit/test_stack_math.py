"""The layer stack's NumPy math (workloads/stack_math.py) against finite differences, layer kind by layer kind:
the float64 reference every framework's CNN is verified against is only as good as these gradients."""

from __future__ import annotations

import numpy as np
import pytest

from dlbench.workloads import stack, stack_math
from dlbench.workloads.stack import (
    GELU,
    BatchNorm,
    Concat,
    Conv,
    Flatten,
    GlobalAvgPool,
    LayerNorm,
    Linear,
    LogSoftmax,
    MaxPool,
    ReLU,
    Residual,
    SelfAttention,
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
    "transformer-block": (Residual((LayerNorm("ln1"), SelfAttention("attn", 2))),
                          Residual((LayerNorm("ln2"), Linear("fc", 12), GELU(), Linear("proj", 6)))),
    "non-causal-attention": (SelfAttention("attn", 3, causal=False), Linear("out", 2)),
}  # fmt: skip
SAMPLES = {"transformer-block": (5, 6), "non-causal-attention": (5, 6)}  # (seq, d); the others (3, 8, 8) images


def _arrays(layers: tuple[stack.Layer, ...], rng: np.random.Generator,
            sample: tuple[int, ...] = (3, 8, 8)) -> tuple[dict[str, np.ndarray], np.ndarray]:  # fmt: skip
    shapes = stack.weight_shapes(layers, sample)
    weights = {name: rng.standard_normal(shape) * (0.5 if len(shape) > 1 else 0.3) for name, shape in shapes.items()}
    for name in weights:
        if name.endswith(".weight") and weights[name].ndim == 1:
            weights[name] += 1.0
    return weights, rng.standard_normal((2, *sample))


@pytest.mark.parametrize("net", list(NETS))
def test_gradients_agree_with_finite_differences(net: str) -> None:
    layers = NETS[net]
    rng = np.random.default_rng(5)
    sample = SAMPLES.get(net, (3, 8, 8))
    weights, x = _arrays(layers, rng, sample)
    out, grads = stack_math.loss_and_grads(layers, weights, x)
    assert out.shape == (2, *stack.output_shape(layers, sample))
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


def test_causal_attention_lets_no_position_see_the_ones_after_it() -> None:
    layers = NETS["transformer-block"]
    weights, x = _arrays(layers, np.random.default_rng(2), (5, 6))
    later = x.copy()
    later[:, 3:] += 1.0  # change positions 3 and 4 only
    before, after = stack_math.output(layers, weights, x), stack_math.output(layers, weights, later)
    assert np.allclose(before[:, :3], after[:, :3]) and not np.allclose(before[:, 3:], after[:, 3:])
