"""PyTensor, Theano's maintained fork: `pytensor` (the C VM linker) and `pytensor-jax` (the same graphs in JAX mode).

backend.py (scan LSTM from the Theano family's graphs, im2col VGG-16, compile phases, BLAS), stack.py (the CNNs and
the transformer block from their layer records: im2col for any kernel, stride and padding; attention with
pt.matmul), layers.py (for probe), usability.py (the pickled compiled function).
"""

from __future__ import annotations

from dlbench.backends.registry import BackendInfo, Framework

# The layer stacks share one builder, stack.py's (their layers are data: workloads/convnets.py, transformer.py).
_STACK = tuple(
    f"dlbench.backends.pytensor.stack:{name}"
    for name in ("build", "_layers", "_conv", "_max_pool", "_batchnorm", "_padded", "_windows", "_out", "_linear",
                 "_layernorm", "_gelu", "_attention")
)
_CNNS = ("alexnet", "overfeat", "vgga", "googlenet", "resnet50", "transformer")
_MODEL = {"lstm": ("_lstm",), "vgg16": ("_vgg16", "_conv3x3_relu", "_max_pool"), **dict.fromkeys(_CNNS, _STACK)}

FRAMEWORK = Framework(
    name="pytensor", label="PyTensor", requires=("pytensor",), install="pip install 'dlbench[pytensor]'",
    backends=(
        BackendInfo("pytensor", "dlbench.backends.pytensor.backend:PyTensorBackend", "PyTensor", seed_row="Theano",
                    description="Theano's maintained fork: scan LSTM, im2col VGG, C linker",
                    layers="CVM", idiom="pytensor.function (C VM linker)", exports=("pickle-function",),
                    code_parts={**_MODEL, "step": ("PyTensorBackend.prepare",)}),
        BackendInfo("pytensor-jax", "dlbench.backends.pytensor.backend:PyTensorJaxBackend", "PyTensor JAX mode",
                    requires=("pytensor", "jax"), install="pip install 'dlbench[pytensor,jax]'", seed_row="Theano",
                    description="the same PyTensor graphs compiled through PyTensor's JAX backend (runs on GPUs)",
                    layers="JAX", recompiles=True, idiom="pytensor.function (JAX linker: jax.jit)",
                    code_parts={**_MODEL, "step": ("PyTensorBackend.prepare", "PyTensorJaxBackend.to_device")}),
    ),
    layers="dlbench.backends.pytensor.layers", usability="dlbench.backends.pytensor.usability",
    env_vars=("PYTENSOR_FLAGS",), bare="pytensor.py",
)  # fmt: skip
