"""Planning: a suite (or one workload over the sizes a user gives) and the backends to run → the cases, in order,
grouped by backend. Everything a user can get wrong is checked here, before anything starts or is written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dlbench.backends import BACKENDS, check_options
from dlbench.core.cases import DEVICES, MODES, Case, split_spec
from dlbench.core.errors import UsageError, check_names, unknown
from dlbench.core.precisions import PRECISIONS
from dlbench.measure.env import cuda_available
from dlbench.runner.environments import find_env
from dlbench.runner.interpreters import check_spec
from dlbench.suites.suite import MAX_CASES, Experiment, Suite, load_suite
from dlbench.workloads import WORKLOADS


def default_suite() -> str:
    """`seed` where a CUDA GPU is present, `seed-cpu` otherwise."""
    return "seed" if cuda_available() else "seed-cpu"


def default_backends() -> list[str]:
    """Every framework backend (not the numpy harness): missing ones become `unsupported` results. A backend that
    needs a managed env (theano, aesara) joins only where an env of its name exists."""
    return [name for name, info in BACKENDS.items() if not info.harness and (not info.needs_env or find_env(name))]


def _parse_sets(sets: Mapping[str, Sequence[int]] | None) -> dict[str, list[int]]:
    parsed: dict[str, list[int]] = {}
    for key, values in (sets or {}).items():
        values = [values] if isinstance(values, int) else list(values)
        if not values:
            raise UsageError(f"bad size {key}=: give at least one value")
        parsed[key] = [int(v) for v in values]
    return parsed


def plan_cases(
    target: str | None = None,
    backends: Sequence[str] | None = None,
    precisions: Sequence[str] | None = None,
    modes: Sequence[str] | None = None,
    sets: Mapping[str, Sequence[int]] | None = None,
    device: str | None = None,
    options: dict[str, Any] | None = None,
) -> tuple[Suite, list[Case]]:
    """The suite (or a one-workload suite) and its cases, grouped by backend. Validates everything first."""
    target = target or default_suite()
    for name in backends or []:
        check_spec(name)  # a backend name, or `name@tag` for one run by another interpreter (dlbench.envs)
    sizes = _parse_sets(sets)
    if target in WORKLOADS:
        device_default = "cuda" if cuda_available() else "cpu"
        suite = Suite(name=target, experiments=[Experiment(target, sizes)], device=device_default,
                      description=f"workload {target} over the sizes given")  # fmt: skip
    else:
        suite = load_suite(target)
        for key, values in sizes.items():
            hit = False
            for experiment in suite.experiments:
                if key in {p.name for p in WORKLOADS[experiment.workload].params}:
                    experiment.sizes[key], hit = values, True
            if not hit:
                raise UsageError(f"unknown size parameter {key!r} for suite {suite.name!r}")
    if not backends and suite.backends:
        backends = [*suite.backends, *(b for b in suite.backends_if_env if find_env(b) and b not in suite.backends)]
    backends = list(backends) if backends else default_backends()
    if device is not None:
        if device not in DEVICES:
            raise unknown("device", device, DEVICES)
        suite.device = device
    for experiment in suite.experiments:
        if precisions:
            experiment.precisions = check_names("precision", list(precisions), PRECISIONS)
        if modes:
            experiment.modes = check_names("mode", list(modes), MODES)
    check_options(backends, options)
    cases = [
        Case(e.workload, size, backend, precision, mode, suite.device, options=dict(options or {}), env=tag)
        for backend, tag in map(split_spec, backends)
        for e in suite.experiments
        if e.applies_to(backend)
        for size in e.grid()
        for precision in e.precisions
        for mode in e.modes
    ]
    skipped = [f"{b} leaves out {e.describe()}: {e.skip[split_spec(b)[0]]}"
               for e in suite.experiments for b in backends if split_spec(b)[0] in e.skip]  # fmt: skip
    if len(cases) > MAX_CASES:
        raise UsageError(f"the run would hold {len(cases):,} cases, more than the {MAX_CASES:,} a run may hold "
                         "(fewer backends, sizes or precisions; or several runs)")  # fmt: skip
    if skipped:  # the note is stored with the run and printed with its tables: no empty cell goes unexplained
        suite.note = " ".join([suite.note, "Not run in this suite:", "; ".join(skipped) + "."]).strip()
    return suite, cases
