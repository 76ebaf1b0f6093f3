"""`dlbench.envs.api`: make and remove managed Python environments, in which a backend's workers can run.

Two needs one virtual environment cannot serve: the seed's own Theano (1.0.5 does not import with NumPy 2), and
one framework at two versions side by side ("PyTorch 2.5 vs 2.13"). `dlbench envs create NAME` makes a venv under
dlbench's data directory ($XDG_DATA_HOME/dlbench/envs, else ~/.local/share/dlbench/envs) and pip-installs the
requirements (a built-in recipe for `theano` and `aesara`) plus NumPy, all the worker needs besides dlbench's own
worker-side modules, which reach the env through PYTHONPATH (runner/interpreters.py `worker_path`), never by
installing dlbench there. The built-in recipes are the backend registry's (a framework folder's `recipe`).

What an env is on disk, and finding one, is the runner's (runner/environments.py), which runs workers in them.
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
from pathlib import Path

from dlbench.backends import recipes
from dlbench.core.errors import UsageError
from dlbench.runner.environments import METADATA, Env, check_name, envs_dir, find_env, get_env, list_envs

# What a worker imports besides dlbench's worker-side modules (which need Python ≥ 3.9, NumPy ≥ 1.21, psutil).
WORKER_REQUIREMENTS = ("numpy>=1.21", "psutil>=5.9")  # psutil: the disturbance watch (measure/disturbance.py)


class EnvCreateError(Exception):
    """Creating an env failed (venv or pip): not the user's typing, so exit status 1 with pip's own words."""


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
    recipe = recipes().get(name)
    if requirements is None:
        if recipe is None:
            raise UsageError(f"no built-in recipe for env {name!r} (recipes: {', '.join(recipes())}): give "
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


__all__ = ["EnvCreateError", "create", "envs_dir", "find_env", "get_env", "list_envs", "parse_requirements",
           "plan_create", "remove"]  # fmt: skip
