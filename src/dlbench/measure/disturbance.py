"""What else the machine did while a case was timed, and whether that makes its figure a measurement.

A timed window is *disturbed* when something outside the case's own process tree used the CPUs the case was given
(or, on CUDA, the device): the figure then measures the neighbour as much as the framework. For every window a
`Watch` records, through psutil (Linux and macOS alike):

- outside_cpu_s: busy time of the case's CPUs (user, nice, system, irq, softirq, steal) minus the CPU time of
  the case's own process tree, over the window; outside_share = outside_cpu_s ÷ (wall × CPUs given);
- steal_s: time the hypervisor gave the case's CPUs to another guest (part of outside_cpu_s);
- cpu_share: the case's own CPU time ÷ (wall × its threads): the share of its CPUs it actually got;
- on CUDA, the other processes on the device (NVML, through nvidia-ml-py, where it is installed).

`judge()` applies the thresholds of MeasureConfig (max_outside_share, min_cpu_share; the user sets them) and
records them beside its verdict. The kernel counts CPU time in ticks (10 ms on Linux), so a window's outside time
below OUTSIDE_FLOOR_S is not told apart from rounding and never makes a window disturbed.

Worker-side module (the timed window is the worker's): standard library, and psutil where the interpreter has it;
an interpreter without psutil (an older managed env) records why there is no figure, and its windows are
`unwatched`, never called clean.
"""

from __future__ import annotations

import os
import time
from typing import Any

from dlbench.measure.memory import nvml_device

OUTSIDE_FLOOR_S = 0.03  # three kernel ticks: less outside CPU time than this is rounding, not a neighbour
_BUSY_FIELDS = ("user", "nice", "system", "irq", "softirq", "steal")


def allowed_cpus() -> list[int]:
    """The CPUs this process may run on (all of them where the OS cannot say)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def _busy(cpus: list[int]) -> tuple[float, float]:
    """(busy seconds, steal seconds) summed over `cpus` since boot."""
    import psutil

    per_cpu = psutil.cpu_times(percpu=True)
    busy = steal = 0.0
    for cpu in cpus:
        if cpu < len(per_cpu):
            times = per_cpu[cpu]
            busy += sum(getattr(times, name, 0.0) for name in _BUSY_FIELDS)
            steal += getattr(times, "steal", 0.0)
    return busy, steal


def tree_cpu_s(pid: int) -> float:
    """CPU seconds used so far by process `pid`, its reaped children and its live descendants."""
    import psutil

    try:
        root = psutil.Process(pid)
        times = root.cpu_times()
        total = times.user + times.system
        total += getattr(times, "children_user", 0.0) + getattr(times, "children_system", 0.0)
        children = root.children(recursive=True)
    except psutil.Error:
        return 0.0
    for child in children:
        try:
            t = child.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return float(total)


def _device_processes(device: str) -> list[int] | None:
    """PIDs of the compute processes on the case's CUDA device, through NVML; None where NVML cannot say."""
    if not device.startswith("cuda"):
        return None
    try:
        import pynvml  # nvidia-ml-py

        return sorted({p.pid for p in pynvml.nvmlDeviceGetComputeRunningProcesses(nvml_device())})
    except Exception:  # noqa: BLE001 — NVML unavailable (not installed, no driver, a MIG slice, a container): no figure
        return None


class Watch:
    """Watch one timed window: `start()` before its first timed iteration, `stop()` after its last."""

    def __init__(self, device: str = "cpu", cpus: list[int] | None = None, threads: int | None = None,
                 own: list[int] | None = None) -> None:  # fmt: skip
        self.device, self.cpus = device, cpus or allowed_cpus()
        self.threads = threads or len(self.cpus)
        self.pid = os.getpid()
        self.own = own or [self.pid]  # the process trees whose CPU time is the case's own
        self._start: tuple[float, float, float, float] | None = None
        self._device_before: list[int] | None = None
        self.error = ""

    def start(self) -> None:
        try:
            busy, steal = _busy(self.cpus)
            self._start = (time.perf_counter(), busy, steal, self._own_cpu_s())
        except ImportError:
            self.error = "psutil is not installed in this interpreter: the window was not watched"
        except Exception as exc:  # noqa: BLE001 — a watch must never break a measurement
            self.error = f"cannot read CPU times: {type(exc).__name__}: {exc}"
        self._device_before = _device_processes(self.device)

    def _own_cpu_s(self) -> float:
        return sum(tree_cpu_s(pid) for pid in self.own)

    def stop(self) -> dict[str, Any]:
        """The window's document (see the module docstring); {"error": ...} where it could not be watched."""
        if self._start is None:
            return {"error": self.error or "the window was not started"}
        wall0, busy0, steal0, own0 = self._start
        try:
            busy, steal = _busy(self.cpus)
            own = self._own_cpu_s()
        except Exception as exc:  # noqa: BLE001
            return {"error": f"cannot read CPU times: {type(exc).__name__}: {exc}"}
        wall = time.perf_counter() - wall0
        own_s = max(0.0, own - own0)
        outside = max(0.0, (busy - busy0) - own_s)
        window: dict[str, Any] = {
            "wall_s": wall, "cpus": self.cpus, "threads": self.threads, "own_cpu_s": own_s,
            "outside_cpu_s": outside, "steal_s": max(0.0, steal - steal0),
            "outside_share": outside / (wall * len(self.cpus)) if wall > 0 else 0.0,
            "cpu_share": own_s / (wall * self.threads) if wall > 0 else 0.0,
        }  # fmt: skip
        after = _device_processes(self.device)
        if after is not None or self._device_before is not None:
            own_tree = {self.pid, os.getppid()}
            window["device_other_pids"] = sorted(set(after or []) | set(self._device_before or []) - own_tree)
        return window


def judge(window: dict[str, Any] | None, max_outside_share: float, min_cpu_share: float = 0.0) -> dict[str, Any]:
    """The verdict on one window: {"verdict": clean | disturbed | unwatched, "reasons": [...], "thresholds": {...}}.
    Pure: the parent judges what the worker recorded, with the run's thresholds."""
    thresholds = {"max_outside_share": max_outside_share, "min_cpu_share": min_cpu_share}
    if not window or window.get("error"):
        reason = (window or {}).get("error") or "no window was recorded"
        return {"verdict": "unwatched", "reasons": [reason], "thresholds": thresholds}
    reasons: list[str] = []
    outside, share = window.get("outside_cpu_s", 0.0), window.get("outside_share", 0.0)
    if share > max_outside_share and outside >= OUTSIDE_FLOOR_S:
        steal = window.get("steal_s", 0.0)
        reasons.append(f"other processes used {share:.0%} of its CPUs (threshold {max_outside_share:.0%})"
                       + (f", {steal:.2f} s of it stolen by the hypervisor" if steal >= OUTSIDE_FLOOR_S else ""))
    if min_cpu_share > 0 and window.get("cpu_share", 1.0) < min_cpu_share:
        reasons.append(f"it got {window['cpu_share']:.0%} of its CPUs (threshold {min_cpu_share:.0%})")
    if window.get("device_other_pids"):
        reasons.append(f"other processes on the device: pids {', '.join(map(str, window['device_other_pids']))}")
    return {"verdict": "disturbed" if reasons else "clean", "reasons": reasons, "thresholds": thresholds}


def outside_share_now(cpus: list[int], interval_s: float, own_pids: list[int]) -> float | None:
    """The share of `cpus` used by processes other than `own_pids` (and their descendants) over the next
    `interval_s` seconds: what `--wait-quiet` asks before a case. None without psutil."""
    watch = Watch(cpus=cpus, own=own_pids)
    watch.start()
    time.sleep(interval_s)
    share = watch.stop().get("outside_share")
    return None if share is None else float(share)
