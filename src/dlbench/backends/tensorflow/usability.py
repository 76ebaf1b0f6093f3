"""TensorFlow's usability probes (tensorflow, tensorflow-xla): see dlbench.usability.worker. Worker-side only."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable
from typing import Any
from unittest import mock

import numpy as np
import tensorflow as tf

from dlbench.backends.base import ExportCase, needs
from dlbench.backends.tensorflow import backend as module  # the models the backend times, patched or exported here


def instrument(workload: str, hook: Callable[[], None]) -> contextlib.AbstractContextManager[Any]:
    original = module._BUILDERS[workload]

    def build(*args: Any) -> Any:
        model = original(*args)
        inner = model.forward

        def forward(x: Any) -> Any:
            hook()
            return inner(x)

        return dataclasses.replace(model, forward=forward)

    return mock.patch.dict(module._BUILDERS, {workload: build})


def _saved_model(model: Any, directory: str) -> str:
    holder = tf.Module()
    holder.weights = list(model.variables)  # tracked: saved with the function that reads them
    holder.serve = tf.function(model.forward, input_signature=[tf.TensorSpec(model.x.shape, tf.float32)])
    tf.saved_model.save(holder, directory)
    return directory


def export(case: ExportCase, path: str, directory: str) -> dict[str, Any]:
    workload, weights, inputs = case.workload, case.weights, case.inputs
    with tf.device("/CPU:0"):
        model = module._BUILDERS[workload.name](weights, inputs, tf.float32, False, False)
        reference = tf.function(model.forward)(model.x).numpy()
        if path == "saved_model":
            loaded = tf.saved_model.load(_saved_model(model, os.path.join(directory, "saved_model")))
            return {
                "reference": reference,
                "reloaded": loaded.serve(model.x).numpy(),
                "api": "tf.saved_model.save / tf.saved_model.load",
            }
        if path == "tflite":
            converter = tf.lite.TFLiteConverter.from_saved_model(_saved_model(model, os.path.join(directory, "sm")))
            flatbuffer = converter.convert()
            with open(os.path.join(directory, "model.tflite"), "wb") as f:
                f.write(flatbuffer)
            interpreter = tf.lite.Interpreter(model_content=flatbuffer)
            interpreter.allocate_tensors()
            interpreter.set_tensor(interpreter.get_input_details()[0]["index"], np.asarray(model.x))
            interpreter.invoke()
            reloaded = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
            return {
                "reference": reference,
                "reloaded": reloaded,
                "api": "tf.lite.TFLiteConverter.from_saved_model, tf.lite.Interpreter",
            }
        if path == "tf2onnx":
            needs("tf2onnx", "onnxruntime")
            raise NotImplementedError("tf2onnx is installed but this probe does not drive it yet")
    raise ValueError(f"unknown export path {path!r}")
