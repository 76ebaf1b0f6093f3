"""The driver of a cluster run: `dlbench run SUITE --cluster ADDRESS --on-every-node | --spread`.

Two placements:
- every-node: the whole suite on each selected node, one run per node (its fingerprint taken on that node), the
  runs grouped as one comparison (`settings.cluster.group`): the hardware evaluator's side by side.
- spread: one run, its cases shared out among nodes of one kind (one fingerprint, taken on the first): a big sweep
  finished sooner. The plan is cut into chunks of consecutive cases of one backend; each node's lane takes the next
  chunk when it is free and sweeps it (rounds, retries and verification as a local sweep has them, inside the chunk).

Each node is driven by a lane: a thread here holding a Ray actor on the node (worker.py) pinned there with
NodeAffinitySchedulingStrategy(soft=False) and holding the node's resources: all its CPUs (a figure is taken
on a machine nobody else uses), and one GPU for cuda cases (Ray sets CUDA_VISIBLE_DEVICES for it). The lane's
session (`NodeSession`) is the runner's Session with its worker side moved onto the node: `runner.sweep` drives it
unchanged, and every attempt and result is written to the one store here the moment it comes back.

Failures:
- a case that fails on its node (error, oom, timeout, failed verification) is a result like any other, never
  retried: the node answered, and the answer is deterministic;
- a node that dies (its actor is lost: the machine, its raylet or the network went) loses the case in flight and
  nothing stored. On spread, the case and the lane's unfinished chunk go back to the queue for another node of the
  kind; a case lost with its node `max_node_losses` times is recorded as an error naming the nodes. On every-node
  (its run has one machine), the case in flight is recorded as an error naming the node, and the run's other cases
  stay missing: the run ends `failed`, and `--resume RUN_ID --cluster ...` finishes it on a node of the same kind.
  Each loss is stored as a finding (kind `node-lost`) of the run.
- Ctrl-C: the actors are killed (their workers die with them), the runs end `interrupted`, resumable.
The driver owns its runs (runner.session's claim): two drivers never write the same run.
"""

from __future__ import annotations

import contextlib
import math
import queue
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlbench.cluster.nodes import Cluster, Node, parse_selector, ray_module, select
from dlbench.cluster.worker import NodeAgent
from dlbench.core.cases import Case, MeasureConfig
from dlbench.core.errors import UsageError, unknown
from dlbench.runner.session import Placement, Session, open_run, resume_run
from dlbench.runner.sweep import EventCallback, finish_document, sweep
from dlbench.store import Store

PLACEMENTS = ("every-node", "spread")
MAX_NODE_LOSSES = 2  # a case lost with its node this many times is recorded as an error
CHUNKS_PER_LANE = 3  # spread: chunks per node, so a fast node takes more of them
POLL_S = 0.2


@dataclass(frozen=True)
class ClusterSpec:
    """Where a run's cases go: the cluster's address, the placement, which nodes."""

    address: str
    placement: str = "every-node"
    nodes: str | None = None  # a selector (nodes.py)
    max_node_losses: int = MAX_NODE_LOSSES

    def check(self) -> None:
        """UsageError naming a bad placement, selector or address, before anything connects."""
        if self.placement not in PLACEMENTS:
            raise unknown("cluster placement", self.placement, PLACEMENTS)
        parse_selector(self.nodes)
        Cluster(self.address)


class NodeLost(Exception):
    """The lane's node died (its actor is gone) while it ran `case`."""

    def __init__(self, node: Node, case: Case | None, why: str) -> None:
        super().__init__(f"node {node.short} died{f' while running {case.key}' if case else ''}: {why}")
        self.node, self.case, self.why = node, case, why


class NodeSession(Session):
    """A runner session whose workers run on one node: the worker side goes to the node's agent, the store side
    stays here. It writes a run it does not own (the driver keeps its status)."""

    def __init__(self, placement: Placement, store: Store, run_id: str, agent: Any, node: Node) -> None:
        super().__init__(placement, store, run_id, owns_run=False)
        self.agent, self.node = agent, node
        self.current: Case | None = None

    def _remote(self, method: str, *args: Any) -> Any:
        ray = ray_module()
        try:
            return ray.get(getattr(self.agent, method).remote(*args))
        except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError) as exc:
            raise NodeLost(self.node, self.current, (str(exc).strip().splitlines() or ["actor lost"])[0]) from None

    def _on_node(self, document: dict[str, Any]) -> dict[str, Any]:
        document["node"] = self.node.to_dict()
        return document

    def available(self, case: Case) -> tuple[bool, str]:
        self.current = case
        ok, reason = self._remote("available", case)
        return bool(ok), str(reason)

    def measure(self, case: Case, config: MeasureConfig, timeout_s: float) -> dict[str, Any]:
        self.current = case
        return self._with_interpreter(case, self._on_node(self._remote("measure", case, config, timeout_s)))

    def verify(self, case: Case, timeout_s: float) -> dict[str, Any]:
        self.current = case
        return self._with_interpreter(case, self._on_node(self._remote("verify", case, timeout_s)))

    def call(self, case: Case, target: str, args: Any, timeout_s: float) -> dict[str, Any]:
        self.current = case
        return self._on_node(self._remote("call", case, target, dict(args), timeout_s))

    def wait_quiet(self, case: Case, config: MeasureConfig) -> float:
        return float(self._remote("wait_quiet", case, config))

    def close_workers(self) -> None:
        try:
            self.faults.extend(self._remote("close"))
        except NodeLost:
            pass


@dataclass
class _Work:
    """One run's cases still to do, shared by its lanes."""

    run_id: str
    plan: list[Case]
    chunks: list[list[Case]]
    lanes: int  # lanes still alive
    busy: int = 0
    losses: dict[str, list[str]] = field(default_factory=dict)  # case key -> the nodes it was lost with
    faults: list[str] = field(default_factory=list)

    def take(self, lock: threading.Lock) -> list[Case] | None:
        """The next chunk; None when there is none and no lane may give one back."""
        while True:
            with lock:
                if self.chunks:
                    self.busy += 1
                    return self.chunks.pop(0)
                if self.busy == 0:
                    return None
            time.sleep(POLL_S)


def chunks(cases: list[Case], lanes: int) -> list[list[Case]]:
    """Consecutive cases of one backend spec (its serving worker stays warm), at most len/(lanes·3) each; one
    chunk for one lane (a run on one machine sweeps its plan as a local run does)."""
    if lanes <= 1:
        return [list(cases)] if cases else []
    size = max(1, math.ceil(len(cases) / (lanes * CHUNKS_PER_LANE)))
    out: list[list[Case]] = []
    for case in cases:
        if out and len(out[-1]) < size and out[-1][-1].backend_spec == case.backend_spec:
            out[-1].append(case)
        else:
            out.append([case])
    return out


def _agent(node: Node, placement: Placement, device: str) -> Any:
    ray = ray_module()
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    options: dict[str, Any] = {
        "scheduling_strategy": NodeAffinitySchedulingStrategy(node.node_id, soft=False),
        "num_cpus": node.cpus, "num_gpus": 1 if device == "cuda" else 0, "max_restarts": 0,
        "max_task_retries": 0, "max_concurrency": 1,
    }  # fmt: skip
    return ray.remote(NodeAgent).options(**options).remote(placement)


@dataclass
class _Group:
    """The runs of one cluster command, and how to reach their nodes."""

    cluster: Cluster
    store_path: Path
    plan: list[Case]
    placement: Placement
    measure: MeasureConfig
    timeout_s: float
    verify: bool
    spec: ClusterSpec
    on_event: EventCallback | None
    owners: dict[str, Session] = field(default_factory=dict)  # run id -> the session that claimed it (status, owner)


def run(
    store_path: str | Path,
    suite: str,
    plan: list[Case],
    settings: dict[str, Any],
    placement: Placement,
    measure: MeasureConfig,
    timeout_s: float,
    verify: bool,
    spec: ClusterSpec,
    on_event: EventCallback | None = None,
    resume: str | None = None,
    done: frozenset[str] = frozenset(),
    on_runs: Callable[[list[str]], None] | None = None,
) -> list[str]:
    """Run a validated plan on the cluster (a new run per node, or one spread run; or finish the stored run
    `resume`): the run ids, also given to `on_runs` as soon as the runs exist. KeyboardInterrupt after Ctrl-C (or
    an on_event that raises it), with the runs stored as `interrupted`."""
    spec.check()
    device = plan[0].device if plan else "cpu"
    with Cluster(spec.address) as cluster:
        group = _Group(cluster, Path(store_path), plan, placement, measure, timeout_s, verify, spec, on_event)
        if resume is not None:
            stored = Store(store_path, readonly=True)
            try:
                where = (stored.get_run(resume)["settings"] or {}).get("cluster") or {}
            finally:
                stored.close()
            if not where:
                raise UsageError(f"run {resume} was not run on a cluster: resume it without --cluster")
            nodes = [n for n in select(cluster.nodes(), spec.nodes, device) if n.kind == where.get("kind")]
            if not nodes:
                raise UsageError(f"run {resume} ran on nodes of kind {where.get('kind')!r}: the cluster has none "
                                 "alive (that --nodes selects)")  # fmt: skip
            if where.get("placement") != "spread":  # one machine: the same one if it is still there
                same = [n for n in nodes if n.address == (where.get("node") or {}).get("address")]
                nodes = (same or nodes)[:1]
            group.owners[resume] = resume_run(store_path, resume, placement)
            agents = {n.node_id: _agent(n, placement, device) for n in nodes}
            if on_runs is not None:
                on_runs([resume])
            _drive(group, {resume: nodes}, agents, done={resume: set(done)})
            return [resume]
        nodes = select(cluster.nodes(), spec.nodes, device)
        if spec.placement == "spread" and len({n.kind for n in nodes}) > 1:
            kinds = "; ".join(sorted({n.kind for n in nodes}))
            raise UsageError(f"--spread shares one run among nodes of one kind, and these are of several ({kinds}): "
                             "choose one kind with --nodes (e.g. --nodes 'kind:...'), or use --on-every-node")
        cluster_id = "cluster-" + time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)
        agents = {n.node_id: _agent(n, placement, device) for n in nodes}
        measured = nodes if spec.placement == "every-node" else nodes[:1]  # a spread run's nodes are of one kind
        environments = ray_module().get([agents[n.node_id].fingerprint.remote() for n in measured])
        base: dict[str, Any] = {"group": cluster_id, "address": spec.address, "placement": spec.placement,
                                "selector": spec.nodes, "nodes": [n.to_dict() for n in nodes]}  # fmt: skip
        lanes: dict[str, list[Node]] = {}
        if spec.placement == "spread":
            info = {**base, "kind": nodes[0].kind}
            session = open_run(store_path, suite, plan, {**settings, "cluster": info}, placement, environments[0])
            assert session.run_id is not None
            group.owners[session.run_id], lanes[session.run_id] = session, nodes
        else:
            for node, environment in zip(nodes, environments, strict=True):
                info = {**base, "kind": node.kind, "node": node.to_dict()}
                session = open_run(store_path, suite, plan, {**settings, "cluster": info}, placement, environment)
                assert session.run_id is not None
                group.owners[session.run_id], lanes[session.run_id] = session, [node]
        if on_runs is not None:
            on_runs(list(lanes))
        _drive(group, lanes, agents, done={r: set() for r in lanes})
        return list(lanes)


@contextlib.contextmanager
def on_nodes(
    spec: ClusterSpec, store_path: str | Path, suite: str, settings: dict[str, Any], placement: Placement,
    device: str = "cpu",
) -> Iterator[list[NodeSession]]:  # fmt: skip
    """A run on each selected node (its fingerprint taken there, `settings.cluster` saying which node), each with
    the session that drives it: for commands that call worker functions on every machine rather than sweep a
    plan (`dlbench peak --cluster`). Use each session as a context manager, one after another, from this thread:
    it keeps its run's status like a local session."""
    spec.check()
    ray = ray_module()
    with Cluster(spec.address) as cluster:
        nodes = select(cluster.nodes(), spec.nodes, device)
        agents = {n.node_id: _agent(n, placement, device) for n in nodes}
        try:
            environments = ray.get([agents[n.node_id].fingerprint.remote() for n in nodes])
            group = "cluster-" + time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)
            sessions = []
            for node, environment in zip(nodes, environments, strict=True):
                info = {"group": group, "address": spec.address, "placement": "every-node", "selector": spec.nodes,
                        "kind": node.kind, "node": node.to_dict(), "nodes": [n.to_dict() for n in nodes]}
                owner = open_run(store_path, suite, [], {**settings, "cluster": info}, placement, environment)
                assert owner.store is not None and owner.run_id is not None
                session = NodeSession(placement, owner.store, owner.run_id, agents[node.node_id], node)
                session.owns_run = True  # one session per run here: it keeps the status and releases the run
                sessions.append(session)
            yield sessions
        finally:
            for agent in agents.values():
                ray.kill(agent)


def _drive(group: _Group, lanes: dict[str, list[Node]], agents: dict[str, Any], done: dict[str, set[str]]) -> None:
    """Sweep each run's cases on its nodes' lanes; events reach on_event in this thread."""
    ray = ray_module()
    lock, stop, events = threading.Lock(), threading.Event(), queue.Queue[tuple[str, Case, Any]]()
    works: dict[str, _Work] = {}
    threads: list[threading.Thread] = []
    for run_id, nodes in lanes.items():
        todo = [c for c in group.plan if c.key not in done[run_id]]
        works[run_id] = _Work(run_id, group.plan, chunks(todo, len(nodes)), len(nodes))
        owner = group.owners[run_id].store
        assert owner is not None
        owner.set_run_status(run_id, "running")
        for node in nodes:
            lane = (group, works[run_id], node, agents[node.node_id], lock, stop, events)
            threads.append(threading.Thread(target=_lane, args=lane, name=f"dlbench-lane-{node.short}", daemon=True))
    for thread in threads:
        thread.start()
    interrupted = False
    try:
        while any(t.is_alive() for t in threads) or not events.empty():
            try:
                kind, case, document = events.get(timeout=POLL_S)
            except queue.Empty:
                continue
            if group.on_event is not None:
                group.on_event(kind, case, document)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        stop.set()  # a lane whose node dies from here on was stopped, not lost
        for agent in agents.values():
            ray.kill(agent)  # its workers die with it (runner/worker.py)
        for thread in threads:
            thread.join()
        _close(group, works, interrupted)
    if interrupted:
        raise KeyboardInterrupt


def _close(group: _Group, works: dict[str, _Work], interrupted: bool) -> None:
    """Each run's status: interrupted, failed (a case left undone, a node lost, a backend given up), complete."""
    for run_id, work in works.items():
        owner = group.owners[run_id]
        store = owner.store
        assert store is not None
        missing = len(work.plan) - len(store.done_keys(run_id))
        status = "interrupted" if interrupted else "failed" if missing or work.faults else "complete"
        store.set_run_status(run_id, status)
        store.release_run(run_id)
        store.close()


def _lane(
    group: _Group, work: _Work, node: Node, agent: Any, lock: threading.Lock, stop: threading.Event,
    events: queue.Queue[tuple[str, Case, Any]],
) -> None:  # fmt: skip
    """One node's thread: take chunks and sweep them on the node until none is left, the node dies, or Ctrl-C."""
    store = Store(group.store_path)  # this thread's own connection
    session = NodeSession(group.placement, store, work.run_id, agent, node)

    def emit(kind: str, case: Case, document: dict[str, Any] | None) -> None:
        events.put((kind, case, document))

    with session:
        while not stop.is_set():
            chunk = work.take(lock)
            if chunk is None:
                break
            keys = {c.key for c in chunk}
            try:
                skip = {c.key for c in work.plan if c.key not in keys} | store.done_keys(work.run_id)
                sweep(session, work.plan, group.measure, group.timeout_s, emit, skip=skip, verify=group.verify)
            except NodeLost as lost:
                if not stop.is_set():
                    _lost(group, work, session, lost, chunk, lock, emit)
                with lock:
                    work.busy -= 1
                    work.lanes -= 1
                return
            except BaseException as exc:  # a fault of the store or the runner: the run fails, the rest is missing
                with lock:
                    work.busy -= 1
                    work.faults.append(f"{node.short}: {type(exc).__name__}: {exc}")
                    work.lanes -= 1
                return
            with lock:
                work.busy -= 1
        with lock:
            work.lanes -= 1
    with lock:
        work.faults.extend(session.faults)


def _lost(
    group: _Group, work: _Work, session: NodeSession, lost: NodeLost, chunk: list[Case], lock: threading.Lock,
    emit: Callable[[str, Case, dict[str, Any] | None], None],
) -> None:  # fmt: skip
    """A lane's node died: record the loss; give the chunk's unfinished cases back, or record the case in flight
    as an error when it may not be tried again (every-node, or lost too often, or no other lane is left)."""
    store = session.store
    assert store is not None
    done = store.done_keys(work.run_id)
    left = [c for c in chunk if c.key not in done]
    case = lost.case
    seq = {c.key: i for i, c in enumerate(work.plan)}
    with lock:
        if case is not None:
            nodes = work.losses.setdefault(case.key, [])
            nodes.append(lost.node.short)
            store.add_finding(work.run_id, "node-lost", f"{case.key}#{len(nodes)}",
                              {"case_key": case.key, "node": lost.node.to_dict(), "why": lost.why,
                               "at": time.time()})  # fmt: skip
            others = work.lanes - 1
            if group.spec.placement != "spread" or len(nodes) >= group.spec.max_node_losses or others <= 0:
                why = (f"its node died mid-case ({'; '.join(nodes)}: {lost.why})" if len(nodes) == 1 else
                       f"lost with its node {len(nodes)} times ({'; '.join(nodes)}; last: {lost.why})")
                if group.spec.placement == "spread" and others <= 0 and len(nodes) < group.spec.max_node_losses:
                    why += "; no other node of its kind was left"
                document = finish_document(case, {"status": "error", "error": why, "node": lost.node.to_dict()},
                                           group.measure, group.timeout_s)  # fmt: skip
                if store.add_result(work.run_id, case, seq[case.key], document):
                    emit("result", case, document)
                left = [c for c in left if c.key != case.key]
        if left and group.spec.placement == "spread":
            work.chunks.insert(0, left)
        elif left:
            work.faults.append(f"node {lost.node.short} died; {len(left)} cases not run")


__all__ = ["MAX_NODE_LOSSES", "PLACEMENTS", "ClusterSpec", "NodeLost", "NodeSession", "chunks", "on_nodes", "run"]
