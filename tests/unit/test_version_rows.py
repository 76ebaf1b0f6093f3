"""One backend at two versions (two runs pooled, or two envs of one run) stays two rows, each labelled with its
version; the same version measured twice stays one row (the later run's); and compare takes one backend of a run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import synthetic
from dlbench.core.cases import Case
from dlbench.core.errors import UsageError
from dlbench.core.results import Run
from dlbench.report.compare import compare_runs, select_backend
from dlbench.report.merge import merge_runs
from dlbench.runs.tables import lstm_table

SIZE = {"seq_len": 4, "batch": 2, "hidden": 8}


def plan(env: str = "") -> list[Case]:
    return [Case("lstm", SIZE, "numpy", "fp32", mode, env=env) for mode in ("forward", "train")]


def make(tmp_path: Path, run_id: str, cases: list[Case], version: dict[str, str],
         timeout: set[str] | None = None) -> Run:  # fmt: skip
    """`version`: backend spec → the NumPy version its worker reported; `timeout`: case keys that timed out (a
    timed-out worker reports no versions)."""

    def outcome(case: Case) -> dict[str, Any]:
        if timeout and case.key in timeout:
            return {"status": "timeout", "error": "no result", "versions": {"numpy": ""}}  # says no version
        return {"speed": 100.0, "seed": len(run_id), "versions": {"numpy": version[case.backend_spec]}}

    return synthetic.make_run(tmp_path / "s.sqlite", cases, run_id=run_id, outcome=outcome)


def labels(run: Run) -> list[str]:
    table = lstm_table(run)
    assert table is not None
    return [row[0] for row in table.rows]


def test_pooled_runs_at_two_versions_are_two_labelled_rows(tmp_path: Path) -> None:
    old = make(tmp_path, "old", plan(), {"numpy": "1.23.5"})
    new = make(tmp_path, "new", plan(), {"numpy": "2.3.5"})
    merged, notes = merge_runs([old, new])
    assert len(merged.results) == 4
    assert sorted(labels(merged)) == ["NumPy 1.23.5", "NumPy 2.3.5"]
    assert any("kept apart" in note and "numpy (1.23.5, 2.3.5)" in note for note in notes)


def test_the_same_version_twice_is_one_row_from_the_later_run(tmp_path: Path) -> None:
    first = make(tmp_path, "first", plan(), {"numpy": "2.3.5"})
    second = make(tmp_path, "second", plan(), {"numpy": "2.3.5"})
    merged, notes = merge_runs([first, second])
    assert labels(merged) == ["NumPy 2.3.5"] and {r.document["case"]["seed"] for r in merged.results} == {0}
    assert all(r.document is s.document for r, s in zip(merged.results, second.results, strict=True))
    assert any("later run's result is shown" in note for note in notes)


def test_two_envs_of_one_run_are_two_rows_and_a_timeout_keeps_its_row(tmp_path: Path) -> None:
    cases = plan() + plan("old")
    timed_out = {cases[3].key}  # numpy@old train: its worker never said which version it ran
    run = make(tmp_path, "both", cases, {"numpy": "2.3.5", "numpy@old": "1.23.5"}, timeout=timed_out)
    assert labels(run) == ["NumPy 2.3.5", "NumPy 1.23.5 [old]"]
    table = lstm_table(run)
    assert table is not None and table.rows[1][5].startswith("timeout")


def test_compare_takes_one_backend_of_a_run(tmp_path: Path) -> None:
    run = make(tmp_path, "both", plan() + plan("old"), {"numpy": "2.3.5", "numpy@old": "1.23.5"})
    result = compare_runs(select_backend(run, "numpy@old"), select_backend(run, "numpy"))
    assert len(result.rows) == 2 and all(row.a and row.b for row in result.rows)
    assert result.version_changes == ["numpy 1.23.5 → 2.3.5 (backend numpy@old → numpy)"]
    with pytest.raises(UsageError, match=r"unknown backend 'torch' in run both \(allowed: numpy, numpy@old\)"):
        select_backend(run, "torch")


def test_the_recommendation_ranks_two_versions_apart(tmp_path: Path) -> None:
    from dlbench.report.recommend import label, regimes

    merged, _ = merge_runs([make(tmp_path, "old", plan(), {"numpy": "1.23.5"}),
                            make(tmp_path, "new", plan(), {"numpy": "2.3.5"})])  # fmt: skip
    for regime in regimes(merged):
        assert sorted(label(backend) for backend, _ in regime.ranking) == ["NumPy 1.23.5", "NumPy 2.3.5"]
