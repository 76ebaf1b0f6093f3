"""PyTorch's usability probes (torch, torch-compile): see dlbench.usability.worker. Worker-side only."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import Any
from unittest import mock

import torch
from torch import nn

from dlbench.backends.base import ExportCase, NotProbed, needs
from dlbench.backends.torch import backend as module  # the models the backend times, patched or exported here


class _Printing(nn.Module):
    """The model with a plain Python call (the probe's print) at the top of its forward."""

    def __init__(self, inner: nn.Module, hook: Callable[[], None]) -> None:
        super().__init__()
        self.inner, self.hook = inner, hook

    def forward(self, x: Any) -> Any:
        self.hook()
        return self.inner(x)


def instrument(workload: str, hook: Callable[[], None]) -> contextlib.AbstractContextManager[Any]:
    original = module._BUILDERS[workload]

    def build(size: dict[str, int]) -> Any:
        model, names, call = original(size)
        return _Printing(model, hook), {k: f"inner.{v}" for k, v in names.items()}, call

    return mock.patch.dict(module._BUILDERS, {workload: build})


def export(case: ExportCase, path: str, directory: str) -> dict[str, Any]:
    workload, size, weights, inputs = case.workload, case.size, case.weights, case.inputs
    model, names, call = module._BUILDERS[workload.name](size)
    model.load_state_dict({names[k]: torch.from_numpy(v) for k, v in weights.items()}, strict=True)
    model.eval()
    x = torch.from_numpy(inputs["x"]).clone()
    with torch.no_grad():
        reference = call(model, x).numpy()
    if path == "torch.export":
        program = torch.export.export(model, (x,))
        file = os.path.join(directory, "model.pt2")
        torch.export.save(program, file)
        loaded: Any = torch.export.load(file).module()
        api = "torch.export.export, torch.export.save / torch.export.load(...).module()"
    elif path in ("torchscript-trace", "torchscript-script"):
        scripted = torch.jit.trace(model, (x,)) if path == "torchscript-trace" else torch.jit.script(model)
        file = os.path.join(directory, "model.ts")
        torch.jit.save(scripted, file)
        loaded = torch.jit.load(file)
        api = f"torch.jit.{path.split('-')[1]}, torch.jit.save / torch.jit.load"
    elif path == "torch.onnx":
        needs("onnx", "onnxscript")  # torch.onnx.export's exporter (dynamo=True, torch's default) needs both
        file = os.path.join(directory, "model.onnx")
        torch.onnx.export(model, (x,), file, dynamo=True)
        try:
            needs("onnxruntime")
        except NotProbed as exc:
            return {"reference": reference, "reloaded": None, "api": "torch.onnx.export", "note": str(exc)}
        import onnxruntime

        session = onnxruntime.InferenceSession(file)
        got = session.run(None, {session.get_inputs()[0].name: inputs["x"]})[0]
        return {"reference": reference, "reloaded": got, "api": "torch.onnx.export, onnxruntime"}
    else:
        raise ValueError(f"unknown export path {path!r}")
    with torch.no_grad():
        reloaded = call(loaded, x).numpy()
    return {"reference": reference, "reloaded": reloaded, "api": api}
