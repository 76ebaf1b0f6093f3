"""`dlbench run --cluster` on a local multi-node Ray cluster (ray.cluster_utils.Cluster: a head with no CPUs and
worker nodes on this machine, each a raylet of its own that can be killed). Real Ray, real dlbench workers, the
numpy and torch backends at tiny sizes. Skipped, with the reason, where Ray is not installed or cannot start."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from dlbench.core.errors import UsageError
from dlbench.report import machines
from dlbench.runs import api
from dlbench.store import Store

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'dlbench[ray]'): the cluster tests skip")
cluster_utils = pytest.importorskip("ray.cluster_utils")

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::FutureWarning"), pytest.mark.filterwarnings("ignore::UserWarning"),
              pytest.mark.filterwarnings("ignore::ResourceWarning"),
              pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]  # fmt: skip

TINY = {"seq_len": [4], "batch": [2, 4], "hidden": [8]}
QUICK = {"min_time_s": 0.05, "repeat": 1, "retries": 0}


class Local:
    """A local Ray cluster: two worker nodes of one kind (one with the custom resource `first`, for a one-node
    selection), more added on demand."""

    def __init__(self) -> None:
        # a dead raylet noticed in about a second, not Ray's default ~15 s
        fast = {"health_check_period_ms": 300, "health_check_failure_threshold": 3, "health_check_timeout_ms": 300}
        self.cluster = cluster_utils.Cluster(initialize_head=True, head_node_args={
            "num_cpus": 0, "include_dashboard": False, "_system_config": fast})
        self.nodes = [self.cluster.add_node(num_cpus=1, resources={"first": 1}), self.cluster.add_node(num_cpus=1)]
        self.cluster.wait_for_nodes()

    @property
    def address(self) -> str:
        return str(self.cluster.address)

    def ensure_two(self) -> None:
        while len([n for n in self.nodes if n is not None]) < 2:
            self.nodes.append(self.cluster.add_node(num_cpus=1))
        self.cluster.wait_for_nodes()

    def kill_second(self) -> None:
        node = self.nodes.pop(1)
        self.cluster.remove_node(node, allow_graceful=False)


@pytest.fixture(scope="module")
def local() -> Iterator[Local]:
    try:
        started = Local()
    except Exception as exc:  # noqa: BLE001 - any reason Ray cannot start here is a reason to skip
        pytest.skip(f"a local Ray cluster cannot start here: {type(exc).__name__}: {exc}")
    yield started
    if ray.is_initialized():
        ray.shutdown()
    started.cluster.shutdown()


def _plan(store: Any, backends: list[str], sets: dict[str, list[int]] | None = None, **more: Any) -> api.Plan:
    return api.plan("lstm", backends=backends, sets=sets or TINY, modes=["forward"], store=str(store), measure=QUICK,
                    **more)  # fmt: skip


def _attempt_ids(store: Any, run_id: str) -> list[tuple[str, int, int]]:
    return [(a["case_key"], a["repetition"], a["attempt"]) for a in api.load_attempts(run_id, str(store))]


def _findings(store: Any, run_id: str, kind: str) -> dict[str, dict[str, Any]]:
    db = Store(store, readonly=True)
    try:
        return db.findings(run_id, kind)
    finally:
        db.close()


def test_every_node_runs_the_suite_on_each_node_and_one_node_matches_a_local_run(local: Local, tmp_path: Any) -> None:
    store = tmp_path / "s.sqlite"
    runs = api.run_on_cluster(_plan(store, ["numpy", "torch"]), api.ClusterSpec(local.address, "every-node"))
    assert len(runs) == 2 and all(r.status == "complete" for r in runs)
    infos = [r.settings["cluster"] for r in runs]
    assert len({i["group"] for i in infos}) == 1 and len({i["node"]["node_id"] for i in infos}) == 2
    for run in runs:  # each run's results were taken on its own node
        assert {r.document["node"]["node_id"] for r in run.results} == {run.settings["cluster"]["node"]["node_id"]}
    db = Store(store, readonly=True)
    try:  # the report shows the two machines side by side: a row per case, a column group per machine
        section = machines.build(db, runs)
    finally:
        db.close()
    assert section is not None and len(section.tables[0].rows) == 4 and len(section.tables[0].columns) == 5 + 2 * 3

    one = api.run_on_cluster(_plan(store, ["numpy", "torch"]), api.ClusterSpec(local.address, nodes="resource:first"))
    here = api.run(_plan(store, ["numpy", "torch"]))
    assert len(one) == 1 and one[0].status == "complete" and here.status == "complete"
    on_cluster = {r.case.key: r for r in one[0].results}
    locally = {r.case.key: r for r in here.results}
    assert on_cluster.keys() == locally.keys() and len(locally) == 4
    for key, result in locally.items():  # the same code timed both: side by side, within a factor of 3
        ratio = on_cluster[key].document["stats"]["median_s"] / result.document["stats"]["median_s"]
        assert 1 / 3 < ratio < 3, (key, ratio)


def test_spread_shares_one_run_among_the_nodes(local: Local, tmp_path: Any) -> None:
    store = tmp_path / "s.sqlite"
    sets = {"seq_len": [4], "batch": [1, 2, 3, 4, 5, 6], "hidden": [8]}
    (run,) = api.run_on_cluster(_plan(store, ["numpy"], sets), api.ClusterSpec(local.address, "spread"))
    assert run.status == "complete" and len(run.results) == 6 and all(r.status == "ok" for r in run.results)
    assert len({r.document["node"]["node_id"] for r in run.results}) == 2  # both nodes took cases
    ids = _attempt_ids(store, run.run_id)
    assert len(ids) == len(set(ids))


def test_an_oom_is_a_result_and_is_not_retried(local: Local, tmp_path: Any) -> None:
    store = tmp_path / "s.sqlite"
    plan = _plan(store, ["numpy"], {"seq_len": [4], "batch": [2], "hidden": [8]}, options={"fault": "oom"},
                 verify=False)  # fmt: skip
    (run,) = api.run_on_cluster(plan, api.ClusterSpec(local.address, "spread"))
    (result,) = run.results
    assert result.status == "oom"
    assert len(_attempt_ids(store, run.run_id)) == 1 and not _findings(store, run.run_id, "node-lost")


def test_a_node_killed_mid_case_loses_nothing_and_duplicates_nothing(local: Local, tmp_path: Any) -> None:
    local.ensure_two()
    store = tmp_path / "s.sqlite"
    sets = {"seq_len": [4], "batch": [1, 2, 3, 4], "hidden": [8]}
    plan = _plan(store, ["numpy"], sets, options={"sleep_s": 0.1}, verify=False)  # ~1.2 s a case
    starts: list[str] = []

    def on_event(kind: str, case: Any, document: Any) -> None:
        if kind == "start":
            starts.append(case.key)
            if len(starts) == 3:  # both nodes are mid-case: kill one
                threading.Thread(target=local.kill_second).start()

    (run,) = api.run_on_cluster(plan, api.ClusterSpec(local.address, "spread"), on_event=on_event)
    lost = _findings(store, run.run_id, "node-lost")
    assert lost, "the killed node was running a case"
    assert run.status == "complete" and len(run.results) == 4 and all(r.status == "ok" for r in run.results)
    ids = _attempt_ids(store, run.run_id)
    assert len(ids) == len(set(ids))
    lost_keys = {f["case_key"] for f in lost.values()}
    (survivor,) = {r.document["node"]["node_id"] for r in run.results if r.case.key in lost_keys}
    assert survivor not in {f["node"]["node_id"] for f in lost.values()}  # retried on the other node

    # on every node, a run has one machine: the case in flight is an error naming the node, the run fails
    local.ensure_two()
    store = tmp_path / "every.sqlite"
    starts.clear()
    runs = api.run_on_cluster(_plan(store, ["numpy"], sets, options={"sleep_s": 0.1}, verify=False),
                              api.ClusterSpec(local.address, "every-node"), on_event=on_event)  # fmt: skip
    failed = [r for r in runs if r.status == "failed"]
    assert len(failed) == 1 and [r for r in runs if r.status == "complete"]
    errors = [r for r in failed[0].results if r.status == "error"]
    assert len(errors) == 1 and "died mid-case" in (errors[0].error or "")
    local.ensure_two()


def test_an_interrupted_cluster_run_resumes(local: Local, tmp_path: Any) -> None:
    local.ensure_two()
    store = tmp_path / "s.sqlite"
    sets = {"seq_len": [4], "batch": [1, 2, 3, 4], "hidden": [8]}

    def stop(kind: str, case: Any, document: Any) -> None:
        if kind == "result":
            raise KeyboardInterrupt

    with pytest.raises(api.Interrupted) as caught:
        api.run_on_cluster(_plan(store, ["numpy"], sets), api.ClusterSpec(local.address, "spread"), on_event=stop)
    run_id = caught.value.run.run_id
    first = api.load_run(run_id, str(store))
    assert first.status == "interrupted" and 1 <= len(first.results) < 4
    with pytest.raises(UsageError, match="ran on a cluster"):
        api.run(api.plan(resume=run_id, store=str(store)))
    (done,) = api.run_on_cluster(api.plan(resume=run_id, store=str(store)), api.ClusterSpec(local.address))
    assert done.run_id == run_id and done.status == "complete" and len(done.results) == 4
    kept = {r.case.key: r.document.get("pid") for r in first.results}
    assert all(r.document.get("pid") == kept[r.case.key] for r in done.results if r.case.key in kept)  # not re-measured
    ids = _attempt_ids(store, run_id)
    assert len(ids) == len(set(ids))


def test_spread_refuses_nodes_of_several_kinds(local: Local, tmp_path: Any) -> None:
    local.ensure_two()
    extra = local.cluster.add_node(num_cpus=2)
    local.cluster.wait_for_nodes()
    try:
        with pytest.raises(UsageError, match="nodes of one kind"):
            api.run_on_cluster(_plan(tmp_path / "s.sqlite", ["numpy"]), api.ClusterSpec(local.address, "spread"))
        with pytest.raises(UsageError, match="no node of the cluster matches"):
            api.run_on_cluster(_plan(tmp_path / "s.sqlite", ["numpy"]),
                               api.ClusterSpec(local.address, nodes="accelerator:H200"))  # fmt: skip
    finally:
        local.cluster.remove_node(extra)


def test_peak_on_every_node_gives_each_machine_its_own_percent(local: Local, tmp_path: Any) -> None:
    from dlbench.peak import api as peak_api

    local.ensure_two()
    store = tmp_path / "s.sqlite"
    peaks = peak_api.run_on_cluster(api.ClusterSpec(local.address), frameworks=["numpy"], seconds=0.3, store=store)
    assert len(peaks) == 2 and all(any(f.get("status") == "ok" for f in found) for _, found in peaks)
    runs = api.run_on_cluster(_plan(store, ["numpy"]), api.ClusterSpec(local.address))
    db = Store(store, readonly=True)
    try:
        section = machines.build(db, runs)
    finally:
        db.close()
    assert section is not None
    shares = [row[6] for row in section.tables[0].rows] + [row[9] for row in section.tables[0].rows]
    assert shares and all(s.endswith("%") for s in shares), shares
