"""JAX: `jax`, jax.jit over lax.scan and lax.conv_general_dilated.

backend.py (the models and the backend), stack.py (the layer-stack workloads from their records: one pure
function over lax.conv_general_dilated, NHWC), helpers.py (jit's stages timed one by one, the persistent compilation
cache, devices, memory, what XLA computes in: shared with keras-jax and pytensor-jax), layers.py (for probe),
usability.py (jax.export, StableHLO, jax2tf), peak.py (dlbench peak).
"""

from __future__ import annotations

from dlbench.backends.registry import BackendInfo, Framework

LSTM_PROJECTIONS = ("auto", "hoisted", "per_step")  # the jax backend's `lstm_projection` option (backend.py: why)
# The layer stacks share one builder, stack.py's (their layers are data: workloads/convnets.py, transformer.py).
_STACK = tuple(
    f"dlbench.backends.jax.stack:{name}"
    for name in ("build", "Built", "Layout", "_layouts", "_followed_by_linear", "apply", "_normalize", "_attention")
)
_STACKS = ("alexnet", "overfeat", "vgga", "googlenet", "resnet50", "transformer")

FRAMEWORK = Framework(
    name="jax", label="JAX", requires=("jax", "jaxlib"), install="pip install 'dlbench[jax]'",
    backends=(
        BackendInfo("jax", "dlbench.backends.jax.backend:JaxBackend", "JAX",
                    description="jax.jit; LSTM with lax.scan, convs with lax.conv_general_dilated",
                    layers="jit", idiom="jax.jit", exports=("jax.export", "stablehlo-text", "jax2tf-saved_model"),
                    options={"lstm_projection": LSTM_PROJECTIONS},
                    code_parts={"lstm": ("lstm", "model_params"), "vgg16": ("vgg16_body",),
                                **dict.fromkeys(_STACKS, _STACK), "step": ("JaxBackend.prepare",)}),
    ),
    layers="dlbench.backends.jax.layers", usability="dlbench.backends.jax.usability",
    env_vars=("XLA_FLAGS", "XLA_PYTHON_CLIENT_PREALLOCATE", "XLA_PYTHON_CLIENT_MEM_FRACTION",
              "XLA_PYTHON_CLIENT_ALLOCATOR", "JAX_PLATFORMS"),
    bare="jax.py", peak="dlbench.backends.jax.peak",
)  # fmt: skip
