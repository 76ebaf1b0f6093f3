"""PyTorch: eager (`torch`) and `torch.compile` (`torch-compile`), the seed's Torch today.

backend.py (nn.LSTM, nn.Sequential of nn.Conv2d; torch.compile over the same modules), helpers.py (device, memory,
settings, versions, error classification: shared with keras-torch), layers.py (torch.nn.functional, for probe),
usability.py (print/breakpoint under the step, TorchScript, torch.export, ONNX), peak.py (dlbench peak: a matrix
product per precision and an array copy).
"""

from __future__ import annotations

from dlbench.backends.registry import BackendInfo, Framework

_MODEL = {"lstm": ("_build_lstm",), "vgg16": ("_build_vgg16",)}

FRAMEWORK = Framework(
    name="torch", label="PyTorch", requires=("torch",), install="pip install 'dlbench[torch]'",
    backends=(
        BackendInfo("torch", "dlbench.backends.torch.backend:TorchBackend", "PyTorch", seed_row="Torch",
                    description="PyTorch eager: nn.LSTM, nn.Conv2d; cuDNN with cudnn.benchmark on GPU",
                    layers="eager", idiom="eager (the nn.Module is called)",
                    exports=("torch.export", "torchscript-trace", "torchscript-script", "torch.onnx"),
                    code_parts={**_MODEL, "step": ("TorchBackend.prepare",)}),
        BackendInfo("torch-compile", "dlbench.backends.torch.backend:TorchCompileBackend", "PyTorch torch.compile",
                    seed_row="Torch", description="the same modules through torch.compile",
                    layers="compile", recompiles=True, idiom="torch.compile (dynamo + inductor)",
                    code_parts={**_MODEL, "step": ("TorchBackend.prepare", "TorchCompileBackend.wrap")}),
    ),
    layers="dlbench.backends.torch.layers", usability="dlbench.backends.torch.usability",
    env_vars=("TORCHINDUCTOR_CACHE_DIR", "PYTORCH_CUDA_ALLOC_CONF"), bare="torch.py",
    peak="dlbench.backends.torch.peak",
)  # fmt: skip
