"""Suites: named lists of cases, kept as TOML data files in this folder (or any path a user gives); suite.py reads
and checks them, plan.py turns a suite (or one workload) and the backends to run into the cases of a run."""

from dlbench.suites.plan import default_backends, default_suite, plan_cases
from dlbench.suites.suite import Experiment, Suite, load_suite, parse_suite, suite_names

__all__ = ["Experiment", "Suite", "default_backends", "default_suite", "load_suite", "parse_suite", "plan_cases",
           "suite_names"]  # fmt: skip
