"""Questions asked of another Python interpreter, by running it: its version, its packages, whether a module is
importable there (find_spec: nothing is imported). The parent never imports a framework, and never learns what
another environment holds by looking at its own.

The snippets run on any Python ≥ 3.8 (importlib.metadata), so they also work in a legacy environment.
"""

from __future__ import annotations

import functools
import json
import subprocess
from typing import Any

from dlbench.core.errors import UsageError

_INFO = """
import importlib.metadata as m, importlib.util as u, json, sys
mods = json.loads(sys.argv[1])
packages = {}
for d in m.distributions():
    name = d.metadata["Name"]
    if name:
        packages[name] = d.version
print(json.dumps({"python_version": sys.version.split()[0], "executable": sys.executable,
                  "packages": packages, "missing": [n for n in mods if u.find_spec(n) is None]}))
"""


@functools.lru_cache(maxsize=64)
def _ask(python: str, modules: tuple[str, ...]) -> dict[str, Any]:
    try:
        out = subprocess.run([python, "-I", "-c", _INFO, json.dumps(list(modules))], capture_output=True, text=True,
                             timeout=120)  # fmt: skip
    except (OSError, subprocess.SubprocessError) as exc:
        raise UsageError(f"bad interpreter {python!r}: cannot run it ({exc})") from None
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["no output"])[-1]
        raise UsageError(f"bad interpreter {python!r}: it exits with status {out.returncode} ({last[:200]})")
    data: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return data


def interpreter_info(python: str) -> dict[str, Any]:
    """{"python_version", "executable", "packages": {distribution: version}} of that interpreter."""
    data = dict(_ask(python, ()))
    data.pop("missing", None)
    return data


def interpreter_packages(python: str) -> dict[str, str]:
    return dict(_ask(python, ())["packages"])


def missing_modules(python: str, modules: tuple[str, ...]) -> list[str]:
    """The top-level modules of `modules` that interpreter cannot find (find_spec, nothing imported)."""
    return list(_ask(python, tuple(modules))["missing"])
