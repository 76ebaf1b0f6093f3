"""Deliberately wrong variants of any backend, to prove that verification catches the classic mistakes.

Run as `python _wrong.py BACKEND CORRUPTION WORKLOAD` in a fresh process (frameworks stay out of pytest's own
process); prints the verification record as JSON.
  gate_order: the LSTM's i and f gates swapped, as a backend that mapped gates in the wrong order would;
  padding:    the image shifted one pixel down and right, which is what padding (2, 0) instead of (1, 1) does
              to the first convolution.
  branch_order: a layer stack's inception modules with their 3x3 and 5x5 branches swapped (the next layer sees
              its channels in another order), built by the backend from those records;
  no_residual: a layer stack's identity shortcuts left out (each such block is its body alone).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np

from dlbench.backends import BACKENDS
from dlbench.backends.base import Backend
from dlbench.core.cases import Case
from dlbench.runner.verification import DEFAULT_SIZES, verify_case
from dlbench.workloads import stack
from dlbench.workloads.convnets import StackWorkload


def _rewired(layers: tuple[stack.Layer, ...], corruption: str) -> tuple[stack.Layer, ...]:
    out: list[stack.Layer] = []
    for layer in layers:
        if isinstance(layer, stack.Concat) and corruption == "branch_order":
            b = layer.branches
            out.append(stack.Concat((b[0], b[2], b[1], *b[3:])))
        elif isinstance(layer, stack.Residual) and corruption == "no_residual" and not layer.shortcut:
            out.extend(layer.body)
        else:
            out.append(layer)
    return tuple(out)


def _corrupted(workload: StackWorkload, corruption: str) -> StackWorkload:
    """The same workload (name, sizes, weights) whose layer records are wrong."""
    layers = _rewired(workload.layers, corruption)
    assert layers != workload.layers, f"{corruption} changes nothing in {workload.name}"
    right = type(workload)()

    def layers_for(self: StackWorkload, size: dict[str, int]) -> tuple[stack.Layer, ...]:
        return _rewired(right.layers_for(size), corruption)  # a sized stack (the transformer's), wrong alike

    wrong = type(f"Wrong{type(workload).__name__}", (type(workload),),
                 {"layers_fn": staticmethod(lambda: layers), "layers_for": layers_for})  # fmt: skip
    return wrong()  # type: ignore[no-any-return]


class Wrong(Backend):
    def __init__(self, inner: Backend, corruption: str) -> None:
        super().__init__(inner.device)
        self.inner, self.corruption = inner, corruption

    def prepare(self, case: Case, workload: Any, weights: dict[str, np.ndarray], inputs: dict[str, np.ndarray]) -> Any:
        if self.corruption == "gate_order":
            h = workload.size(case.size)["hidden"]
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                w = weights[name].copy()
                w[:h], w[h : 2 * h] = weights[name][h : 2 * h], weights[name][:h]
                weights[name] = w
        elif self.corruption == "padding":
            x = np.zeros_like(inputs["x"])
            x[:, :, 1:, 1:] = inputs["x"][:, :, :-1, :-1]
            inputs = {"x": x}
        elif self.corruption in ("branch_order", "no_residual"):
            workload = _corrupted(workload, self.corruption)
        return self.inner.prepare(case, workload, weights, inputs)

    def synchronize(self, result: Any = None) -> None:
        self.inner.synchronize(result)

    def to_numpy(self, value: Any) -> np.ndarray:
        return self.inner.to_numpy(value)


def main() -> None:
    backend, corruption, workload = sys.argv[1:4]
    inner = BACKENDS[backend].load()("cpu", {})
    inner.configure(1)
    case = Case(workload, DEFAULT_SIZES[workload], backend, "fp32", "train")
    subject = inner if corruption == "none" else Wrong(inner, corruption)
    print(json.dumps(verify_case(case, subject), default=float))


if __name__ == "__main__":
    main()
