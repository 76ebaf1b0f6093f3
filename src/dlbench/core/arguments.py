"""The command line's value syntax, one for every command: comma-separated names, `--set key=v1,v2` sizes,
`--option key=value` backend options, `--cpus 0,2-3`, `--within 5%`, `--env backend=name`. Each parser turns text
into Python values or raises UsageError naming the bad value and what is expected; what the values mean (which
names exist, which CPUs this process may use) is checked by the API that receives them.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterable, Sequence
from typing import Any

from dlbench.core.errors import UsageError

MAX_SIZE = 2**24  # the largest value any size or count takes from the command line: beyond it, a typo
MAX_CPU = 2**16 - 1  # the largest CPU id a --cpus list may name


def names(text: str) -> list[str]:
    """`"torch, jax"` → ["torch", "jax"]. An empty list or an empty name (`""`, `","`, `"a,,b"`) is a mistake, never
    "everything": argparse's `type=` turns the ArgumentTypeError into `argument --backends: ...`."""
    parts = [t.strip() for t in text.split(",")]
    if not text.strip() or not all(parts):
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {text!r}")
    return list(dict.fromkeys(parts))


def text(value: str) -> str:
    """A value that must not be empty (argparse `type=`): a path, a run id. An empty one never means the default."""
    if not value.strip() or "\x00" in value:
        raise argparse.ArgumentTypeError(f"expected a non-empty value, got {value!r}")
    return value


def seconds(text: str) -> float:
    """A duration > 0 and finite (argparse `type=`): `--timeout 30`."""
    return _number(text, "a number of seconds > 0", lambda v: v > 0)


def seconds_or_zero(text: str) -> float:
    """A duration ≥ 0 and finite (argparse `type=`): `--min-time 0`."""
    return _number(text, "a number of seconds ≥ 0", lambda v: v >= 0)


def count(text: str) -> int:
    """An integer from 1 to MAX_SIZE (argparse `type=`): `--repeat 3`."""
    return int(_number(text, f"an integer from 1 to {MAX_SIZE}", lambda v: v == int(v) and 1 <= v <= MAX_SIZE, int))


def count_or_zero(text: str) -> int:
    """An integer from 0 to MAX_SIZE (argparse `type=`): `--retries 0`."""
    return int(_number(text, f"an integer from 0 to {MAX_SIZE}", lambda v: v == int(v) and 0 <= v <= MAX_SIZE, int))


def _number(text: str, what: str, ok: Any, kind: type = float) -> float:
    try:
        value = kind(text.strip())
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not ok(value):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return float(value)


def sets(items: Sequence[str] | None) -> dict[str, list[int]]:
    """`["batch=32,128", "hidden=512"]` → {"batch": [32, 128], "hidden": [512]}."""
    parsed: dict[str, list[int]] = {}
    for item in items or []:
        key, eq, values = item.partition("=")
        if not eq or not key.strip():
            raise UsageError(f"bad --set {item!r}: expected key=value[,value...] (e.g. --set batch=32,128)")
        texts = [v.strip() for v in values.split(",")]
        if not values.strip() or not all(texts):
            raise UsageError(f"bad --set {item!r}: give one or more values, comma-separated")
        try:
            numbers = [int(v) for v in texts]
        except ValueError:
            raise UsageError(f"bad size {item!r}: values must be integers") from None
        if len(set(numbers)) < len(numbers):
            raise UsageError(f"bad --set {item!r}: a value is repeated (each size is one case)")
        if key.strip() in parsed:
            raise UsageError(f"bad --set {item!r}: {key.strip()} is given twice")
        parsed[key.strip()] = numbers
    return parsed


def options(items: Sequence[str] | None) -> dict[str, Any]:
    """`["sleep_s=0.5", "fault=crash"]` → {"sleep_s": 0.5, "fault": "crash"} (numbers as floats)."""
    parsed: dict[str, Any] = {}
    for item in items or []:
        key, eq, value = item.partition("=")
        if not eq or not key.strip() or not value.strip():
            raise UsageError(f"bad --option {item!r}: expected KEY=VALUE (e.g. --option sleep_s=0.5)")
        try:
            parsed[key.strip()] = float(value) if "." in value or value.isdigit() else value
        except ValueError:
            parsed[key.strip()] = value
    return parsed


def cpus(text: str | None) -> list[int] | None:
    """`"0,2-3"` → [0, 2, 3]; None (not given) → None (all CPUs); anything else malformed, "" included: UsageError."""
    if text is None:
        return None
    parsed: list[int] = []
    try:
        for part in [p.strip() for p in text.split(",")]:
            lo, dash, hi = part.partition("-")
            first, last = int(lo), int(hi) if dash else int(lo)
            if not 0 <= first <= last <= MAX_CPU:
                raise ValueError(part)
            parsed += range(first, last + 1)
    except ValueError:
        raise UsageError(f"bad --cpus {text!r}: expected CPU ids from 0 to {MAX_CPU}, and ranges like 0,1 or "
                         "0-3") from None
    return sorted(set(parsed))


def percent(text: str, option: str) -> float:
    """`"5%"` or `"5"` → 0.05: from 0 to 100%."""
    try:
        value = float(text.strip().removesuffix("%")) / 100
    except ValueError:
        value = math.nan
    if not 0 <= value <= 1:  # nan and inf too
        raise UsageError(f"bad {option} {text!r}: expected a percentage from 0 to 100%, like 5% or 0")
    return value


def assignments(items: Iterable[str] | None, option: str) -> dict[str, str]:
    """`["theano=/x/bin/python", ...]` → {spec: value}, for --python and --env; UsageError naming the bad item."""
    out: dict[str, str] = {}
    for item in items or []:
        spec, eq, value = item.partition("=")
        if not eq or not spec.strip() or not value.strip():
            example = "theano=/opt/legacy/bin/python" if option == "--python" else "theano=theano"
            raise UsageError(f"bad {option} {item!r}: expected BACKEND=VALUE (e.g. {option} {example})")
        out[spec.strip()] = value.strip()
    return out


def add_interpreter_options(parser: argparse.ArgumentParser) -> None:
    """--python and --env, the same in every command that runs a backend's workers under another interpreter."""
    parser.add_argument("--python", action="append", metavar="BACKEND=PATH", dest="pythons",
                        help="run BACKEND's workers under that Python (≥ 3.9, with NumPy ≥ 1.21 and the framework), "
                        "e.g. --python theano=/opt/legacy/bin/python (repeatable)")
    parser.add_argument("--env", action="append", metavar="BACKEND=NAME", dest="envs",
                        help="run BACKEND's workers in the managed env NAME (`dlbench envs`), e.g. --env "
                        "theano=theano; BACKEND may be tagged (--backends torch,torch@old --env torch@old=torch25); "
                        "NAME '-' is dlbench's own interpreter (repeatable)")  # fmt: skip


def interpreter_options(args: argparse.Namespace) -> tuple[dict[str, str], dict[str, str]]:
    """The --python and --env mappings, as the APIs' `pythons` and `envs` take them."""
    return assignments(args.pythons, "--python"), assignments(args.envs, "--env")


CPUS_HELP = "CPU ids every worker is pinned to, e.g. 0,1 or 0-3 (default: all)"

__all__ = ["CPUS_HELP", "MAX_CPU", "MAX_SIZE", "add_interpreter_options", "assignments", "count", "count_or_zero",
           "cpus", "interpreter_options", "names", "options", "percent", "seconds", "seconds_or_zero", "sets",
           "text"]  # fmt: skip
