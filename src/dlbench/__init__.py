"""dlbench: the 2016 Torch vs TensorFlow vs Theano study, re-run on today's frameworks, honestly measured.

    import dlbench
    plan = dlbench.plan("quick", backends=["torch", "numpy"])   # validated: the cases and the settings
    run = dlbench.run(plan)                                      # or dlbench.run("quick", backends=[...])
    run.to_dataframe()
    runs = dlbench.run_on_cluster(plan, dlbench.ClusterSpec("auto", "every-node"))   # a run per Ray node

The other commands' Python APIs are their features' `api` modules: dlbench.verify.api, dlbench.probe.api,
dlbench.maxbatch.api, dlbench.compile.api, dlbench.usability.api, dlbench.peak.api, dlbench.envs.api (each with a
`run` function but envs). The public names load lazily, so a worker process (which imports `dlbench.runner.worker`,
maybe in another Python environment) pays for none of the parent's modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dlbench._version import __version__

if TYPE_CHECKING:
    from dlbench.core.cases import Case, MeasureConfig
    from dlbench.core.errors import UsageError
    from dlbench.core.results import Result, Run
    from dlbench.runner.faults import RunFailed
    from dlbench.runs.api import (
        ClusterSpec,
        Interrupted,
        Plan,
        RunSettings,
        default_suite,
        list_runs,
        load_run,
        plan,
        plan_cases,
        run,
        run_on_cluster,
    )

_LAZY = {
    "Interrupted": "dlbench.runs.api", "Plan": "dlbench.runs.api", "RunSettings": "dlbench.runs.api",
    "default_suite": "dlbench.runs.api", "list_runs": "dlbench.runs.api", "load_run": "dlbench.runs.api",
    "plan": "dlbench.runs.api", "plan_cases": "dlbench.runs.api", "run": "dlbench.runs.api",
    "run_on_cluster": "dlbench.runs.api", "ClusterSpec": "dlbench.runs.api",
    "Case": "dlbench.core.cases", "MeasureConfig": "dlbench.core.cases", "UsageError": "dlbench.core.errors",
    "Result": "dlbench.core.results", "Run": "dlbench.core.results", "RunFailed": "dlbench.runner.faults",
}  # fmt: skip

__all__ = [
    "Case",
    "ClusterSpec",
    "Interrupted",
    "MeasureConfig",
    "Plan",
    "Result",
    "Run",
    "RunFailed",
    "RunSettings",
    "UsageError",
    "__version__",
    "default_suite",
    "list_runs",
    "load_run",
    "plan",
    "plan_cases",
    "run",
    "run_on_cluster",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'dlbench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
