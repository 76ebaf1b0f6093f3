"""Sizes in bytes as users write them ("4GiB", "512MiB", "8G", "8GB") and as tables show them ("3.71 GiB").

Standard library only.
"""

from __future__ import annotations

import re

from dlbench.core.errors import UsageError

_UNITS = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
          "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}  # fmt: skip
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*")
SIZE_HELP = "a size like 4GiB, 512MiB or 8G (K/M/G/T and KiB/MiB/GiB/TiB are powers of 1024, KB/MB/GB/TB of 1000)"


def parse_size(text: str, what: str = "--memory-limit") -> int:
    """Bytes from "4GiB", "512MiB", "8G" (= 8 GiB, as docker and ulimit read it), "8GB" (= 8e9), "1048576"."""
    match = _SIZE.fullmatch(str(text))
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise UsageError(f"bad {what} {text!r}: expected {SIZE_HELP}")
    value = int(float(match.group(1)) * _UNITS[unit])
    if value < 2**20:
        raise UsageError(f"bad {what} {text!r}: must be at least 1MiB")
    return value


def format_size(n: int | float | None) -> str:
    """`4 GiB`, `3.71 GiB`, `512 MiB`."""
    if n is None:
        return "—"
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= scale:
            return f"{n / scale:.3g} {unit}" if n % scale else f"{int(n // scale)} {unit}"
    return f"{int(n)} B"
