"""Keras 3's usability probes (keras-jax, keras-torch, keras-tensorflow): see dlbench.usability.worker.
Worker-side only; Keras is already imported on the backend's engine (backend.keras)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import Any
from unittest import mock

import numpy as np

from dlbench.backends.base import ExportCase, NotProbed, needs
from dlbench.backends.keras import backend as module  # the models the backend times, patched or exported here


def instrument(workload: str, hook: Callable[[], None]) -> contextlib.AbstractContextManager[Any]:
    name = f"_build_{workload}"
    original = getattr(module, name)

    def build(keras: Any, size: dict[str, int], weights: dict[str, Any], dtype: str, *rest: Any) -> Any:
        model, names, layouts = original(keras, size, weights, dtype, *rest)

        class Printing(keras.layers.Layer):  # a custom layer: where a Keras user puts a print
            def call(self, x: Any) -> Any:
                hook()
                return x

        layers = [keras.Input(model.input_shape[1:], dtype=dtype), Printing(dtype=dtype), *model.layers]
        return keras.Sequential(layers, name=model.name), names, layouts

    return mock.patch.object(module, name, build)


def export(case: ExportCase, path: str, directory: str) -> dict[str, Any]:
    backend, workload, size, weights, inputs = case.backend, case.workload, case.size, case.weights, case.inputs
    keras = backend.keras
    if workload.name == "lstm":
        model, _, _ = module._build_lstm(keras, size, weights, "float32")
        x = np.ascontiguousarray(inputs["x"].transpose(1, 0, 2))  # Keras is batch-major
    else:
        model, _, _ = module._build_vgg16(keras, size, weights, "float32", "channels_last")
        x = np.ascontiguousarray(inputs["x"].transpose(0, 2, 3, 1))  # NHWC, Keras' default
    reference = keras.ops.convert_to_numpy(model(x, training=False))
    if path == ".keras":
        file = os.path.join(directory, "model.keras")
        model.save(file)
        loaded = keras.saving.load_model(file)
        return {
            "reference": reference,
            "reloaded": keras.ops.convert_to_numpy(loaded(x, training=False)),
            "api": "model.save('model.keras') / keras.saving.load_model",
        }
    if path == "export-tf_saved_model":
        needs("tensorflow")
        target = os.path.join(directory, "saved_model")
        model.export(target, format="tf_saved_model", verbose=False)
        import tensorflow as tf

        loaded = tf.saved_model.load(target)
        return {
            "reference": reference,
            "reloaded": np.asarray(loaded.serve(x)),
            "api": "model.export(format='tf_saved_model'), tf.saved_model.load(...).serve",
        }
    if path == "export-onnx":
        needs("onnx")
        target = os.path.join(directory, "model.onnx")
        model.export(target, format="onnx", verbose=False)
        try:
            needs("onnxruntime")
        except NotProbed as exc:
            return {"reference": reference, "reloaded": None, "api": "model.export(format='onnx')", "note": str(exc)}
        import onnxruntime

        session = onnxruntime.InferenceSession(target)
        got = session.run(None, {session.get_inputs()[0].name: x})[0]
        return {"reference": reference, "reloaded": got, "api": "model.export(format='onnx'), onnxruntime"}
    raise ValueError(f"unknown export path {path!r}")
