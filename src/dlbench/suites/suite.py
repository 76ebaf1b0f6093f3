"""Suites: named lists of cases, kept as TOML data files in dlbench/suites/ (or any path a user gives).

A suite file:
    description = "..."
    device = "cpu"                    # default device (the CLI's --device overrides)
    note = "..."                      # printed with its tables (e.g. that sizes are scaled)
    timeout_s = 300                   # per case
    backends = ["torch", "jax"]       # default backends when none are given (else every framework backend)
    backends_if_env = ["theano"]      # join those defaults when a managed env of their name exists
    [measure]                         # any MeasureConfig field
    min_time_s = 0.5
    [[experiments]]
    workload = "lstm"
    precisions = ["fp32"]
    modes = ["forward", "train"]
    [experiments.sizes]               # the grid: every combination is a case
    seq_len = [30, 60]
    [experiments.skip]                # optional: backends this experiment leaves out, and why (the reason is
    pytensor = "..."                  #   printed with the run's note, so an empty cell is never unexplained)
    # backends = ["pytensor"]         # optional: this experiment runs only for these (of the run's backends)
    [envs]                            # optional: backend spec -> managed env its workers run in (dlbench envs)
    theano = "theano"
    [pythons]                         # optional: backend spec -> interpreter path (the CLI's --env/--python win)
                                      #   (a path not a managed env's runs only with --trust-interpreters)
"""

from __future__ import annotations

import itertools
import math
import tomllib
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

from dlbench.backends import get_backend
from dlbench.core.cases import DEVICES, MODES, MeasureConfig
from dlbench.core.errors import UsageError, check_names, unknown
from dlbench.core.precisions import PRECISIONS
from dlbench.runner.environments import NAME_PATTERN
from dlbench.workloads import WORKLOADS, get_workload

MAX_CASES = 10_000  # cases one run may hold: beyond it, a grid typed wrong (3000 × 3000) would plan for hours


@dataclass
class Experiment:
    workload: str
    sizes: dict[str, list[int]]
    precisions: list[str] = field(default_factory=lambda: ["fp32"])
    modes: list[str] = field(default_factory=lambda: list(MODES))
    backends: list[str] | None = None  # only these backends (None: all of the run's)
    skip: dict[str, str] = field(default_factory=dict)  # backend -> why this experiment leaves it out

    def applies_to(self, backend: str) -> bool:
        return (self.backends is None or backend in self.backends) and backend not in self.skip

    def describe(self) -> str:
        sizes = ", ".join(f"{k}={'/'.join(map(str, v))}" for k, v in self.sizes.items())
        return f"{self.workload} {'/'.join(self.precisions)}" + (f" at {sizes}" if sizes else "")

    def grid(self) -> list[dict[str, int]]:
        """Every size of the grid, validated and completed with the workload's defaults."""
        workload = get_workload(self.workload)
        names = list(self.sizes)
        count = math.prod(len(v) for v in self.sizes.values())
        if count > MAX_CASES:
            raise UsageError(f"a {self.workload} grid of {count:,} sizes: more than the {MAX_CASES:,} cases a run "
                             "may hold (split it into several runs)")  # fmt: skip
        combos = itertools.product(*self.sizes.values())
        return [workload.size(dict(zip(names, combo, strict=True))) for combo in combos]


@dataclass
class Suite:
    name: str
    experiments: list[Experiment]
    description: str = ""
    device: str = "cpu"
    note: str = ""
    timeout_s: float = 600.0
    measure: MeasureConfig = field(default_factory=MeasureConfig)
    backends: list[str] | None = None  # default backends (None: every framework backend)
    # Join the defaults when a managed env of their name exists (`dlbench envs create theano`): the real Theano row.
    backends_if_env: list[str] = field(default_factory=list)
    envs: dict[str, str] = field(default_factory=dict)  # backend spec -> managed env (runner/interpreters.py)
    pythons: dict[str, str] = field(default_factory=dict)  # backend spec -> interpreter path


def suite_names() -> list[str]:
    return sorted(p.name.removesuffix(".toml") for p in resources.files("dlbench.suites").iterdir()
                  if p.name.endswith(".toml"))  # fmt: skip


def load_suite(name_or_path: str) -> Suite:
    """A built-in suite by name, or a suite file by path. UsageError on anything malformed."""
    path = Path(name_or_path)
    try:
        is_file = path.is_file()
    except OSError as exc:  # a name too long for the file system
        raise UsageError(f"bad suite {name_or_path[:80]!r}: {exc.strerror or exc}") from None
    if name_or_path.endswith(".toml") or is_file:
        if not is_file:
            raise UsageError(f"suite file {name_or_path[:200]!r} does not exist")
        try:
            text = path.read_bytes().decode("utf-8")
        except OSError as exc:
            raise UsageError(f"cannot read suite file {name_or_path!r}: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise UsageError(f"malformed suite file {name_or_path!r}: not UTF-8 text (byte {exc.start})") from None
        name, where = path.stem, name_or_path
    elif name_or_path in suite_names():
        text = resources.files("dlbench.suites").joinpath(f"{name_or_path}.toml").read_text()
        name, where = name_or_path, f"built-in suite {name_or_path!r}"
    else:
        raise unknown("suite or workload", name_or_path, [*suite_names(), *WORKLOADS])
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"malformed suite file {where}: {exc}") from None
    return parse_suite(name, data, where)


def _list(value: Any, what: str, where: str, kind: type = str) -> list[Any]:
    """A non-empty list of `kind` (str: names; int: sizes, each once), or one such value; else UsageError."""
    items = [value] if isinstance(value, (str, int)) and not isinstance(value, bool) else value
    if (not isinstance(items, list) or not items
            or not all(isinstance(v, kind) and not isinstance(v, bool) for v in items)):
        noun = "names" if kind is str else "integers"
        raise UsageError(f"malformed suite {where}: {what} must be a non-empty list of {noun}, got {value!r:.80}")
    if kind is int and len(set(items)) < len(items):
        raise UsageError(f"malformed suite {where}: {what} repeats a value ({value!r:.80}); each size is one case")
    return items


def _text(data: dict[str, Any], key: str, where: str, default: str = "") -> str:
    value = data.get(key, default)
    if not isinstance(value, str):
        raise UsageError(f"malformed suite {where}: {key} must be a string, got {value!r:.80}")
    return value


def parse_suite(name: str, data: dict[str, Any], where: str) -> Suite:
    allowed = {"description", "device", "note", "timeout_s", "measure", "experiments", "backends", "backends_if_env",
               "envs", "pythons"}  # fmt: skip
    for key in data:
        if key not in allowed:
            raise UsageError(f"malformed suite {where}: unknown key {key!r} (allowed: {', '.join(sorted(allowed))})")
    device = _text(data, "device", where, "cpu")
    if device not in DEVICES:
        raise unknown("device", str(device), DEVICES)
    timeout_s = data.get("timeout_s", 600.0)
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not 0 < timeout_s < math.inf:
        raise UsageError(f"malformed suite {where}: timeout_s must be a number of seconds > 0, got {timeout_s!r:.40}")
    measure_fields = {f.name for f in fields(MeasureConfig)}
    if not isinstance(data.get("measure", {}), dict):
        raise UsageError(f"malformed suite {where}: measure must be a [measure] table, got {data['measure']!r:.40}")
    measure = dict(data.get("measure", {}))
    for key in measure:
        if key not in measure_fields:
            raise UsageError(f"malformed suite {where}: unknown [measure] key {key!r} "
                             f"(allowed: {', '.join(sorted(measure_fields))})")  # fmt: skip
    try:
        problem = MeasureConfig(**measure).problem()
    except TypeError as exc:
        problem = str(exc)
    if problem:
        raise UsageError(f"malformed suite {where}: bad [measure] {problem}")
    experiments = []
    raw = data.get("experiments")
    if not isinstance(raw, list) or not raw:
        raise UsageError(f"malformed suite {where}: needs at least one [[experiments]] table")
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("workload"), str):
            raise UsageError(f"malformed suite {where}: every [[experiments]] table needs a workload (a name)")
        keys = ("workload", "sizes", "precisions", "modes", "backends", "skip")
        extra = set(item) - set(keys)
        if extra:
            raise UsageError(f"malformed suite {where}: unknown experiment key {sorted(extra)[0]!r} "
                             f"(allowed: {', '.join(keys)})")  # fmt: skip
        skip = item.get("skip", {})
        if not isinstance(skip, dict) or not all(isinstance(v, str) and v.strip() for v in skip.values()):
            raise UsageError(f"malformed suite {where}: experiments.skip must map backend names to a reason, "
                             f"got {skip!r}")  # fmt: skip
        get_workload(item["workload"])
        if not isinstance(item.get("sizes", {}), dict):
            raise UsageError(f"malformed suite {where}: sizes must be an [experiments.sizes] table, "
                             f"got {item['sizes']!r:.40}")  # fmt: skip
        sizes = {k: _list(v, f"sizes.{k}", where, int) for k, v in item.get("sizes", {}).items()}
        experiment = Experiment(
            workload=item["workload"],
            sizes=sizes,
            precisions=check_names(
                "precision", _list(item.get("precisions", ["fp32"]), "precisions", where), PRECISIONS
            ),
            modes=check_names("mode", _list(item.get("modes", list(MODES)), "modes", where), MODES),
            backends=[get_backend(b).name for b in _list(item["backends"], "backends", where)]
            if "backends" in item else None,
            skip={get_backend(b).name: str(reason) for b, reason in skip.items()},
        )
        experiment.grid()  # validates every size now, before anything runs
        experiments.append(experiment)
    try:
        return Suite(
            name=name, experiments=experiments, description=_text(data, "description", where), device=device,
            note=_text(data, "note", where), timeout_s=float(timeout_s),
            measure=MeasureConfig(**measure),
            backends=[get_backend(b).name for b in _list(data["backends"], "backends", where)]
            if "backends" in data else None,
            backends_if_env=[get_backend(b).name for b in _list(data["backends_if_env"], "backends_if_env", where)]
            if "backends_if_env" in data else [],
            envs=_env_names(_mapping(data.get("envs", {}), "envs", where), where),
            pythons=_mapping(data.get("pythons", {}), "pythons", where),
        )  # fmt: skip
    except (TypeError, ValueError) as exc:
        raise UsageError(f"malformed suite {where}: {exc}") from None


def _mapping(value: Any, what: str, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) and v for v in value.values()):
        raise UsageError(f"malformed suite {where}: [{what}] must map backend names to strings, got {value!r}")
    return {str(k): v for k, v in value.items()}


def _env_names(mapping: dict[str, str], where: str) -> dict[str, str]:
    """[envs] values name managed envs (or `-`, dlbench's own interpreter), never a path: a suite file is data and
    picks among the envs `dlbench envs create` made, nothing else (runner/trust.py)."""
    for spec, name in mapping.items():
        if name != "-" and not NAME_PATTERN.match(name):
            raise UsageError(f"malformed suite {where}: [envs] {spec!r} = {name!r} is not an env name (letters, "
                             "digits, '.', '_' and '-'; `dlbench envs list` shows them)")  # fmt: skip
    return mapping
