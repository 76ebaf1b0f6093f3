"""The part of a cluster run that lives on a node: a Ray actor holding a runner session of its own.

The driver's lane for a node (api.py) calls these methods; each runs one case, a verification or a call through
`Session`, exactly as a local run does: a worker process of its own per case, dlbench's worker protocol, its
timeout, OOM and crash classification, the disturbance watch of the node's CPUs. So a figure taken on a node is
taken by the same code as a figure taken locally; only the driver, the store and the schedule are elsewhere.

Managed envs (Theano's, `torch@old`) are looked up on the node by name (`dlbench envs create NAME` there, once):
the driver's paths mean nothing on another machine. An env the node lacks makes its cases `unsupported`, with
the command that creates it. Nothing is installed on a node by dlbench (Ray's runtime_env could, but an env that
installs packages while a suite runs would time the install's neighbours; see README, "On a cluster").
Worker-side module: imported where Ray runs the actor; imports no framework.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from typing import Any

from dlbench.backends import env_vars, framework_modules
from dlbench.core.cases import Case, MeasureConfig
from dlbench.measure.env import fingerprint
from dlbench.runner.environments import find_env
from dlbench.runner.interpreters import Interpreter, environments_fingerprint
from dlbench.runner.session import Placement, Session


def node_placement(placement: Placement) -> tuple[Placement, dict[str, str]]:
    """The driver's placement as this node runs it: each managed env re-found here by name (a --python path is
    kept as given: the user named it for every node). Also {spec: why} for envs this node lacks."""
    interpreters: dict[str, Interpreter] = {}
    missing: dict[str, str] = {}
    for spec, interpreter in placement.interpreters.items():
        if not interpreter.env_name:
            interpreters[spec] = interpreter
            continue
        env = find_env(interpreter.env_name)
        if env is None:
            missing[spec] = (f"managed env {interpreter.env_name!r} is not on node {socket.gethostname()}: create it "
                             f"there with `dlbench envs create {interpreter.env_name}`")  # fmt: skip
        else:
            interpreters[spec] = dataclasses.replace(interpreter, python=str(env.python))
    return dataclasses.replace(placement, interpreters=interpreters), missing


def node_environment() -> None:
    """Give this process (and so the workers it starts) the node's own environment again. Ray sets OMP_NUM_THREADS
    to an actor's CPU count where the node's environment does not set it (ray._private.utils.
    set_omp_num_threads_if_unset); a local run leaves it unset and each framework picks its threads, and an
    explicit setting changed the figures (a numpy LSTM step 0.80x, torch 0.77x the local time, measured side by
    side). The raylet's environment (/proc, Linux) says whether the node set it; elsewhere it stays as Ray left it
    (the fingerprint records it)."""
    try:
        with open(f"/proc/{int(os.environ['RAY_RAYLET_PID'])}/environ", "rb") as f:
            raylet = f.read().split(b"\0")
    except (KeyError, ValueError, OSError):
        return
    if not any(entry.startswith(b"OMP_NUM_THREADS=") for entry in raylet):
        os.environ.pop("OMP_NUM_THREADS", None)


class NodeAgent:
    """One node's runner session (no store: results go back to the driver, which writes them)."""

    def __init__(self, placement: Placement) -> None:
        node_environment()
        here, self.missing = node_placement(placement)
        self.session = Session(here).__enter__()

    def where(self) -> dict[str, Any]:
        """Which machine and process this is (the driver records it with every result)."""
        return {"host": socket.gethostname(), "pid": os.getpid()}

    def fingerprint(self) -> dict[str, Any]:
        environment = fingerprint(framework_modules(), env_vars())
        if self.session.placement.interpreters:
            environment["environments"] = environments_fingerprint(self.session.placement.interpreters)
        return environment

    def available(self, case: Case) -> tuple[bool, str]:
        if case.backend_spec in self.missing:
            return False, self.missing[case.backend_spec]
        return self.session.available(case)

    def measure(self, case: Case, config: MeasureConfig, timeout_s: float) -> dict[str, Any]:
        return self._unsupported(case) or self.session.measure(case, config, timeout_s)

    def verify(self, case: Case, timeout_s: float) -> dict[str, Any]:
        return self.session.verify(case, timeout_s)

    def call(self, case: Case, target: str, args: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        return self._unsupported(case) or self.session.call(case, target, args, timeout_s)

    def wait_quiet(self, case: Case, config: MeasureConfig) -> float:
        return self.session.wait_quiet(case, config)

    def close(self) -> list[str]:
        """Close the workers; the faults they reported (a backend's serving worker that kept dying)."""
        self.session.close_workers()
        return list(self.session.faults)

    def _unsupported(self, case: Case) -> dict[str, Any] | None:
        if case.backend_spec in self.missing:
            return {"status": "unsupported", "error": self.missing[case.backend_spec]}
        return None


__all__ = ["NodeAgent", "node_environment", "node_placement"]
