from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from dlbench.core.cases import Case
from dlbench.core.errors import UsageError
from dlbench.store import SCHEMA_VERSION, Store

CASE = Case("lstm", {"seq_len": 1, "batch": 1, "hidden": 4}, "numpy", "fp32", "forward")


def test_results_are_never_duplicated(store_path: Path) -> None:
    store = Store(store_path)
    store.create_run("r1", "quick", [CASE], {"measure": {}}, {"hostname": "h"})
    assert store.add_result("r1", CASE, 0, {"status": "ok", "samples_s": [0.1]})
    assert not store.add_result("r1", CASE, 0, {"status": "error"})  # the first result stands
    assert [r["status"] for r in store.results("r1")] == ["ok"]
    assert store.done_keys("r1") == {CASE.key}


def test_a_second_run_keeps_the_first(store_path: Path) -> None:
    store = Store(store_path)
    for run_id in ("r1", "r2"):
        store.create_run(run_id, "quick", [CASE], {}, {})
        store.add_result(run_id, CASE, 0, {"status": "ok"})
    store.close()
    again = Store(store_path)
    assert again.run_ids() == ["r1", "r2"]
    assert again.get_run()["run_id"] == "r2"
    assert again.get_run("r1")["plan"] == [CASE]


def test_the_latest_run_is_the_latest_measured_one_not_a_findings_only_run(store_path: Path) -> None:
    store = Store(store_path)
    store.create_run("r1", "quick", [CASE], {}, {})
    store.add_result("r1", CASE, 0, {"status": "ok"})
    store.create_run("r2", "probe", [], {}, {})
    store.add_finding("r2", "probe", "k", {})
    assert store.get_run()["run_id"] == "r1"
    assert store.get_run("r2")["suite"] == "probe"


def test_nan_is_stored_as_null(store_path: Path) -> None:
    store = Store(store_path)
    store.create_run("r", "q", [CASE], {}, {})
    store.add_result("r", CASE, 0, {"status": "ok", "x": float("nan")})
    assert store.results("r")[0]["x"] is None


def test_schema_version_is_recorded(store_path: Path) -> None:
    Store(store_path).close()
    db = sqlite3.connect(store_path)
    assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(SCHEMA_VERSION)


def test_findings_are_kept_per_run_and_kind_and_never_duplicated(store_path: Path) -> None:
    store = Store(store_path)
    for run_id in ("r1", "r2"):
        store.create_run(run_id, "probe", [], {}, {})
    assert store.add_finding("r1", "probe", "torch-cpu-fp16-linear", {"forward": "native"})
    assert not store.add_finding("r1", "probe", "torch-cpu-fp16-linear", {"forward": "wrong"})  # the first stands
    store.add_finding("r2", "maxbatch", "vgg16-torch", {"max_batch": 8})
    assert store.findings("r1", "probe") == {"torch-cpu-fp16-linear": {"forward": "native"}}
    assert store.findings("r1", "maxbatch") == {}
    assert store.latest_run_with("maxbatch") == "r2"
    assert store.latest_run_with("probe") == "r1"
    assert store.latest_run_with("compile") is None


def test_a_version_1_store_is_upgraded_in_place(store_path: Path) -> None:
    Store(store_path).close()
    db = sqlite3.connect(store_path)
    db.execute("DROP TABLE findings")
    db.execute("UPDATE meta SET value='1' WHERE key='schema_version'")
    db.commit()
    db.close()
    store = Store(store_path)
    store.create_run("r", "probe", [], {}, {})
    assert store.add_finding("r", "probe", "k", {})
    version = store.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
    assert version == str(SCHEMA_VERSION) == "3"
    assert store.add_attempt("r", Case("lstm", {"batch": 1}, "numpy", "fp32", "forward"), 1, 1, {"status": "ok"})


@pytest.mark.parametrize("content", [b"not a database at all, just text" * 100, b""])
def test_unreadable_or_foreign_store_is_a_usage_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.sqlite"
    if content:
        path.write_bytes(content)
        with pytest.raises(UsageError, match="cannot read store"):
            Store(path)
    else:
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE other (x)")
        db.commit()
        db.close()
        with pytest.raises(UsageError, match="not a dlbench store"):
            Store(path)


def test_missing_store_for_reading(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no store at"):
        Store(tmp_path / "absent.sqlite", create=False)
    assert not (tmp_path / "absent.sqlite").exists()


def test_unknown_run_names_the_latest(store_path: Path) -> None:
    store = Store(store_path)
    store.create_run("r1", "quick", [CASE], {}, {})
    with pytest.raises(UsageError, match=r"unknown run 'r9'.*latest: r1"):
        store.get_run("r9")
