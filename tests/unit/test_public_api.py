"""The public surface stays honest: __all__ resolves, and the parent side never imports a framework."""

from __future__ import annotations

import subprocess
import sys

import dlbench


def test_all_names_resolve() -> None:
    for name in dlbench.__all__:
        assert getattr(dlbench, name) is not None, name


def test_parent_modules_import_no_framework() -> None:
    code = (
        "import sys, dlbench, dlbench.cli, dlbench.runs.api, dlbench.runs.render\n"
        "from dlbench.backends import BACKENDS\n"
        "[info.available() for info in BACKENDS.values()]\n"
        "dlbench.plan_cases('quick', backends=list(BACKENDS))\n"
        "bad = [m for m in ('torch', 'tensorflow', 'jax', 'pytensor', 'keras') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""


def test_worker_side_imports_stay_small() -> None:
    """What a worker imports (maybe in another Python environment) needs only NumPy and the standard library."""
    code = (
        "import sys, dlbench.runner.worker\n"
        "parent = ('rich', 'sqlite3', 'tomllib', 'pandas', 'dlbench.runs.api', 'dlbench.runner.session')\n"
        "bad = [m for m in parent if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""
