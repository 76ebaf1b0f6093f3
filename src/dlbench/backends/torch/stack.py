"""A layer stack (dlbench.workloads.stack) as PyTorch modules: `nn.Conv2d`, `nn.ReLU(inplace=True)`, `nn.MaxPool2d`,
`nn.BatchNorm2d`, `nn.Linear` in an `nn.Sequential`, an inception module as a module that concatenates its
branches, a residual block as one that adds its shortcut, as torchvision writes them; `nn.LayerNorm`,
`nn.GELU(approximate="tanh")` and nanoGPT's causal self-attention for the transformer block. The weights are already in
PyTorch's layouts; `names` maps each workload weight name to the module's parameter name.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dlbench.workloads import stack


class Inception(nn.Module):
    def __init__(self, branches: list[nn.Module]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches], dim=1)


class CausalSelfAttention(nn.Module):
    """nanoGPT's: one Linear to q, k, v, F.scaled_dot_product_attention (the fused kernel PyTorch picks: flash or
    memory-efficient attention on CUDA), one Linear out."""

    def __init__(self, d: int, heads: int, causal: bool) -> None:
        super().__init__()
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.heads, self.causal = heads, causal

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, seq, d = x.shape
        q, k, v = (t.view(n, seq, self.heads, d // self.heads).transpose(1, 2) for t in self.qkv(x).split(d, dim=2))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        return self.proj(y.transpose(1, 2).reshape(n, seq, d))


class Residual(nn.Module):
    def __init__(self, body: nn.Module, shortcut: nn.Module) -> None:
        super().__init__()
        self.body, self.shortcut = body, shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


def _sequential(layers: tuple[stack.Layer, ...], channels: int, named: dict[str, nn.Module],
                widths: dict[str, int]) -> tuple[nn.Module, int]:  # fmt: skip
    """`channels`: the input's channels (an image) or features (a sequence: its last axis)."""
    modules: list[nn.Module] = []
    for layer in layers:
        match layer:
            case stack.Conv(name, out, kernel, stride, pad, bias):
                modules.append(conv := nn.Conv2d(channels, out, kernel, stride, pad, bias=bias))
                named[name], channels = conv, out
            case stack.ReLU():
                modules.append(nn.ReLU(inplace=True))
            case stack.MaxPool(kernel, stride, pad):
                modules.append(nn.MaxPool2d(kernel, stride, pad))
            case stack.GlobalAvgPool():
                modules.extend([nn.AdaptiveAvgPool2d(1), nn.Flatten()])
            case stack.Flatten():
                modules.append(nn.Flatten())
            case stack.Linear(name, out):
                modules.append(linear := nn.Linear(widths[name], out))
                named[name], channels = linear, out
            case stack.BatchNorm(name):
                modules.append(bn := nn.BatchNorm2d(channels))
                named[name] = bn
            case stack.LayerNorm(name):
                modules.append(norm := nn.LayerNorm(channels, eps=stack.BN_EPS))
                named[name] = norm
            case stack.GELU():
                modules.append(nn.GELU(approximate="tanh"))
            case stack.SelfAttention(name, heads, causal):
                modules.append(attention := CausalSelfAttention(channels, heads, causal))
                named[f"{name}.qkv"], named[f"{name}.proj"] = attention.qkv, attention.proj
            case stack.LogSoftmax():
                modules.append(nn.LogSoftmax(dim=-1))
            case stack.Concat(branches):
                built = [_sequential(branch, channels, named, widths) for branch in branches]
                modules.append(Inception([module for module, _ in built]))
                channels = sum(width for _, width in built)
            case stack.Residual(body, shortcut):
                body_module, channels_out = _sequential(body, channels, named, widths)
                short = _sequential(shortcut, channels, named, widths)[0] if shortcut else nn.Identity()
                modules.append(Residual(body_module, short))
                channels = channels_out
    return nn.Sequential(*modules), channels


def build(layers: tuple[stack.Layer, ...], input_shape: tuple[int, ...]) -> tuple[nn.Module, dict[str, str]]:
    """The model, and {workload weight name: its parameter's name in model.named_parameters()}."""
    named: dict[str, nn.Module] = {}
    widths = {layer.name: inp[-1] for layer, inp, _ in stack.walk(layers, input_shape[1:])
              if isinstance(layer, stack.Linear)}  # fmt: skip
    model, _ = _sequential(layers, input_shape[1] if len(input_shape) == 4 else input_shape[-1], named, widths)
    module_names = {id(module): path for path, module in model.named_modules()}
    names: dict[str, str] = {}
    for name, module in named.items():
        for kind in ("weight", "bias"):
            if getattr(module, kind, None) is not None:
                names[f"{name}.{kind}"] = f"{module_names[id(module)]}.{kind}"
    return model, names


def call(model: nn.Module, x: Any) -> Any:
    return model(x)


__all__ = ["build", "call"]
