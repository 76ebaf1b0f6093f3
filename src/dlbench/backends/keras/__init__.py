"""Keras 3 on three engines: `keras-jax`, `keras-torch`, `keras-tensorflow`.

backend.py (the models, written once as a Keras user writes them, and the shared backend), stack.py (the CNNs
and the transformer block from their layer records, as functional models), engines.py (each engine's fast path and
autodiff, built on the jax, torch and tensorflow folders' helpers), layers.py (for probe), usability.py (.keras,
model.export to SavedModel and ONNX).
"""

from __future__ import annotations

from dlbench.backends.registry import BackendInfo, Framework

_EXPORTS = (".keras", "export-tf_saved_model", "export-onnx")


_MODELS = "dlbench.backends.keras.backend"  # the models and the shared step: code_parts outside engines.py
# The layer stacks share one builder, stack.py's (their layers are data: workloads/convnets.py, transformer.py).
_STACK = tuple(f"dlbench.backends.keras.stack:{name}"
               for name in ("build", "_Builder", "_keras_name", "_batch_statistics_class", "_attention_class",
                            "ToWorkload"))  # fmt: skip
_CNNS = ("alexnet", "overfeat", "vgga", "googlenet", "resnet50", "transformer")


def _keras(engine: str, label: str, requires: tuple[str, ...], idiom: str) -> BackendInfo:
    cls = {"jax": "Jax", "torch": "Torch", "tensorflow": "TensorFlow"}[engine]
    return BackendInfo(
        f"keras-{engine}", f"dlbench.backends.keras.engines:Keras{cls}Backend", label, requires=("keras", *requires),
        install=f"pip install 'dlbench[keras,{engine}]'",
        description=f"Keras 3 layers (LSTM, Conv2D) on the {label.removeprefix('Keras 3 on ')} backend",
        layers=engine, idiom=idiom, exports=_EXPORTS, options={"data_format": ("channels_last", "channels_first")},
        code_parts={"lstm": (f"{_MODELS}:_build_lstm",), "vgg16": (f"{_MODELS}:_build_vgg16",),
                    **dict.fromkeys(_CNNS, _STACK),
                    "step": (f"{_MODELS}:KerasBackend.prepare", f"{_MODELS}:KerasBackend.loss",
                             f"_Keras{cls}.compile_steps")},
    )  # fmt: skip


FRAMEWORK = Framework(
    name="keras", label="Keras 3", requires=("keras",), install="pip install 'dlbench[keras]'",
    backends=(
        _keras("jax", "Keras 3 on JAX", ("jax",), "jax.jit(model.stateless_call)"),
        _keras("torch", "Keras 3 on PyTorch", ("torch",), "eager (model(x))"),
        _keras("tensorflow", "Keras 3 on TensorFlow", ("tensorflow",), "tf.function(model(x))"),
    ),
    layers="dlbench.backends.keras.layers", usability="dlbench.backends.keras.usability",
    env_vars=("KERAS_BACKEND",), bare="keras.py",
)  # fmt: skip
