"""The backend registry: one entry per framework folder, and every list derived from those entries.

A framework is one folder, `backends/<framework>/`, whose `__init__.py` declares its `Framework` record
(registry.py) and imports no framework; adding one is that folder, its name in FOLDERS below, and its pyproject
extra. Everything else is derived here: the backends by name, the modules whose versions a run records,
the environment variables a fingerprint keeps, each backend's probe layers and usability probes (or why it has
none), the legacy environment recipes, the bare scripts. Importing this module imports no framework.
Worker-side module: standard library only (a worker looks its backend's class up here).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Iterable, Mapping
from typing import Any

from dlbench.backends.registry import BackendInfo, Framework, Recipe
from dlbench.core.errors import UsageError, unknown

# The framework folders, one line each, in the order tables and defaults list them. Each folder's __init__.py holds
# its FRAMEWORK record and imports no framework (a contract of pyproject.toml checks it).
FOLDERS = (
    "numpy",
    "torch",
    "tensorflow",
    "jax",
    "pytensor",
    "theano",
    "aesara",
    "keras",
)
FRAMEWORKS: tuple[Framework, ...] = tuple(importlib.import_module(f"{__name__}.{f}").FRAMEWORK for f in FOLDERS)

BACKENDS: dict[str, BackendInfo] = {info.name: info for framework in FRAMEWORKS for info in framework.backends}
_FRAMEWORK_OF: dict[str, Framework] = {info.name: f for f in FRAMEWORKS for info in f.backends}


def get_backend(name: str) -> BackendInfo:
    try:
        return BACKENDS[name]
    except KeyError:
        raise unknown("backend", name, BACKENDS) from None


def check_options(backends: Iterable[str], options: Mapping[str, Any] | None) -> None:
    """UsageError unless every backend (a name or `name@tag`) takes every option with its value, as its record
    declares (BackendInfo.options): what `--option` gives is checked before any worker starts."""
    for spec in dict.fromkeys(backends):
        info = get_backend(spec.partition("@")[0])
        for key, value in (options or {}).items():
            allowed = info.options.get(key)
            if allowed is None:
                takes = ", ".join(info.options) or "none"
                raise UsageError(f"unknown backend option {key!r} for {info.name} (it takes: {takes})")
            if allowed and value not in allowed:
                raise UsageError(f"bad --option {key}={value} for {info.name} (allowed: {', '.join(allowed)})")
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not allowed and not (number and 0 <= value < math.inf):
                raise UsageError(f"bad --option {key}={value} for {info.name}: must be a number ≥ 0")


def framework_of(backend: str) -> Framework:
    """The framework (folder) a backend belongs to."""
    get_backend(backend)
    return _FRAMEWORK_OF[backend]


def framework_modules() -> list[str]:
    """Every top-level module some backend needs: whose versions a run's fingerprint records."""
    return sorted({module for info in BACKENDS.values() for module in info.requires})


def env_vars() -> list[str]:
    """The environment variables that change what some framework does: a run's fingerprint keeps those set."""
    return sorted({name for framework in FRAMEWORKS for name in framework.env_vars})


def layers_of(backend: str) -> tuple[str | None, str]:
    """(module, variant) of a backend's layers for `dlbench probe`, or (None, why it has none)."""
    info, framework = get_backend(backend), framework_of(backend)
    if framework.layers is None or info.layers is None:
        return None, f"the {backend} backend declares no layers for dlbench probe (its registry entry has none)"
    return framework.layers, info.layers


def usability_of(backend: str) -> tuple[str | None, str]:
    """The module of a backend's debugging and export probes for `dlbench usability`, or (None, why it has none)."""
    info, framework = get_backend(backend), framework_of(backend)
    if framework.usability is None or not info.idiom:
        return None, f"the {backend} backend declares no usability probes (its registry entry has none)"
    return framework.usability, ""


def recipes() -> dict[str, Recipe]:
    """Built-in recipes of managed environments (`dlbench envs create NAME`), by the framework's name."""
    return {f.name: f.recipe for f in FRAMEWORKS if f.recipe is not None}


def bare_scripts() -> dict[str, str]:
    """framework -> its bare one-LSTM-layer script's file name in benchmarks/bare/."""
    return {f.name: f.bare for f in FRAMEWORKS if f.bare is not None}


__all__ = ["BACKENDS", "FOLDERS", "FRAMEWORKS", "BackendInfo", "Framework", "Recipe", "bare_scripts", "check_options",
           "env_vars",
           "framework_modules", "framework_of", "get_backend", "layers_of", "recipes", "usability_of"]  # fmt: skip
