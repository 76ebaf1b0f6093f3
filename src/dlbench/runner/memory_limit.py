"""`--memory-limit`: a cap on a case's resident memory, enforced by the parent watching its worker.

On a GPU the device's memory is the limit and running out is a framework error (classified `oom`). On a CPU the
machine's RAM is far larger than any device's, so a cap stands for a smaller device, and it must hold for every
framework alike. How it is enforced, and why so:

- not `setrlimit(RLIMIT_AS)`: it caps *virtual* address space, and frameworks reserve large virtual ranges they
  never touch (XLA, TensorFlow, CUDA), so they would fail at import instead of at the batch that does not fit;
  `RLIMIT_RSS` is ignored by Linux;
- not a cgroup: `memory.max` would be exact, but needs a delegated, writable cgroup, which a user seldom has;
- so the parent reads the resident set (RSS, through psutil) of every process in the case's process group every
  POLL_S while it waits for the result, and SIGKILLs the group once their sum reaches the limit. The result is
  `oom` with the error "killed by dlbench at the --memory-limit of X (RSS reached Y)".

The rule, the same for every framework: the cap applies to the case's *whole* resident memory — the framework's
import baseline and libraries, the model, the activations and anything the case started — as a device's total
memory also holds the framework's context and its allocator's pool. (A forked case's RSS starts from its
serving parent's post-import set, as a fresh interpreter's would: see measure/memory.py.)

What it cannot do: it samples, so an allocation that touches memory faster than the poll can overshoot the cap
by what it touches in one interval (the error says the RSS it saw); pages shared between processes of the group
count once per process (conservative). The highest sample is recorded with every result as `memory_watch`.
Parent-side module: standard library and psutil (the kernel's OOM-kill count has no psutil reader: /proc/vmstat).
"""

from __future__ import annotations

import os
import time
from typing import Any

import psutil

from dlbench.core.units import format_size

POLL_S = 0.025  # how often the watched case's RSS is read (each read is tens of µs per process)
RESCAN_S = 0.5  # how often the process group is rescanned for processes the case started

def _stat(pid: int) -> tuple[int, int] | None:
    """(process group, RSS bytes) of a process, None when it is gone or unreadable."""
    try:
        return os.getpgid(pid), psutil.Process(pid).memory_info().rss
    except (OSError, psutil.Error):
        return None


def _group_members(pgid: int) -> set[int]:
    members: set[int] = set()
    for pid in psutil.pids():
        try:
            if os.getpgid(pid) == pgid:
                members.add(pid)
        except OSError:
            pass
    return members


class MemoryWatch:
    """The RSS of a case's process group (led by `pid`; `pid` alone until it has made its own group), sampled."""

    def __init__(self, pid: int, limit_bytes: int) -> None:
        self.pid, self.limit_bytes = pid, limit_bytes
        self.peak_bytes, self.last_bytes, self.samples, self.processes = 0, 0, 0, 1
        self.members: set[int] = {pid}
        self.rescanned = 0.0

    def sample(self) -> int:
        """Read the group's RSS now; returns the sum and keeps the peak."""
        now = time.monotonic()
        if now - self.rescanned >= RESCAN_S:
            self.members = {self.pid} | _group_members(self.pid)
            self.rescanned = now
        total = 0
        for pid in list(self.members):
            stat = _stat(pid)
            if stat is None:
                self.members.discard(pid)
            else:
                total += stat[1]
        self.samples += 1
        self.processes = max(self.processes, len(self.members))
        self.last_bytes, self.peak_bytes = total, max(self.peak_bytes, total)
        return total

    @property
    def over(self) -> bool:
        return self.last_bytes >= self.limit_bytes

    def error(self) -> str:
        return (f"killed by dlbench at the --memory-limit of {format_size(self.limit_bytes)} "
                f"(RSS reached {format_size(self.last_bytes)})")  # fmt: skip

    def document(self) -> dict[str, Any]:
        return {
            "limit_bytes": self.limit_bytes, "peak_rss_bytes": self.peak_bytes, "samples": self.samples,
            "poll_s": POLL_S, "max_processes": self.processes,
            "rule": "sum of the RSS of the case's process group, framework import baseline included",
        }  # fmt: skip


def kernel_oom_kills() -> int | None:
    """How many processes the kernel's out-of-memory killer has killed since boot (/proc/vmstat, Linux ≥ 4.13)."""
    try:
        with open("/proc/vmstat") as f:
            for line in f:
                if line.startswith("oom_kill "):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def available_bytes() -> int | None:
    """MemAvailable: what the machine can give a new process without swapping."""
    try:
        return int(psutil.virtual_memory().available)
    except (OSError, psutil.Error):
        return None
