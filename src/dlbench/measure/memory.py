"""CPU memory readers for the worker process. Device (GPU) figures come from the backend.

Worker-side module: standard library only (and nvidia-ml-py for NvmlPeak, where installed). Linux reads /proc;
elsewhere getrusage's ru_maxrss stands in.
"""

from __future__ import annotations

import ctypes
import os
import resource
import sys
from typing import Any


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def current_rss_bytes() -> int:
    kib = _status_kib("VmRSS")
    return kib * 1024 if kib is not None else peak_rss_bytes()


def peak_rss_bytes() -> int:
    """The process's resident-set high-water mark (VmHWM), in bytes."""
    kib = _status_kib("VmHWM")
    if kib is not None:
        return kib * 1024
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss if sys.platform == "darwin" else maxrss * 1024  # macOS reports bytes, Linux KiB


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux ≥ 4.0: write 5 to /proc/self/clear_refs).

    Lets the peak cover only the measured steps, not the transient NumPy copies of weights made while building.
    Returns False where the kernel does not allow it; the peak then covers the whole process life.
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# -- a forked child's RSS, made comparable with a fresh interpreter's -----------------------------------------
#
# fork() copies the page tables of anonymous memory, but not of file-backed mappings (the framework's shared
# libraries): the child faults those pages in again as it touches them. Its RSS would start hundreds of MB below
# its parent's (TensorFlow: ~330 MB) and count library pages as the case's own. So the serving process notes
# which file-backed pages it holds after the import, and each child maps exactly those again before anything
# is measured (madvise MADV_POPULATE_READ, Linux ≥ 5.14; else a read of each page): the child then starts from
# the same resident set as a fresh interpreter that has just imported the framework.

_MADV_POPULATE_READ = 22


def resident_file_pages() -> list[tuple[int, int]]:
    """(address, length) runs of this process's resident pages in readable file-backed mappings."""
    page = os.sysconf("SC_PAGE_SIZE")
    runs: list[tuple[int, int]] = []
    try:
        maps = open("/proc/self/maps")
        pagemap = open("/proc/self/pagemap", "rb")
    except OSError:
        return runs
    with maps, pagemap:
        for line in maps:
            fields = line.split()
            if len(fields) < 6 or not fields[5].startswith("/") or not fields[1].startswith("r"):
                continue
            start, end = (int(v, 16) for v in fields[0].split("-"))
            pagemap.seek(start // page * 8)
            entries = pagemap.read((end - start) // page * 8)
            run_start = None
            for index in range(len(entries) // 8):
                present = entries[index * 8 + 7] & 0x80  # bit 63 of each little-endian entry
                if present and run_start is None:
                    run_start = index
                elif not present and run_start is not None:
                    runs.append((start + run_start * page, (index - run_start) * page))
                    run_start = None
            if run_start is not None:
                runs.append((start + run_start * page, (len(entries) // 8 - run_start) * page))
    return runs


def populate(runs: list[tuple[int, int]]) -> None:
    """Map the given runs of pages into this process (after fork: what the parent had resident)."""
    if not runs:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    page = os.sysconf("SC_PAGE_SIZE")
    for address, length in runs:
        if libc.madvise(address, length, _MADV_POPULATE_READ) != 0:
            for offset in range(0, length, page):  # older kernels: touch each page
                ctypes.string_at(address + offset, 1)


# -- what nvidia-smi shows: a CUDA process's device memory, through NVML -----------------------------------------
#
# Every framework's allocator reports its own peak (device_allocated_peak_bytes), which leaves out the CUDA context,
# cuDNN/cuBLAS handles and workspaces and whatever the allocator keeps cached; the 2016 study read nvidia-smi, the
# whole process as the driver sees it. NVML gives that figure per process, at the moment it is asked, so a thread
# samples it while the steps are timed and keeps the largest.

DEVICE_FIGURES = {  # the memory document's device figures, in the order a table prefers them
    "device_process_peak_bytes": "the worker process's device memory as nvidia-smi shows it (NVML, sampled every "
    "10 ms during the timed steps: CUDA context, library handles and the allocator's cache included)",
    "device_allocated_peak_bytes": "the framework allocator's peak of memory in use by tensors",
    "device_reserved_peak_bytes": "the framework allocator's peak of memory held from the driver (cached included)",
}


def nvml_device() -> Any:
    """NVML's handle of this process's CUDA device (the first of CUDA_VISIBLE_DEVICES, else 0). Raises where NVML
    cannot give one: no nvidia-ml-py (ImportError), no driver, a container without it (pynvml's errors)."""
    import pynvml  # nvidia-ml-py

    pynvml.nvmlInit()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0].strip()
    return pynvml.nvmlDeviceGetHandleByIndex(int(visible) if visible.isdigit() else 0)


def process_device_bytes(device: Any) -> int | None:
    """This process's memory on `device` (nvml_device()) as nvidia-smi shows it: 0 when it is not listed there,
    None where NVML gives no per-process figure (a MIG slice, some containers)."""
    import pynvml

    for process in pynvml.nvmlDeviceGetComputeRunningProcesses(device):
        if process.pid == os.getpid():
            return None if process.usedGpuMemory is None else int(process.usedGpuMemory)
    return 0


class NvmlPeak:
    """The largest device memory NVML reports for this process between start() and stop(), sampled every
    `interval_s` in a thread. stop() returns {"device_process_peak_bytes": N} or {"device_process_peak_note": why}.
    Needs nvidia-ml-py (`pynvml`); the device index is the first of CUDA_VISIBLE_DEVICES (else 0)."""

    def __init__(self, interval_s: float = 0.01) -> None:
        self.interval_s, self.peak, self.note = interval_s, -1, ""
        self._stop: Any = None
        self._thread: Any = None

    def _used(self) -> int | None:
        return process_device_bytes(self._handle)

    def start(self) -> None:
        import threading

        try:
            self._handle = nvml_device()
            first = self._used()
        except Exception as exc:  # noqa: BLE001 — no NVML (no nvidia-ml-py, no driver, a container): no figure
            self.note = f"NVML cannot say: {type(exc).__name__}: {exc}"
            return
        if first is None:
            self.note = "NVML reports no per-process memory here (a MIG slice or a container without it)"
            return
        self.peak = first
        self._stop = threading.Event()

        def sample() -> None:
            while not self._stop.wait(self.interval_s):
                try:
                    used = self._used()
                except Exception:  # noqa: BLE001 — a sampler must never break a measurement
                    return
                if used is not None:
                    self.peak = max(self.peak, used)

        self._thread = threading.Thread(target=sample, name="dlbench-nvml", daemon=True)
        self._thread.start()

    def stop(self) -> dict[str, Any]:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            try:
                used = self._used()
                if used is not None:
                    self.peak = max(self.peak, used)
            except Exception:  # noqa: BLE001
                pass
        if self.peak < 0:
            return {"device_process_peak_note": self.note or "not sampled"}
        return {"device_process_peak_bytes": self.peak}
