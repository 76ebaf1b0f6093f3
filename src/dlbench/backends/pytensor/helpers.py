"""What the PyTensor backends share beyond their graphs: PyTensor's flags, set before PyTensor is imported (dlbench's
compile cache; SciPy's OpenBLAS linked into its C code), the OpenBLAS it then calls, its compile-time log lines, the
temporary files its JAX dispatch leaves, and which ops fell back to Python. See backend.py's docstring for why each
is so. Import this module before pytensor: it sets PYTENSOR_FLAGS, which PyTensor reads once, when it is imported.
Worker-side only.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def cache_dir() -> Path:
    """dlbench's cache folder for PyTensor: $DLBENCH_CACHE_DIR/pytensor, $XDG_CACHE_HOME/dlbench/pytensor or
    ~/.cache/dlbench/pytensor."""
    root = os.environ.get("DLBENCH_CACHE_DIR")
    if root:
        return Path(root).expanduser() / "pytensor"
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "dlbench" / "pytensor"


def _scipy_openblas() -> Path | None:
    """SciPy wheel's OpenBLAS (scipy.libs/libscipy_openblas-<hash>.so), found without importing SciPy."""
    spec = importlib.util.find_spec("scipy")
    if spec is None or spec.origin is None:
        return None
    libs = sorted((Path(spec.origin).parent.parent / "scipy.libs").glob("libscipy_openblas*.so"))
    return libs[0] if libs else None


# The Fortran BLAS routines PyTensor's C code calls (tensor/blas*.py, c_code/), mapped onto SciPy's names.
_ROUTINES = ("gemm", "gemv", "ger", "dot", "scal", "axpy", "copy", "swap")
_BLAS_ROUTINES = [f"{t}{r}_" for t in "sd" for r in _ROUTINES]


def _blas_ldflags(lib: Path) -> str:
    name = lib.name.removeprefix("lib").removesuffix(".so")  # -l<name> finds lib<name>.so in the -L folder
    defines = " ".join(f"-D{r}=scipy_{r}" for r in _BLAS_ROUTINES)
    return f"-L{lib.parent} -l{name} {defines}"


CACHE_DIR = cache_dir()
_OPENBLAS = _scipy_openblas()
# Prepended, so that the user's own PYTENSOR_FLAGS entries (later ones win) override these.
_FLAGS = [f"base_compiledir={CACHE_DIR}"]
if _OPENBLAS is not None:
    _FLAGS.append(f"blas__ldflags={_blas_ldflags(_OPENBLAS)}")
# A process that imported this module passes its PYTENSOR_FLAGS on to the workers it starts: drop what that
# process prepended (remembered in DLBENCH_PYTENSOR_FLAGS), or its cache folder would override this process's
# (a worker's DLBENCH_CACHE_DIR). What remains is the user's own.
_user_flags = os.environ.get("PYTENSOR_FLAGS", "")
_inherited = os.environ.get("DLBENCH_PYTENSOR_FLAGS")
if _inherited and _user_flags.startswith(_inherited):
    _user_flags = _user_flags[len(_inherited) :].lstrip(",")
os.environ["DLBENCH_PYTENSOR_FLAGS"] = ",".join(_FLAGS)
os.environ["PYTENSOR_FLAGS"] = ",".join([*_FLAGS, _user_flags]).rstrip(",")
# Neither linker here uses Numba (PyTensor keeps its own Numba cache under base_compiledir); numba-compiled
# helpers with cache=True would otherwise write next to their sources in site-packages.
os.environ.setdefault("NUMBA_CACHE_DIR", str(CACHE_DIR / "numba"))

# isort: off
import pytensor  # noqa: E402
from pytensor.compile.builders import OpFromGraph  # noqa: E402
from pytensor.scan.op import Scan  # noqa: E402

# isort: on


@contextmanager
def temp_files_in_cache() -> Iterator[None]:
    """Point `tempfile` into the cache while PyTensor compiles: its JAX (and Numba) dispatch writes the source
    of every generated function to a temporary file that it never deletes. They serve only tracebacks; the
    folder is removed afterwards, and a process killed meanwhile leaves it in the cache, not in /tmp."""
    (CACHE_DIR / "tmp").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE_DIR / "tmp") as folder:
        saved, tempfile.tempdir = tempfile.tempdir, folder
        try:
            yield
        finally:
            tempfile.tempdir = saved


class _CompileTimes(logging.Handler):
    """The seconds PyTensor's function maker logs at DEBUG ("Rewriting took 1.23 seconds", "Linker took ..."),
    in the order logged, while one pytensor.function compiles."""

    _LINE = re.compile(r"(Rewriting|Linker) took ([0-9.]+) seconds")

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.times: list[tuple[str, float]] = []

    def emit(self, record: logging.LogRecord) -> None:
        match = self._LINE.fullmatch(record.getMessage())
        if match:
            self.times.append((match[1], float(match[2])))

    def outer(self) -> dict[str, float]:
        """The outer function's rewrite and link times. Its rewrites end before it links, and it links scan's
        inner functions (each logging its own times) inside its own linking: so its rewrite time is the first
        logged, its link time the last. {} where PyTensor logged neither."""
        rewrites = [t for kind, t in self.times if kind == "Rewriting"]
        links = [t for kind, t in self.times if kind == "Linker"]
        return {"rewrite_s": rewrites[0], "link_s": links[-1]} if rewrites and links else {}


@contextmanager
def compile_times() -> Iterator[_CompileTimes]:
    """Listen to the function maker's DEBUG lines (they reach no handler that prints DEBUG unless a user set one)."""
    logger = logging.getLogger("pytensor.compile.maker")
    handler, level = _CompileTimes(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


# -- OpenBLAS and what runs in C -----------------------------------------------------------------------------


@functools.cache
def openblas() -> ctypes.CDLL | None:
    # The same file the compiled modules link: dlopen loads a path once, so this is the instance they call.
    return ctypes.CDLL(str(_OPENBLAS)) if _OPENBLAS is not None and "scipy_" in _blas_flags() else None


def _blas_flags() -> str:
    return str(pytensor.config.blas__ldflags)


def blas_settings() -> dict[str, Any]:
    lib = openblas()
    if lib is None:  # the user's own blas__ldflags (or none found): report what PyTensor links
        return {"blas__ldflags": _blas_flags()}
    lib.scipy_openblas_get_config.restype = ctypes.c_char_p
    return {
        "blas": f"SciPy's OpenBLAS, linked into PyTensor's C code ({_OPENBLAS.name})",
        "blas_config": lib.scipy_openblas_get_config().decode(),
        "blas_threads": lib.scipy_openblas_get_num_threads(),
    }


def ops_in_python(function: Any) -> list[str]:
    """Names of the ops that run their Python `perform` instead of C code (PyTensor falls back silently, e.g.
    for float16), in the outer graph, in scan's inner graphs and in the inner functions of OpFromGraph ops
    (PyTensor 3's special.softmax: its perform calls its compiled inner function). Empty when everything runs
    in C. Read after the function ran: an OpFromGraph compiles its inner function when it first runs."""
    found: set[str] = set()
    pending = [function]
    while pending:
        vm = getattr(pending.pop(), "vm", None)
        for node, thunk in zip(getattr(vm, "nodes", ()), getattr(vm, "thunks", ()), strict=True):
            if isinstance(node.op, Scan):  # its loop is Cython (scan_perform); look inside
                pending.append(node.op.fn)
            elif isinstance(node.op, OpFromGraph):  # one Python call of its inner function; look inside
                inner = node.op.fn
                if hasattr(getattr(inner, "vm", None), "nodes"):
                    pending.append(inner)
                else:  # compiled by another linker (Numba, PyTensor 3's default mode): not C code either
                    found.add(f"{type(node.op).__name__} ({type(inner.maker.linker).__name__})")
            elif not hasattr(thunk, "cthunk"):
                found.add(type(node.op).__name__)
    return sorted(found)
