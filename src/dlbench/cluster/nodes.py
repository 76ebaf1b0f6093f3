"""Connecting to a Ray cluster and choosing its nodes.

- `connect("auto" | "HOST:PORT" | "ray://HOST:PORT" | "local:N")`: ray.init on an existing cluster, or, for trying
  it on one machine, a local cluster of N nodes (`ray.cluster_utils.Cluster`: a head with no CPUs, so nothing
  runs beside the driver, and N nodes splitting this machine's CPUs; on one machine their figures share cores).
- A node's `kind`: its accelerator type (Ray's `accelerator_type:NAME` resource), GPU count and CPU count. `--spread`
  needs nodes of one kind (they share one run and one fingerprint); `--on-every-node` runs the suite once per node.
- `--nodes SELECTOR`: comma-separated terms, all of which a node must match: `accelerator:NAME`, `resource:NAME`
  (a custom resource the node was started with: `ray start --resources '{"NAME": 1}'`), `label:KEY=VALUE`,
  `address:IP`, `kind:TEXT` (as `kind` prints it).
Ray is imported here only, and only when a cluster is asked for: `pip install 'dlbench[ray]'`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from dlbench.core.errors import UsageError

RAY_INSTALL = "pip install 'dlbench[ray]'"
SELECTOR_TERMS = ("accelerator", "resource", "label", "address", "kind")
LOCAL_PATTERN = re.compile(r"^local(?::(\d+))?$")
MAX_LOCAL_NODES = 16


@dataclass(frozen=True)
class Node:
    """One alive node of the cluster, as Ray describes it."""

    node_id: str
    address: str
    resources: dict[str, float] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def accelerators(self) -> list[str]:
        return sorted(k.split(":", 1)[1] for k in self.resources if k.startswith("accelerator_type:"))

    @property
    def cpus(self) -> int:
        return int(self.resources.get("CPU", 0))

    @property
    def gpus(self) -> int:
        return int(self.resources.get("GPU", 0))

    @property
    def kind(self) -> str:
        gpus = f"{self.gpus}x {'+'.join(self.accelerators) or 'GPU'}, " if self.gpus else ""
        return f"{gpus}{self.cpus} CPU"

    @property
    def short(self) -> str:
        return f"{self.address} ({self.node_id[:8]})"

    def to_dict(self) -> dict[str, Any]:
        return {"node_id": self.node_id, "address": self.address, "kind": self.kind, "cpus": self.cpus,
                "gpus": self.gpus, "accelerators": self.accelerators}  # fmt: skip


def parse_selector(text: str | None) -> list[tuple[str, str]]:
    """`--nodes` as (term, value) pairs; UsageError naming a bad term."""
    if not text:
        return []
    terms = []
    for part in text.split(","):
        name, sep, value = part.strip().partition(":")
        if not sep or name not in SELECTOR_TERMS or not value or (name == "label" and "=" not in value):
            raise UsageError(f"bad --nodes term {part.strip()!r}: allowed are accelerator:NAME, resource:NAME, "
                             "label:KEY=VALUE, address:IP, kind:TEXT, joined by commas")  # fmt: skip
        terms.append((name, value))
    return terms


def matches(node: Node, terms: list[tuple[str, str]]) -> bool:
    for name, value in terms:
        if name == "accelerator" and value not in node.accelerators:
            return False
        if name == "resource" and node.resources.get(value, 0) <= 0:
            return False
        if name == "label":
            key, _, want = value.partition("=")
            if node.labels.get(key) != want:
                return False
        if name == "address" and node.address != value:
            return False
        if name == "kind" and node.kind != value:
            return False
    return True


def ray_module() -> Any:
    """Ray, or UsageError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise UsageError(f"--cluster needs Ray, which is not installed: {RAY_INSTALL}") from None
    return ray


class Cluster:
    """A connection to a Ray cluster (and the local cluster it started, if any). Use as a context manager."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.local: Any = None  # the local cluster started for local:N
        match = LOCAL_PATTERN.match(address)
        if match is None and not address:
            raise UsageError("bad --cluster '': give auto, HOST:PORT, ray://HOST:PORT or local:N")
        self.local_nodes = int(match.group(1) or 2) if match else 0
        if match and not 1 <= self.local_nodes <= MAX_LOCAL_NODES:
            raise UsageError(f"bad --cluster {address!r}: local:N takes 1 to {MAX_LOCAL_NODES} nodes")

    def __enter__(self) -> Cluster:
        ray = ray_module()
        quiet: dict[str, Any] = {"logging_level": "ERROR", "log_to_driver": False}
        try:
            if self.local_nodes:
                from ray.cluster_utils import Cluster as LocalCluster

                head = {"num_cpus": 0, "include_dashboard": False}  # nothing runs beside the driver
                self.local = LocalCluster(initialize_head=True, head_node_args=head)
                per_node = max(1, (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
                               // self.local_nodes)  # fmt: skip
                for _ in range(self.local_nodes):
                    self.local.add_node(num_cpus=per_node)
                self.local.wait_for_nodes()
                ray.init(address=self.local.address, **quiet)
            else:
                ray.init(address=self.address, **quiet)
        except ConnectionError as exc:
            self.__exit__(None, None, None)
            raise UsageError(f"bad --cluster {self.address!r}: no Ray cluster answers there ({exc})") from None
        return self

    def __exit__(self, *exc: object) -> None:
        ray = ray_module()
        if ray.is_initialized():
            ray.shutdown()
        if self.local is not None:
            self.local.shutdown()
            self.local = None

    def nodes(self) -> list[Node]:
        """The alive nodes that can run something (a head started with no CPUs and no GPUs is left out)."""
        ray = ray_module()
        found = [Node(n["NodeID"], n["NodeManagerAddress"], dict(n.get("Resources") or {}), dict(n.get("Labels") or {}))
                 for n in ray.nodes() if n.get("Alive")]  # fmt: skip
        return [n for n in found if n.cpus > 0 or n.gpus > 0]

    def alive(self, node_id: str) -> bool:
        return any(n.node_id == node_id for n in self.nodes())


def select(nodes: list[Node], selector: str | None, device: str) -> list[Node]:
    """The nodes a selector picks that can run the device's cases; UsageError when none does."""
    terms = parse_selector(selector)
    chosen = [n for n in nodes if matches(n, terms) and (device != "cuda" or n.gpus > 0)]
    if not chosen:
        have = "; ".join(sorted({f"{n.short}: {n.kind}" for n in nodes})) or "no node with CPUs or GPUs"
        what = f"--nodes {selector!r}" if selector else f"{device} cases"
        raise UsageError(f"no node of the cluster matches {what}: it has {have}")
    return chosen


__all__ = ["RAY_INSTALL", "SELECTOR_TERMS", "Cluster", "Node", "matches", "parse_selector", "ray_module", "select"]
