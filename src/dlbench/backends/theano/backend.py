"""The `theano` backend: the seed's own framework, Theano 1.0.5 (its last release), with its C backend.

Theano 1.0.5 does not import with NumPy 2 (its C code needs headers that NumPy 2 removed), so it runs in a
legacy environment of its own (`dlbench envs create theano`: theano==1.0.5, numpy==1.23.5, scipy==1.11.4),
whose interpreter serves this backend's worker (`--env theano=theano`). The graphs are in _theano_api, shared
with the `aesara` backend and written as Theano's users wrote them: `theano.scan` LSTM, `theano.tensor.nnet.conv2d`
+ `theano.tensor.signal.pool.pool_2d` VGG-16, `theano.grad`, one `theano.function` (see that module).

- Mode: Theano's default, FAST_RUN: the `cvm` linker (C VM) and the `fast_run` optimizer, which turns conv2d
  into CorrMM (im2col + gemm) and its gradients into CorrMM_gradWeights / CorrMM_gradInputs, and max-pooling
  into Pool / MaxPoolGrad, each with C code. Scan loops in C (scan_perform) on Python 3.9/3.10; see below.
- BLAS: `blas.ldflags=` (empty), as the issue's working recipe sets it: Theano then finds no BLAS library to
  link and its C code calls [sd]gemm_/gemv through NumPy's C API (Theano's own "alt_blas" fall-back), so its
  matrix products run NumPy's OpenBLAS. configure() sets that OpenBLAS's thread count. Dot22 has no such
  fall-back and runs numpy.dot from Python (settings()["ops_in_python"]). A user's own blas.ldflags in
  THEANO_FLAGS wins and settings() records what was linked: SciPy 1.11.4's wheel ships an OpenBLAS with plain
  Fortran names, and `blas.ldflags=-L<site-packages>/scipy.libs -l:libopenblasp-r0-<hash>.so` links it (every op
  in C; LSTM seq 30 batch 32 hidden 128 train measured 1.9x faster here, forward unchanged).
- Flags: set in THEANO_FLAGS before `import theano` (Theano reads them once): device=cpu, floatX=float32,
  blas.ldflags=, base_compiledir=<cache> where <cache> is $DLBENCH_CACHE_DIR/theano, else
  $XDG_CACHE_HOME/dlbench/theano, else ~/.cache/dlbench/theano, so ~/.theano stays untouched. A user's own
  entries come after ours and win.
- Precision: fp32; fp16 is whatever Theano 1.0.5 does with float16 tensors on the CPU: ops without float16 C
  code run their Python implementation (settings()["ops_in_python"] lists them), and an op with no float16
  implementation at all (conv2d: CorrMM is float32/float64 only) fails with Theano's own error, recorded as
  `unsupported`. Theano has no bfloat16 dtype: `unsupported`, with Theano's own TypeError text.
- CPU only: Theano's GPU backend (libgpuarray) is not part of the environment.

Worker-side module: Python >= 3.9, NumPy 1.x, Theano 1.0.5.
"""

from __future__ import annotations

import sys

from dlbench.backends.theano.family import TheanoAPI, TheanoFamilyBackend, cache_dir, set_flags

CACHE_DIR = cache_dir("theano")
set_flags("THEANO_FLAGS", [f"base_compiledir={CACHE_DIR}", "device=cpu", "floatX=float32", "blas.ldflags="])

# Theano's compiled scan loop is Cython 0.28 output (scan_module/c_code/scan_perform.c), which does not compile
# against Python 3.11's headers ("longintrepr.h: No such file or directory", then more): Theano then fails the
# whole function instead of looping in Python, which it does only when the module cannot be IMPORTED. So on
# Python >= 3.11 the module is marked unimportable up front, and scan runs its Python loop (Scan.execute) over
# the compiled inner function; settings()["scan_loop"] says which. An env on Python 3.9 or 3.10 compiles it.
SCAN_PERFORM_COMPILES = sys.version_info < (3, 11)
if not SCAN_PERFORM_COMPILES:
    sys.modules.setdefault("theano.scan_module.scan_perform_ext", None)  # type: ignore[arg-type]

import theano  # noqa: E402
import theano.tensor as T  # noqa: E402
from theano.scan_module import scan_op  # noqa: E402
from theano.tensor.nnet import conv2d, relu, sigmoid  # noqa: E402
from theano.tensor.signal.pool import pool_2d  # noqa: E402


def _scan_in_c() -> bool:
    """Whether scan_perform (compiled on first import) is loaded: scan then loops in C."""
    return sys.modules.get("theano.scan_module.scan_perform_ext") is not None


API = TheanoAPI("Theano", theano, T, conv2d, pool_2d, sigmoid, relu, scan_op.Scan, _scan_in_c)


class TheanoBackend(TheanoFamilyBackend):
    name = "theano"
    api = API
