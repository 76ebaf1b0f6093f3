"""Device memory named alike in every framework (issue 13): the allocator's peak, what it covers, and the process's
memory as nvidia-smi shows it (NVML, sampled while the steps are timed); the table shows the nvidia-smi figure where
there is one (what the 2016 study read), names whichever it shows, and still reads stores written before."""

from __future__ import annotations

import os
import sys
import types
from typing import Any

import pytest

from dlbench.core.cases import Case
from dlbench.core.results import Result
from dlbench.measure.memory import DEVICE_FIGURES, NvmlPeak
from dlbench.runs.tables import memory_figure


def fake_nvml(monkeypatch: pytest.MonkeyPatch, readings: list[int | None]) -> None:
    """A pynvml whose compute-process list reports this process using readings[0], readings[1], ... (then the last)."""
    calls = {"n": 0}

    def processes(handle: Any) -> list[Any]:
        value = readings[min(calls["n"], len(readings) - 1)]
        calls["n"] += 1
        return [types.SimpleNamespace(pid=1, usedGpuMemory=10**9),  # another process: never counted
                types.SimpleNamespace(pid=os.getpid(), usedGpuMemory=value)]  # fmt: skip

    module = types.SimpleNamespace(nvmlInit=lambda: None, nvmlDeviceGetHandleByIndex=lambda i: object(),
                                   nvmlDeviceGetComputeRunningProcesses=processes)  # fmt: skip
    monkeypatch.setitem(sys.modules, "pynvml", module)


def test_the_nvml_peak_is_the_largest_sample_of_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    fake_nvml(monkeypatch, [100, 300, 700, 200])
    peak = NvmlPeak(interval_s=0.001)
    peak.start()
    time.sleep(0.05)
    assert peak.stop() == {"device_process_peak_bytes": 700}


def test_nvml_without_per_process_figures_or_without_nvml_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_nvml(monkeypatch, [None])
    peak = NvmlPeak()
    peak.start()
    assert "no per-process memory" in peak.stop()["device_process_peak_note"]
    monkeypatch.setitem(sys.modules, "pynvml", None)  # not installed
    peak = NvmlPeak()
    peak.start()
    assert peak.stop()["device_process_peak_note"].startswith("NVML cannot say: ModuleNotFoundError")


def _result(memory: dict[str, Any]) -> Result:
    case = Case("vgg16", {"batch": 2, "image": 32}, "torch", "fp32", "forward", "cuda")
    return Result(case, "ok", {"case": case.to_dict(), "status": "ok", "memory": memory})


@pytest.mark.parametrize(("memory", "shown"), [
    ({"rss_peak_bytes": 5, "device_allocated_peak_bytes": 3, "device_process_peak_bytes": 4},
     "device_process_peak_bytes"),
    ({"rss_peak_bytes": 5, "device_reserved_peak_bytes": 6, "device_allocated_peak_bytes": 3},
     "device_allocated_peak_bytes"),
    ({"rss_peak_bytes": 5, "tensorflow_gpu_current": 1, "tensorflow_gpu_peak": 2}, "tensorflow_gpu_peak"),  # old store
    ({"rss_peak_bytes": 5, "device_peak_covers": "timed steps"}, "rss_peak_bytes"),
])  # fmt: skip
def test_the_table_shows_the_nvidia_smi_figure_first_and_names_it(memory: dict[str, Any], shown: str) -> None:
    figure = memory_figure(_result(memory))
    assert figure is not None and figure[0] == shown


def test_jax_names_its_figures_alike_and_says_its_peak_covers_the_process_life() -> None:
    from dlbench.backends.jax import helpers

    gpu = types.SimpleNamespace(platform="gpu", memory_stats=lambda: {
        "peak_bytes_in_use": 7, "bytes_limit": 9, "bytes_in_use": 1})  # fmt: skip
    found = helpers.peak_memory(gpu)
    assert {k for k, v in found.items() if isinstance(v, int)} <= set(DEVICE_FIGURES) | {"device_limit_bytes"}
    assert found["device_allocated_peak_bytes"] == 7 and found["device_limit_bytes"] == 9
    assert found["device_peak_covers"].startswith("process life")


def test_torch_names_its_figures_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from dlbench.backends.torch import helpers

    monkeypatch.setattr(helpers, "on_cuda", lambda device: True)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda: 3)
    monkeypatch.setattr(torch.cuda, "max_memory_reserved", lambda: 4)
    found = helpers.peak_memory("cuda")
    assert found["device_allocated_peak_bytes"] == 3 and found["device_reserved_peak_bytes"] == 4
    assert found["device_peak_covers"] == "timed steps"
