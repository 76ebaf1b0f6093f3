"""dlbench: the 2016 Torch vs TensorFlow vs Theano study, re-run on today's frameworks, honestly measured.

    import dlbench
    run = dlbench.run("quick", backends=["torch", "numpy"])
    run.to_dataframe()

The public names load lazily, so a worker process (which imports `dlbench.runner.worker`, maybe in another
Python environment) pays for none of the parent's modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dlbench._version import __version__

if TYPE_CHECKING:
    from dlbench.api import Interrupted, default_suite, list_runs, load_run, plan_cases, run
    from dlbench.core.cases import Case, MeasureConfig
    from dlbench.core.errors import UsageError
    from dlbench.core.results import Result, Run

_LAZY = {
    "Interrupted": "dlbench.api", "default_suite": "dlbench.api", "list_runs": "dlbench.api",
    "load_run": "dlbench.api", "plan_cases": "dlbench.api", "run": "dlbench.api",
    "Case": "dlbench.core.cases", "MeasureConfig": "dlbench.core.cases", "UsageError": "dlbench.core.errors",
    "Result": "dlbench.core.results", "Run": "dlbench.core.results",
}  # fmt: skip

__all__ = [
    "Case",
    "Interrupted",
    "MeasureConfig",
    "Result",
    "Run",
    "UsageError",
    "__version__",
    "default_suite",
    "list_runs",
    "load_run",
    "plan_cases",
    "run",
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
