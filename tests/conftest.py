"""Shared fixtures and the `gpu` / `slow` markers' auto-skip."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest


def _has_cuda() -> bool:
    if shutil.which("nvidia-smi") is None:
        return False
    return subprocess.run(["nvidia-smi", "-L"], capture_output=True).returncode == 0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _has_cuda():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (nvidia-smi found none)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


_SAVED_DATA_HOME: list[str | None] = []


def pytest_configure(config: pytest.Config) -> None:
    """Tests never read or write the user's dlbench data (its default store, its managed envs: an env named theano
    there would join seed-cpu's backends); a test that needs an env creates it under this directory. Set before
    collection, since test modules look for envs when they are imported."""
    _SAVED_DATA_HOME.append(os.environ.get("XDG_DATA_HOME"))
    os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="dlbench-test-data-")


def pytest_unconfigure(config: pytest.Config) -> None:
    if not _SAVED_DATA_HOME:
        return
    shutil.rmtree(os.environ["XDG_DATA_HOME"], ignore_errors=True)
    saved = _SAVED_DATA_HOME.pop()
    if saved is None:
        os.environ.pop("XDG_DATA_HOME", None)
    else:
        os.environ["XDG_DATA_HOME"] = saved


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "results.sqlite"


@pytest.fixture
def sweep_cases(store_path: Path) -> Any:
    """Run cases through a real runner session into a run of their own in `store_path`; returns the stored result
    documents in plan order. What `dlbench run` does, without a suite."""
    from dlbench.runner.session import open_run, placement
    from dlbench.runner.sweep import sweep
    from dlbench.store import Store

    def run(plan: list[Any], config: Any, timeout_s: float, isolation: str = "fork", memory_limit: int | None = None,
            verify: bool = False, on_event: Any = None) -> list[dict[str, Any]]:  # fmt: skip
        session = open_run(store_path, "test", plan, {}, placement(isolation=isolation, memory_limit=memory_limit))
        with session:
            sweep(session, plan, config, timeout_s, on_event, verify=verify)
        store = Store(store_path, create=False)
        try:
            return store.results(str(session.run_id))
        finally:
            store.close()

    return run
