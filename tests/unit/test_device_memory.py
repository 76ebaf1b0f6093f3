"""`--device-memory SIZE` / `--emulate titanx-pascal` (issue 13): validated and recorded by the parent, handed to
every worker, applied by each framework's own mechanism, and the whole process held to SIZE afterwards. No GPU
here: the framework calls are stood in for, and what dlbench asks of them is checked."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest

import dlbench
from dlbench.measure import device_memory
from dlbench.measure.device_memory import DEVICE_MEMORY_ENV, PRESETS
from dlbench.runner.session import Placement
from dlbench.runner.worker import held_to_device_memory
from dlbench.runs.api import RunSettings


def test_emulate_names_the_seed_card_and_the_run_records_it(tmp_path: Path) -> None:
    plan = dlbench.plan("seed", emulate="titanx-pascal", store=tmp_path / "s.sqlite")
    where = plan.settings.placement
    assert where.device_memory == 12 << 30 == PRESETS["titanx-pascal"][0] and where.emulate == "titanx-pascal"
    stored = plan.settings.to_dict()
    assert stored["device_memory_bytes"] == 12 << 30 and stored["emulate"] == "titanx-pascal"
    assert RunSettings.from_dict(stored).placement == where  # a resume runs under the same cap
    old = {k: v for k, v in stored.items() if k not in ("device_memory_bytes", "emulate")}
    assert RunSettings.from_dict(old).placement.device_memory is None  # a store from before: no cap
    assert where.worker_env() == {DEVICE_MEMORY_ENV: str(12 << 30)} and Placement().worker_env() == {}
    assert not (tmp_path / "s.sqlite").exists()  # planning writes nothing


def _document(process_peak: int | None) -> dict[str, Any]:
    memory: dict[str, Any] = {"rss_peak_bytes": 1, "device_allocated_peak_bytes": 5 << 30}
    if process_peak is not None:
        memory["device_process_peak_bytes"] = process_peak
    return {"status": "ok", "samples_s": [0.1, 0.1], "memory": memory}


def test_a_process_past_the_emulated_card_is_out_of_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DEVICE_MEMORY_ENV, str(12 << 30))
    over = held_to_device_memory(_document(13 << 30))
    assert over["status"] == "oom" and "would not fit" in over["error"] and "samples_s" not in over
    assert over["samples_on_the_real_card_s"] == [0.1, 0.1]  # kept, never shown as a figure of that card
    fits = held_to_device_memory(_document(11 << 30))
    assert fits["status"] == "ok" and fits["memory"]["device_memory_cap_bytes"] == 12 << 30
    unknown = held_to_device_memory(_document(None))
    assert unknown["status"] == "ok"
    assert "only the framework's allocator cap" in unknown["memory"]["device_memory_cap_note"]
    monkeypatch.delenv(DEVICE_MEMORY_ENV)
    assert held_to_device_memory(_document(13 << 30))["status"] == "ok"  # no cap asked: nothing held


def _nvml(monkeypatch: pytest.MonkeyPatch, total: int, process: int) -> None:
    import os

    handle = object()
    module = types.SimpleNamespace(
        nvmlInit=lambda: None, nvmlDeviceGetHandleByIndex=lambda i: handle,
        nvmlDeviceGetMemoryInfo=lambda h: types.SimpleNamespace(total=total),
        nvmlDeviceGetComputeRunningProcesses=lambda h: [types.SimpleNamespace(pid=os.getpid(), usedGpuMemory=process)],
    )  # fmt: skip
    monkeypatch.setitem(sys.modules, "pynvml", module)


def test_torch_caps_its_allocator_at_the_size_less_its_own_footprint(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from dlbench.backends.torch import helpers

    total, cap = 80 << 30, 12 << 30
    _nvml(monkeypatch, total, process=(1 << 30) + (2 << 20))  # 1 GiB of context and handles + 2 MiB reserved
    asked: list[float] = []
    monkeypatch.setenv(DEVICE_MEMORY_ENV, str(cap))
    monkeypatch.setattr(helpers, "DEVICE_CAP", {})
    monkeypatch.setattr(torch, "zeros", lambda *a, **k: None)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: types.SimpleNamespace(total_memory=total))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda: 2 << 20)
    monkeypatch.setattr(torch.cuda, "set_per_process_memory_fraction", asked.append)
    helpers.cap_device_memory()
    assert asked == [pytest.approx((cap - (1 << 30)) / total)]
    assert helpers.DEVICE_CAP["footprint_bytes"] == 1 << 30 and helpers.DEVICE_CAP["cap_bytes"] == cap
    helpers.cap_device_memory()
    assert len(asked) == 1  # once per process


def test_jax_gets_the_size_as_xlas_memory_fraction_unless_the_user_set_one(monkeypatch: pytest.MonkeyPatch) -> None:
    from dlbench.backends.jax import helpers

    _nvml(monkeypatch, total=80 << 30, process=0)
    monkeypatch.setenv(DEVICE_MEMORY_ENV, str(12 << 30))
    monkeypatch.delenv("XLA_PYTHON_CLIENT_MEM_FRACTION", raising=False)
    helpers.apply_device_memory()
    import os

    assert os.environ["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.1500"
    monkeypatch.setenv("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.5")
    helpers.apply_device_memory()
    assert os.environ["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.5"  # a user's own setting wins
    assert device_memory.xla_fraction(200 << 30, 80 << 30) == "1.0000"  # never more than the card
