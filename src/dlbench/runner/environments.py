"""Managed Python environments on disk: where they live, what each one holds, and finding one by name.

An env is a directory under dlbench's data directory ($XDG_DATA_HOME/dlbench/envs, else
~/.local/share/dlbench/envs) holding a venv and `dlbench-env.json` (written last: a directory without it is an
unfinished create and is not listed). The runner runs a backend's workers in one (runner/interpreters.py); the
envs feature makes and removes them (dlbench.envs). Nothing here imports a framework; what an env holds is asked
of its own interpreter.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlbench.backends import recipes
from dlbench.core.errors import UsageError

METADATA = "dlbench-env.json"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


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
        hint = f"`dlbench envs create {name}" + ("`" if name in recipes() else " --requirements ...`")
        raise UsageError(f"unknown env {name!r} (existing: {have}; {hint} makes it)")
    return env


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise UsageError(f"bad env name {name!r}: letters, digits, '.', '_' and '-', starting with a letter or digit")
    return name
