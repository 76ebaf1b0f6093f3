"""A transformer block as today's language models stack it (GPT-2/nanoGPT's pre-norm block): x + attention(LN(x)),
then + MLP(LN(·)) with a 4x GELU hidden layer, built from the layer records of stack.py like the CNNs, so every
backend that builds stacks builds it. Input (batch, seq_len, d_model) activations from the seeded generator; the
output has the same shape; the loss is its mean, like every workload's.
Worker-side module: NumPy and the standard library only.
"""

from __future__ import annotations

import math

from dlbench.core.errors import UsageError
from dlbench.workloads.base import SizeParam, Workload
from dlbench.workloads.stack import GELU, Layer, LayerNorm, Linear, Residual, SelfAttention
from dlbench.workloads.stacked import StackWorkload


def block(heads: int, d_model: int) -> tuple[Layer, ...]:
    return (
        Residual((LayerNorm("ln_1"), SelfAttention("attn", heads))),
        Residual((LayerNorm("ln_2"), Linear("mlp.fc", 4 * d_model), GELU(), Linear("mlp.proj", d_model))),
    )


class TransformerBlock(StackWorkload):
    name = "transformer"
    description = "a pre-norm transformer block (causal self-attention + 4x GELU MLP, layer norms), GPT-2 small's sizes"
    params = (
        SizeParam("batch", 8, "sequences per batch"),
        SizeParam("seq_len", 1024, "tokens per sequence"),
        SizeParam("d_model", 768, "features per token (a multiple of heads)"),
        SizeParam("heads", 12, "attention heads"),
    )

    @property
    def layers(self) -> tuple[Layer, ...]:
        return block(self.params[3].default, self.params[2].default)

    def layers_for(self, size: dict[str, int]) -> tuple[Layer, ...]:
        return block(size["heads"], size["d_model"])

    def size(self, given: dict[str, int] | None = None) -> dict[str, int]:
        size = Workload.size(self, given)
        if size["d_model"] % size["heads"]:
            raise UsageError(f"bad size d_model={size['d_model']} for transformer: must be a multiple of "
                             f"heads={size['heads']}")  # fmt: skip
        return size

    def _sample(self, size: dict[str, int]) -> tuple[int, ...]:
        return (size["seq_len"], size["d_model"])

    def weight_scale(self, name: str, shape: tuple[int, ...]) -> float:
        if len(shape) == 1:
            return 0.02 if name.endswith(".bias") else 0.1  # layer norm weight: 1 + 0.1·N(0, 1), see make_weights
        return 1.0 / math.sqrt(shape[1])  # no ReLU halves the variance here


__all__ = ["TransformerBlock", "block"]
