"""Precisions: the numeric type that parameters and activations are stored and computed in.

Worker-side module: standard library only.
"""

from __future__ import annotations

# Pure precisions: parameters and inputs in that type, as in the seed's fp16 table.
# (`amp-fp16`, `amp-bf16` and `tf32` are named in DESIGN.md and will join this tuple when a backend does them.)
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "bf16")

# Relative-error tolerances (‖out − ref‖/‖ref‖) of a backend against the float64 reference, for the forward
# output and for each parameter gradient. fp32 is held to 1e-5 everywhere: that is the proof of the same math.
# Half-precision gradients get a wider bound, for a measured reason: rounding flips some max-pool argmax and
# ReLU decisions, which reroutes gradient through VGG-16's 13 layers. NumPy itself in float16 lands at 6.9e-2
# on conv1_1.weight (batch 2, 32×32), 5.6e-2 even against a reference built from the fp16-rounded weights and
# inputs; PyTorch bf16 lands at 1.7e-1. Forward outputs in half precision stay near 1e-3.
FORWARD_TOLERANCE: dict[str, float] = {"fp32": 1e-5, "fp16": 1e-2, "bf16": 3e-2}
GRADIENT_TOLERANCE: dict[str, float] = {"fp32": 1e-5, "fp16": 1e-1, "bf16": 3e-1}
