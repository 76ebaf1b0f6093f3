"""The backend registry: names → lazily imported classes, and availability checks that import nothing.

Adding a framework is one module under backends/ and one entry here.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass

from dlbench.core.errors import unknown


@dataclass(frozen=True)
class BackendInfo:
    name: str
    target: str  # "module:Class", imported only in a worker process
    label: str  # how tables name the framework
    requires: tuple[str, ...]  # top-level modules that must be importable
    install: str  # the command that makes it available
    seed_row: str | None = None  # the seed's framework this backend continues (Torch, TensorFlow, Theano)
    description: str = ""
    harness: bool = False  # not a framework: left out of default runs (the numpy reference)
    fork_safe: bool = True  # may serve cases from one process that imported the framework and forks
    # Installs only beside an old NumPy (`dlbench envs create NAME`): left out of default runs unless a managed env
    # of its name exists, instead of an `unsupported` row in every run.
    needs_env: bool = False

    def available(self) -> tuple[bool, str]:
        """(True, "") or (False, reason with the install command). Uses find_spec: never imports a framework."""
        for module in self.requires:
            if importlib.util.find_spec(module) is None:
                return False, f"{module} is not installed: {self.install}"
        return True, ""

    def load(self) -> type:
        module, _, cls = self.target.partition(":")
        return getattr(importlib.import_module(module), cls)  # type: ignore[no-any-return]


BACKENDS: dict[str, BackendInfo] = {
    info.name: info
    for info in (
        BackendInfo(
            "numpy", "dlbench.backends.numpy:NumpyBackend", "NumPy", ("numpy",), "pip install numpy",
            description="float64 reference (verify) and a harness backend that needs no framework", harness=True,
        ),
        BackendInfo(
            "torch", "dlbench.backends.torch:TorchBackend", "PyTorch", ("torch",), "pip install 'dlbench[torch]'",
            seed_row="Torch", description="PyTorch eager: nn.LSTM, nn.Conv2d; cuDNN with cudnn.benchmark on GPU",
        ),
        BackendInfo(
            "torch-compile", "dlbench.backends.torch:TorchCompileBackend", "PyTorch torch.compile", ("torch",),
            "pip install 'dlbench[torch]'", seed_row="Torch", description="the same modules through torch.compile",
        ),
        BackendInfo(
            "tensorflow", "dlbench.backends.tensorflow:TensorFlowBackend", "TensorFlow", ("tensorflow",),
            "pip install 'dlbench[tensorflow]'", seed_row="TensorFlow",
            description="TensorFlow 2: Keras layers inside tf.function",
        ),
        BackendInfo(
            "tensorflow-xla", "dlbench.backends.tensorflow:TensorFlowXLABackend", "TensorFlow XLA", ("tensorflow",),
            "pip install 'dlbench[tensorflow]'", seed_row="TensorFlow",
            description="the same tf.function with jit_compile=True (XLA)",
        ),
        BackendInfo(
            "jax", "dlbench.backends.jax:JaxBackend", "JAX", ("jax", "jaxlib"), "pip install 'dlbench[jax]'",
            description="jax.jit; LSTM with lax.scan, convs with lax.conv_general_dilated",
        ),
        BackendInfo(
            "pytensor", "dlbench.backends.pytensor:PyTensorBackend", "PyTensor", ("pytensor",),
            "pip install 'dlbench[pytensor]'", seed_row="Theano",
            description="Theano's maintained fork: scan LSTM, im2col VGG, C linker",
        ),
        BackendInfo(
            "pytensor-jax", "dlbench.backends.pytensor:PyTensorJaxBackend", "PyTensor JAX mode", ("pytensor", "jax"),
            "pip install 'dlbench[pytensor,jax]'", seed_row="Theano",
            description="the same PyTensor graphs compiled through PyTensor's JAX backend (runs on GPUs)",
        ),
        # Label == seed_row: tables call it "Theano 1.0.5", beside "Theano (PyTensor 3.x)".
        BackendInfo(
            "theano", "dlbench.backends.theano:TheanoBackend", "Theano", ("theano",),
            "dlbench envs create theano (then --env theano=theano)", seed_row="Theano", needs_env=True,
            description="the seed's Theano 1.0.5 (NumPy < 2, its own env): scan LSTM, nnet.conv2d + pool_2d VGG",
        ),
        BackendInfo(
            "aesara", "dlbench.backends.aesara:AesaraBackend", "Aesara", ("aesara",),
            "dlbench envs create aesara (then --env aesara=aesara)", seed_row="Theano", needs_env=True,
            description="Aesara 2.9.4, Theano's fork before PyTensor (NumPy < 2, its own env): Theano's graphs",
        ),
        BackendInfo(
            "keras-jax", "dlbench.backends.keras:KerasJaxBackend", "Keras 3 on JAX", ("keras", "jax"),
            "pip install 'dlbench[keras,jax]'", description="Keras 3 layers (LSTM, Conv2D) on the JAX backend",
        ),
        BackendInfo(
            "keras-torch", "dlbench.backends.keras:KerasTorchBackend", "Keras 3 on PyTorch", ("keras", "torch"),
            "pip install 'dlbench[keras,torch]'", description="Keras 3 layers (LSTM, Conv2D) on the PyTorch backend",
        ),
        BackendInfo(
            "keras-tensorflow", "dlbench.backends.keras:KerasTensorFlowBackend", "Keras 3 on TensorFlow",
            ("keras", "tensorflow"), "pip install 'dlbench[keras,tensorflow]'",
            description="Keras 3 layers (LSTM, Conv2D) on the TensorFlow backend",
        ),
    )
}  # fmt: skip


def framework_modules() -> list[str]:
    """Every top-level module some backend needs: whose versions a run's fingerprint records."""
    return sorted({module for info in BACKENDS.values() for module in info.requires})


def get_backend(name: str) -> BackendInfo:
    try:
        return BACKENDS[name]
    except KeyError:
        raise unknown("backend", name, BACKENDS) from None


__all__ = ["BACKENDS", "BackendInfo", "framework_modules", "get_backend"]
