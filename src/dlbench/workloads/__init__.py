"""Workloads: framework-neutral model specs (pure NumPy). The registry maps names to instances."""

from __future__ import annotations

from dlbench.core.errors import unknown
from dlbench.workloads.base import SizeParam, Workload
from dlbench.workloads.convnets import STACKS, StackWorkload
from dlbench.workloads.lstm import LSTM
from dlbench.workloads.vgg16 import VGG16

WORKLOADS: dict[str, Workload] = {w.name: w for w in (LSTM(), VGG16(), *STACKS)}


def get_workload(name: str) -> Workload:
    try:
        return WORKLOADS[name]
    except KeyError:
        raise unknown("workload", name, WORKLOADS) from None


__all__ = ["WORKLOADS", "SizeParam", "StackWorkload", "Workload", "get_workload"]
