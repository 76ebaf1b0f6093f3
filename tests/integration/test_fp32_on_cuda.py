"""fp32 means fp32 on CUDA, in every backend (issue 13): torch, TensorFlow and XLA run fp32 matmuls and
convolutions in TF32 by default on Ampere and later GPUs, which would fail the 1e-5 verification or, worse, pass a
looser one. Each framework's helpers turn it off (`full_fp32`) through the API of the installed version, and every
backend of that framework calls them when its device is a GPU; the settings record what is in force.

No GPU here: each check runs in a fresh interpreter (Keras picks its engine at import) in which the framework's
device lookup is made to answer "a GPU", then reads the framework's own switches back."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

BACKENDS = Path(__file__).resolve().parents[2] / "src" / "dlbench" / "backends"

# Per backend: how its device lookup is made to say "GPU", then what to read back.
PRETEND = {
    "torch": ("from dlbench.backends.torch import helpers; helpers.check_device = lambda d, b: None\n"
              "import torch; torch.cuda.is_available = lambda: True", "torch"),
    "keras-torch": ("from dlbench.backends.torch import helpers; helpers.check_device = lambda d, b: None", "torch"),
    "keras-jax": ("from dlbench.backends.jax import helpers; helpers.device = lambda d, b: FakeGpu()", "jax"),
    "pytensor-jax": ("from dlbench.backends.jax import helpers; helpers.device = lambda d, b: FakeGpu()", "jax"),
    "keras-tensorflow": ("from dlbench.backends.tensorflow import helpers\n"
                         "helpers.device_name = lambda d, b: '/GPU:0'", "tensorflow"),
}  # fmt: skip

READ = {
    "torch": "from dlbench.backends.torch import helpers as h; import torch\n"
             "found = {**h.tf32_settings(), 'cudnn.benchmark': torch.backends.cudnn.benchmark}",
    "jax": "import jax; found = {'jax_default_matmul_precision': jax.config.jax_default_matmul_precision}",
    "tensorflow": "import tensorflow as tf\n"
                  "found = {'tensor_float_32_execution': tf.config.experimental.tensor_float_32_execution_enabled()}",
}

SCRIPT = """
import json
class FakeGpu:
    platform = "gpu"
{pretend}
from dlbench.backends import get_backend
backend = get_backend({name!r}).load()("cuda")
{check}
{read}
print(json.dumps(found))
"""


def _run(name: str) -> dict[str, object]:
    pretend, framework = PRETEND[name]
    # The torch backend checks its device in _torch_device (called by prepare); the others in their check hook.
    check = "backend._torch_device()" if name == "torch" else (
        "backend._check_device()" if name == "pytensor-jax" else "backend.check_device()")  # fmt: skip
    code = SCRIPT.format(pretend=pretend, name=name, check=check, read=READ[framework])
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    if done.returncode != 0 and "No module named" in done.stderr:
        pytest.skip(f"{name}: its framework is not installed here")
    assert done.returncode == 0, done.stderr[-2000:]
    found: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


@pytest.mark.parametrize("name", ["torch", "keras-torch"])
def test_torch_backends_turn_tf32_off_and_cudnn_autotune_on(name: str) -> None:
    found = _run(name)
    assert found.pop("cudnn.benchmark") is True
    if "cuda.matmul.fp32_precision" in found:  # torch 2.9 and later: the fp32_precision API
        assert set(found.values()) == {"ieee"}, found
    else:
        assert found == {"cuda.matmul.allow_tf32": False, "cudnn.allow_tf32": False}


@pytest.mark.parametrize("name", ["keras-jax", "pytensor-jax"])
def test_jax_backends_ask_xla_for_full_fp32(name: str) -> None:
    assert _run(name) == {"jax_default_matmul_precision": "highest"}


def test_keras_tensorflow_turns_tf32_off() -> None:
    assert _run("keras-tensorflow") == {"tensor_float_32_execution": False}


def test_only_the_helpers_touch_the_tf32_switches() -> None:
    """One place per framework sets them, so a new backend of that framework gets them by calling full_fp32."""
    switch = re.compile(r"allow_tf32\s*=|fp32_precision\s*=|enable_tensor_float_32_execution\(|"
                        r"jax_default_matmul_precision\",\s*\"")  # fmt: skip
    offenders = [str(path.relative_to(BACKENDS)) for path in BACKENDS.rglob("*.py")
                 if path.name != "helpers.py" and switch.search(path.read_text())]  # fmt: skip
    assert offenders == []
