"""PyTensor's usability probes (pytensor, pytensor-jax): see dlbench.usability.worker. Worker-side only."""

from __future__ import annotations

import contextlib
import os
import pickle
from collections.abc import Callable
from typing import Any
from unittest import mock

# isort: off
from dlbench.backends.base import ExportCase
from dlbench.backends.pytensor import backend as module  # first: it sets PYTENSOR_FLAGS; the models patched here
import pytensor
import pytensor.tensor as pt

# isort: on


def instrument(workload: str, hook: Callable[[], None]) -> contextlib.AbstractContextManager[Any]:
    original = module._GRAPHS[workload]

    def graph(*args: Any) -> Any:
        hook()
        return original(*args)

    return mock.patch.dict(module._GRAPHS, {workload: graph})


def export(case: ExportCase, path: str, directory: str) -> dict[str, Any]:
    backend, workload, weights, inputs = case.backend, case.workload, case.weights, case.inputs
    if path != "pickle-function":
        raise ValueError(f"unknown export path {path!r}")
    sym = {k: pt.tensor(k, dtype="float32", shape=(None,) * v.ndim) for k, v in weights.items()}
    x = pt.tensor("x", dtype="float32", shape=(None,) * inputs["x"].ndim)
    function = pytensor.function([x, *sym.values()], module._GRAPHS[workload.name](x, sym), mode=backend.mode)
    args = [inputs["x"], *weights.values()]
    reference = function(*args)
    file = os.path.join(directory, "function.pkl")
    with open(file, "wb") as f:
        pickle.dump(function, f)
    with open(file, "rb") as f:
        loaded = pickle.load(f)  # noqa: S301 — our own file, just written
    return {
        "reference": reference,
        "reloaded": loaded(*args),
        "api": "pickle of the compiled pytensor.function (PyTensor has no model export format)",
    }
