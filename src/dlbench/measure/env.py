"""The environment fingerprint stored with every run. Reads the machine without importing any framework:
framework versions come from package metadata here, and each case also records what the framework itself
reports (CUDA, cuDNN, threads) from inside its worker.
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterable
from importlib import metadata
from typing import Any

from dlbench._version import __version__

# Modules whose distributions describe every run; the frameworks' modules come from the backend registry
# (the caller passes them), so no framework is named here.
BASE_MODULES = ("numpy", "scipy")


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def cpu_info() -> dict[str, Any]:
    model = ""
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    info: dict[str, Any] = {
        "model": model or platform.processor() or platform.machine(),
        "arch": platform.machine(),
        "logical_cores": os.cpu_count(),
    }
    if hasattr(os, "sched_getaffinity"):
        info["allowed_cpus"] = len(os.sched_getaffinity(0))
    return info


def ram_bytes() -> int | None:
    try:  # psutil: Linux and macOS alike; an interpreter without it (an older managed env) reads Linux's /proc
        import psutil

        return int(psutil.virtual_memory().total)
    except (ImportError, OSError):
        pass
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return None


def gpu_info() -> list[dict[str, str]]:
    """GPUs as nvidia-smi reports them (name, driver, memory); [] when there is no NVIDIA GPU."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=index,name,driver_version,memory.total,compute_cap",
             "--format=csv,noheader"],
            capture_output=True, text=True, timeout=20, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in out.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 4:
            gpus.append(dict(zip(("index", "name", "driver", "memory", "compute_capability"), parts, strict=False)))
    return gpus


def cuda_available() -> bool:
    """Whether a CUDA GPU is present, asked of the driver (no framework import)."""
    return bool(gpu_info())


def package_versions(modules: Iterable[str] = ()) -> dict[str, str]:
    """{distribution: version} of whatever provides each module (tensorflow: tensorflow or tensorflow-cpu)."""
    providers = metadata.packages_distributions()
    versions = {}
    for module in (*BASE_MODULES, *modules):
        for name in providers.get(module, []):
            try:
                versions[name] = metadata.version(name)
            except metadata.PackageNotFoundError:
                continue
    return versions


# Environment variables that change what any program of this kind does (threads, GPUs); the frameworks' own come
# from the backend registry (the caller passes them), so no framework is named here.
BASE_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "CUDA_VISIBLE_DEVICES")


def fingerprint(modules: Iterable[str] = (), env_vars: Iterable[str] = ()) -> dict[str, Any]:
    """The machine and software environment; `modules`: the frameworks' top-level modules whose versions count;
    `env_vars`: the frameworks' environment variables, kept where set."""
    kept = {*BASE_ENV_VARS, *env_vars}
    return {
        "hostname": socket.gethostname(),
        "os": platform.platform(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "python_executable": sys.executable,
        "cpu": cpu_info(),
        "ram_bytes": ram_bytes(),
        "gpus": gpu_info(),
        "packages": package_versions(modules),
        "dlbench": __version__,
        "env": {k: v for k, v in os.environ.items() if k in kept},
    }
