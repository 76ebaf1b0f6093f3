"""The command line's value syntax, one for every command: comma-separated names, `--set key=v1,v2` sizes,
`--option key=value` backend options, `--cpus 0,2-3`, `--within 5%`, `--env backend=name`. Each parser turns text
into Python values or raises UsageError naming the bad value and what is expected; what the values mean (which
names exist, which CPUs this process may use) is checked by the API that receives them.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from typing import Any

from dlbench.core.errors import UsageError


def names(text: str) -> list[str]:
    """`"torch, jax,"` → ["torch", "jax"]."""
    return [t.strip() for t in text.split(",") if t.strip()]


def sets(items: Sequence[str] | None) -> dict[str, list[int]]:
    """`["batch=32,128", "hidden=512"]` → {"batch": [32, 128], "hidden": [512]}."""
    parsed: dict[str, list[int]] = {}
    for item in items or []:
        key, eq, values = item.partition("=")
        if not eq or not key.strip():
            raise UsageError(f"bad --set {item!r}: expected key=value[,value...] (e.g. --set batch=32,128)")
        try:
            parsed[key.strip()] = [int(v) for v in names(values)]
        except ValueError:
            raise UsageError(f"bad size {item!r}: values must be integers") from None
        if not parsed[key.strip()]:
            raise UsageError(f"bad --set {item!r}: give at least one value")
    return parsed


def options(items: Sequence[str] | None) -> dict[str, Any]:
    """`["sleep_s=0.5", "fault=crash"]` → {"sleep_s": 0.5, "fault": "crash"} (numbers as floats)."""
    parsed: dict[str, Any] = {}
    for item in items or []:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise UsageError(f"bad --option {item!r}: expected KEY=VALUE (e.g. --option sleep_s=0.5)")
        try:
            parsed[key.strip()] = float(value) if "." in value or value.isdigit() else value
        except ValueError:
            parsed[key.strip()] = value
    return parsed


def cpus(text: str | None) -> list[int] | None:
    """`"0,2-3"` → [0, 2, 3]; None or "" → None (all CPUs)."""
    if not text:
        return None
    parsed: list[int] = []
    try:
        for part in names(text):
            lo, dash, hi = part.partition("-")
            parsed += list(range(int(lo), int(hi) + 1)) if dash else [int(lo)]
    except ValueError:
        raise UsageError(f"bad --cpus {text!r}: expected ids and ranges like 0,1 or 0-3") from None
    return parsed


def percent(text: str, option: str) -> float:
    """`"5%"` or `"5"` → 0.05."""
    try:
        return float(text.strip().removesuffix("%")) / 100
    except ValueError:
        raise UsageError(f"bad {option} {text!r}: expected a percentage like 5% or 0") from None


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

__all__ = ["CPUS_HELP", "add_interpreter_options", "assignments", "cpus", "interpreter_options", "names",
           "options", "percent", "sets"]  # fmt: skip
