"""Managed Python environments: a backend's worker can run under another interpreter.

Two needs one virtual environment cannot serve: the seed's own Theano (1.0.5 does not import with NumPy 2), and
one framework at two versions side by side ("PyTorch 2.5 vs 2.13"). `dlbench envs create NAME` makes a venv under
dlbench's data directory ($XDG_DATA_HOME/dlbench/envs, else ~/.local/share/dlbench/envs) and pip-installs the
requirements (a built-in recipe for `theano` and `aesara`) plus NumPy, all the worker needs besides dlbench's own
worker-side modules, which reach the env through PYTHONPATH (see `worker_path`), never by installing dlbench there.

An env is a directory holding a venv and `dlbench-env.json` (written last: a directory without it is an unfinished
create and is not listed). Nothing here imports a framework; what an env holds is asked of its own interpreter.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlbench.core.errors import UsageError
from dlbench.envs.probe import interpreter_packages

METADATA = "dlbench-env.json"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# What a worker imports besides dlbench's worker-side modules (which need Python ≥ 3.9 and NumPy ≥ 1.21).
WORKER_REQUIREMENTS = ("numpy>=1.21",)


@dataclass(frozen=True)
class Recipe:
    requirements: list[str]
    env: dict[str, str] = field(default_factory=dict)  # environment variables every worker in the env gets
    description: str = ""
    # Python versions to base the env on, best first, when one is found (else this interpreter): Theano 1.0.5's
    # compiled scan loop (Cython 0.28 output) builds on 3.9/3.10 but not on 3.11, where Theano falls back to its
    # Python loop (the backend records which one ran as settings()["scan_loop"]).
    pythons: tuple[str, ...] = ()


RECIPES: dict[str, Recipe] = {
    # Theano 1.0.5 imports only with NumPy < 2 and a SciPy of its time. blas.ldflags= makes it use NumPy's BLAS
    # through its C code instead of probing for a system BLAS to link against (absent on most machines).
    "theano": Recipe(["theano==1.0.5", "numpy==1.23.5", "scipy==1.11.4"], {"THEANO_FLAGS": "blas.ldflags="},
                     "the seed's Theano 1.0.5 (needs NumPy < 2)", pythons=("3.10", "3.9")),
    # Aesara, Theano's fork between Theano and PyTensor: its last release needs numpy < 2, scipy ≤ 1.12.
    "aesara": Recipe(["aesara==2.9.4", "numpy==1.23.5", "scipy==1.11.4"], {"AESARA_FLAGS": "blas__ldflags="},
                     "Aesara 2.9.4, Theano's fork before PyTensor (needs NumPy < 2)", pythons=("3.10", "3.9")),
}  # fmt: skip


class EnvCreateError(Exception):
    """Creating an env failed (venv or pip): not the user's typing, so exit status 1 with pip's own words."""


def envs_dir() -> Path:
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "dlbench" / "envs"


@dataclass(frozen=True)
class Env:
    name: str
    path: Path
    requirements: list[str]
    env: dict[str, str]
    base_python: str = ""
    python_version: str = ""
    created_at: float = 0.0
    create_s: float | None = None  # how long `envs create` took (venv + pip)

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    def packages(self) -> dict[str, str]:
        """{distribution: version} installed in the env, read by the env's own interpreter."""
        return interpreter_packages(str(self.python))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "requirements": self.requirements, "env": self.env,
                "base_python": self.base_python, "python_version": self.python_version,
                "created_at": self.created_at, "create_s": self.create_s}  # fmt: skip


def _load(path: Path) -> Env | None:
    try:
        data = json.loads((path / METADATA).read_text())
    except (OSError, ValueError):
        return None
    return Env(name=path.name, path=path, requirements=list(data.get("requirements", [])),
               env=dict(data.get("env", {})), base_python=str(data.get("base_python", "")),
               python_version=str(data.get("python_version", "")), created_at=float(data.get("created_at", 0)),
               create_s=data.get("create_s"))  # fmt: skip


def list_envs() -> list[Env]:
    root = envs_dir()
    if not root.is_dir():
        return []
    return [env for path in sorted(root.iterdir()) if path.is_dir() for env in [_load(path)] if env is not None]


def find_env(name: str) -> Env | None:
    if not NAME_PATTERN.match(name):
        return None
    return _load(envs_dir() / name)


def get_env(name: str) -> Env:
    env = find_env(name)
    if env is None:
        have = ", ".join(e.name for e in list_envs()) or "none yet"
        hint = f"`dlbench envs create {name}" + ("`" if name in RECIPES else " --requirements ...`")
        raise UsageError(f"unknown env {name!r} (existing: {have}; {hint} makes it)")
    return env


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise UsageError(f"bad env name {name!r}: letters, digits, '.', '_' and '-', starting with a letter or digit")
    return name


def find_python(version: str) -> str | None:
    """An interpreter of that `major.minor` that really runs (`python3.9` on PATH, else pyenv's versions; a pyenv
    shim may exist and refuse), or None."""
    pyenv = sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python")))
    candidates = [f"python{version}", *pyenv]
    for candidate in candidates:
        if shutil.which(candidate) is None:
            continue
        try:
            done = subprocess.run([candidate, "-I", "-c", "import sys, venv; print('%d.%d' % sys.version_info[:2])"],
                                  capture_output=True, text=True, timeout=30)  # fmt: skip
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0 and done.stdout.strip() == version:
            return candidate
    return None


def parse_requirements(text: str) -> list[str]:
    """`"theano==1.0.5 numpy==1.23.5"` (spaces or commas between) → a list; UsageError when empty."""
    items = [t for t in re.split(r"[\s,]+", text.strip()) if t]
    if not items or any(t.startswith("-") for t in items):
        raise UsageError(f"bad --requirements {text!r}: expected pip requirements like 'numpy==1.23.5 scipy<1.12' "
                         "(pip options are not passed through)")  # fmt: skip
    return items


def plan_create(name: str, requirements: list[str] | None, python: str | None) -> tuple[list[str], dict[str, str], str]:
    """Validate a create before anything is written: (requirements, env vars, base interpreter)."""
    check_name(name)
    if find_env(name) is not None:
        raise UsageError(f"env {name!r} exists ({envs_dir() / name}): `dlbench envs remove {name}` first")
    recipe = RECIPES.get(name)
    if requirements is None:
        if recipe is None:
            raise UsageError(f"no built-in recipe for env {name!r} (recipes: {', '.join(RECIPES)}): give "
                             "--requirements \"package==version ...\"")  # fmt: skip
        requirements = list(recipe.requirements)
    preferred = (found for v in (recipe.pythons if recipe and python is None else ()) if (found := find_python(v)))
    base = python or next(preferred, None) or sys.executable
    if shutil.which(base) is None:
        raise UsageError(f"bad --python {base!r}: no such interpreter (give a path to a python executable)")
    return list(requirements), dict(recipe.env) if recipe else {}, base


def create(
    name: str,
    requirements: list[str] | None = None,
    python: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> Env:
    """Make env `name`: a venv from `python` (default: this interpreter), then pip install `requirements` (default:
    the recipe of that name) and NumPy. UsageError for a bad name/recipe/interpreter (nothing written);
    EnvCreateError when venv or pip fails (the partial env is removed)."""
    requirements, env_vars, base = plan_create(name, requirements, python)
    say = progress or (lambda _text: None)
    path = envs_dir() / name
    if path.exists():  # an unfinished create (no metadata): start over
        shutil.rmtree(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        say(f"creating venv {path} from {base}")
        _check_call([base, "-m", "venv", str(path)], "python -m venv")
        python_path = path / "bin" / "python"
        command = [str(python_path), "-m", "pip", "install", "--disable-pip-version-check", *requirements,
                   *WORKER_REQUIREMENTS]  # fmt: skip
        say("pip install " + " ".join(requirements + list(WORKER_REQUIREMENTS)))
        pip_started = time.monotonic()
        _check_call(command, "pip install")
        say(f"pip took {time.monotonic() - pip_started:.1f} s")
        version = subprocess.run([str(python_path), "-c", "import sys; print(sys.version.split()[0])"],
                                 capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise
    env = Env(name, path, requirements, env_vars, base, version, time.time(), time.monotonic() - started)
    (path / METADATA).write_text(json.dumps(env.to_dict(), indent=1))
    return env


def _check_call(command: list[str], what: str) -> None:
    with tempfile.TemporaryFile() as log:
        code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT).returncode
        if code:
            log.seek(0)
            tail = log.read().decode(errors="replace").strip().splitlines()[-15:]
            raise EnvCreateError(f"{what} failed (exit status {code}):\n" + "\n".join(tail))


def remove(name: str) -> Path:
    env = get_env(name)
    shutil.rmtree(env.path)
    return env.path


__all__ = ["RECIPES", "Env", "EnvCreateError", "Recipe", "create", "envs_dir", "find_env", "get_env",
           "list_envs", "parse_requirements", "remove"]  # fmt: skip
