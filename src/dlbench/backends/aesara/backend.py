"""The `aesara` backend: Aesara 2.9, the fork of Theano between Theano 1.0.5 and PyTensor, with its C backend.

Aesara 2.9 needs NumPy < 2 and SciPy <= 1.12, so it runs in a legacy environment of its own (`dlbench envs
create aesara`: aesara==2.9.4, numpy==1.23.5, scipy==1.11.4), whose interpreter serves this backend's worker
(`--env aesara=aesara`). The graphs are the `theano` backend's (_theano_api), under Aesara's names:
`aesara.scan` LSTM, `aesara.tensor.nnet.conv2d` + `aesara.tensor.signal.pool.pool_2d` VGG-16 (Aesara 2.9 still
has Theano's neural-net ops, deprecated; PyTensor later removed them), `aesara.grad`, one `aesara.function`.

- Mode: Aesara's default, FAST_RUN (the `cvm` linker with the `fast_run` rewrites): conv2d would become CorrMM
  (im2col + gemm) and its gradients CorrMM_gradWeights / CorrMM_gradInputs; max-pooling Pool / MaxPoolGrad.
- BLAS: `blas__ldflags=` (empty), as for Theano: Aesara's C code then calls [sd]gemm_ through NumPy's C API,
  i.e. NumPy's OpenBLAS, whose thread count configure() sets. A user's own blas__ldflags in AESARA_FLAGS wins.
- Flags: set in AESARA_FLAGS before `import aesara`: device=cpu, floatX=float32, blas__ldflags=,
  base_compiledir=<cache>, <cache> being $DLBENCH_CACHE_DIR/aesara, else $XDG_CACHE_HOME/dlbench/aesara, else
  ~/.cache/dlbench/aesara (not ~/.aesara). A user's own entries come after ours and win.
- VGG-16 is `unsupported` in Aesara 2.9.4: its CPU convolution op (CorrMM) cannot even be built (a bug in
  CorrMM.make_node, quoted by check_graph), so no conv2d compiles on the CPU; the LSTM runs.
- Precision: fp32; fp16 as Aesara does it on the CPU (Python fall-backs listed in settings()["ops_in_python"]);
  no bfloat16 dtype: `unsupported` with Aesara's own error.

Worker-side module: Python >= 3.9, NumPy 1.x, Aesara 2.9.
"""

from __future__ import annotations

import sys
from typing import Any

from dlbench.backends.base import Unsupported
from dlbench.backends.theano.family import TheanoAPI, TheanoFamilyBackend, cache_dir, set_flags

CACHE_DIR = cache_dir("aesara")
set_flags("AESARA_FLAGS", [f"base_compiledir={CACHE_DIR}", "device=cpu", "floatX=float32", "blas__ldflags="])

import aesara  # noqa: E402
import aesara.tensor as at  # noqa: E402
from aesara.scan.op import Scan  # noqa: E402
from aesara.tensor.nnet import conv2d, relu  # noqa: E402
from aesara.tensor.nnet.corr import CorrMM  # noqa: E402
from aesara.tensor.signal.pool import pool_2d  # noqa: E402


def _scan_in_c() -> bool:
    """Whether scan_perform (Aesara compiles it on first use of scan; Python 3.11 included) is loaded."""
    return sys.modules.get("aesara.scan.scan_perform_ext") is not None


API = TheanoAPI("Aesara", aesara, at, conv2d, pool_2d, at.sigmoid, relu, Scan, _scan_in_c)


class AesaraBackend(TheanoFamilyBackend):
    name = "aesara"
    api = API

    def check_graph(self, workload: str, tensor_type: Any) -> None:
        """Aesara 2.9.4's CPU convolution, CorrMM, cannot be built: its make_node calls tuple() with four arguments
        ("TypeError: tuple expected at most 1 argument, got 4"), so the rewrite that lowers conv2d fails, and the
        legacy ConvOp path takes neither padding nor unflipped filters, nor (with both worked around) the weight
        gradient. Probed here, on the real op, so that a release that fixes it is used as soon as it is installed."""
        if workload != "vgg16":
            return
        x = tensor_type("x")
        try:
            CorrMM(border_mode=(1, 1))(x, x)
        except TypeError as exc:
            raise Unsupported(
                f"Aesara {aesara.__version__}: its CPU convolution op cannot be built (CorrMM.make_node: {exc}), so "
                "conv2d fails to compile (\"AbstractConv2d Aesara rewriting failed: there is no implementation "
                "available\")"
            ) from exc
