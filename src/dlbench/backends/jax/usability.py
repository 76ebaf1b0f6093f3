"""JAX's usability probes (jax): see dlbench.usability.worker. Worker-side only."""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable
from typing import Any
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np

from dlbench.backends.base import ExportCase, needs
from dlbench.backends.jax import backend as module  # the models the backend times, patched or exported here


def instrument(workload: str, hook: Callable[[], None]) -> contextlib.AbstractContextManager[Any]:
    def printing(function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            hook()
            return function(*args, **kwargs)

        return wrapper

    patches = contextlib.ExitStack()
    patches.enter_context(mock.patch.dict(module.MODELS, {workload: printing(module.MODELS[workload])}))
    if workload == "lstm":  # prepare() binds the module's `lstm` with its projection option
        patches.enter_context(mock.patch.object(module, "lstm", printing(module.lstm)))
    return patches


def export(case: ExportCase, path: str, directory: str) -> dict[str, Any]:
    workload, weights, inputs = case.workload, case.weights, case.inputs
    function = module.MODELS[workload.name]
    params = {k: jnp.asarray(v) for k, v in module.model_params(workload.name, weights).items()}  # its layouts
    x = jnp.asarray(inputs["x"])
    jitted = jax.jit(function)
    reference = np.asarray(jitted(params, x))
    if path == "jax.export":
        blob = jax.export.export(jitted)(params, x).serialize()
        file = os.path.join(directory, "model.jaxexport")
        with open(file, "wb") as f:
            f.write(blob)
        with open(file, "rb") as f:
            loaded = jax.export.deserialize(bytearray(f.read()))
        return {
            "reference": reference,
            "reloaded": np.asarray(loaded.call(params, x)),
            "api": "jax.export.export(...).serialize / jax.export.deserialize(...).call",
            "note": "the weights are arguments of the exported function: the artifact holds the computation only",
        }
    if path == "stablehlo-text":
        text = jitted.lower(params, x).as_text()
        with open(os.path.join(directory, "model.mlir"), "w") as f:
            f.write(text)
        ops = text.count("stablehlo.")
        if not ops:
            raise RuntimeError("lowered text holds no stablehlo operations")
        return {
            "reference": reference,
            "reloaded": None,
            "api": "jax.jit(f).lower(...).as_text()",
            "note": f"StableHLO MLIR text, {ops} stablehlo ops; a text artifact for other compilers, not re-run "
            "here (jax.export is the runnable path)",
        }
    if path == "jax2tf-saved_model":
        needs("tensorflow")
        import tensorflow as tf
        from jax.experimental import jax2tf

        holder = tf.Module()
        holder.serve = tf.function(
            jax2tf.convert(lambda x: function(params, x), with_gradient=False),
            input_signature=[tf.TensorSpec(x.shape, tf.float32)],
            autograph=False,
        )
        tf.saved_model.save(holder, os.path.join(directory, "saved_model"))
        loaded = tf.saved_model.load(os.path.join(directory, "saved_model"))
        return {
            "reference": reference,
            "reloaded": loaded.serve(np.asarray(x)).numpy(),
            "api": "jax.experimental.jax2tf.convert, tf.saved_model.save / load",
        }
    raise ValueError(f"unknown export path {path!r}")
