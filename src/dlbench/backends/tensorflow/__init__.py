"""TensorFlow 2: tf.function (`tensorflow`) and the same functions compiled by XLA (`tensorflow-xla`), the seed's
TensorFlow today.

backend.py (tf ops on tf.Variables in tf.function), stack.py (the CNNs and the transformer block from their layer
records, the same ops), helpers.py (threads, device, memory, versions, error classification and TF's graph errors:
shared with keras-tensorflow), layers.py (for probe), usability.py (SavedModel, TFLite, tf2onnx).
"""

from __future__ import annotations

from dlbench.backends.registry import BackendInfo, Framework

# The layer stacks share one builder, stack.py's (their layers are data: workloads/convnets.py, transformer.py).
_STACK = ("_build_stack", *(
    f"dlbench.backends.tensorflow.stack:{name}"
    for name in ("build", "Built", "FlatRows", "_layouts", "_followed_by_linear", "_to_tf", "apply", "_batch_norm",
                 "_layer_norm", "_attention")
))  # fmt: skip
_CNNS = ("alexnet", "overfeat", "vgga", "googlenet", "resnet50", "transformer")
_PARTS = {"lstm": ("_lstm", "_build_lstm"), "vgg16": ("_build_vgg16",), **dict.fromkeys(_CNNS, _STACK),
          "step": ("TensorFlowBackend.prepare",)}  # fmt: skip

FRAMEWORK = Framework(
    name="tensorflow", label="TensorFlow", requires=("tensorflow",), install="pip install 'dlbench[tensorflow]'",
    backends=(
        BackendInfo("tensorflow", "dlbench.backends.tensorflow.backend:TensorFlowBackend", "TensorFlow",
                    seed_row="TensorFlow", description="TensorFlow 2: Keras layers inside tf.function",
                    layers="function", idiom="tf.function (graph)", exports=("saved_model", "tflite", "tf2onnx"),
                    code_parts=_PARTS),
        BackendInfo("tensorflow-xla", "dlbench.backends.tensorflow.backend:TensorFlowXLABackend", "TensorFlow XLA",
                    seed_row="TensorFlow", description="the same tf.function with jit_compile=True (XLA)",
                    layers="xla", recompiles=True, idiom="tf.function(jit_compile=True) (XLA)", code_parts=_PARTS),
    ),
    layers="dlbench.backends.tensorflow.layers", usability="dlbench.backends.tensorflow.usability",
    env_vars=("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS", "TF_XLA_FLAGS", "XLA_FLAGS"), bare="tensorflow.py",
)  # fmt: skip
