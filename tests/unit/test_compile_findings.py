"""`dlbench compile`: how findings are shaped, stored, tabled and reported, and its usage errors. No worker runs
here (tests/integration/test_compile.py runs real ones): the documents below have the worker's shape."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dlbench.backends.base import Backend
from dlbench.cli import main
from dlbench.compile import section as compile_section
from dlbench.compile.api import KIND, finding_document, finding_key, start_entry
from dlbench.compile.table import finding_rows, phases_text
from dlbench.core.cases import Case
from dlbench.core.results import Run
from dlbench.report.sections import SECTIONS
from dlbench.store import Store

CASE = Case("lstm", {"seq_len": 5, "batch": 2, "hidden": 8}, "jax", "fp32", "train",
            options={"cache_dir": "/tmp/x"})  # fmt: skip


def raw(first: float, phases: dict[str, float], cache: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    """A worker's measure document, as run_case returns it (the keys a compile finding keeps, and others)."""
    return {"status": "ok", "import_s": 1.5, "setup_s": 0.25, "first_step_s": first, "samples_s": [0.001],
            "first_step_phases": phases, "compile_cache": cache or {}, "pid": 7, "memory": {"rss_peak_bytes": 1},
            **extra}  # fmt: skip


def test_finding_key_leaves_out_the_cache_folder() -> None:
    assert finding_key(CASE) == "lstm-seq_len=5,batch=2,hidden=8-jax-fp32-train-cpu"


def test_start_entry_keeps_the_first_step_and_drops_the_rest() -> None:
    entry = start_entry(raw(0.5, {"compile_s": 0.4}))
    assert entry == {"status": "ok", "import_s": 1.5, "setup_s": 0.25, "first_step_s": 0.5, "pid": 7,
                     "first_step_phases": {"compile_s": 0.4}, "second_step_s": 0.001}  # fmt: skip
    failed = start_entry({"status": "timeout", "error": "no result within the 5 s timeout"})
    assert failed["status"] == "timeout" and "5 s" in failed["error"] and failed["first_step_phases"] == {}


def test_phases_text_shows_setup_phases_apart_and_the_rest_of_the_first_step() -> None:
    text = phases_text({"prepare_graph_s": 0.1, "rewrite_s": 1.0, "link_s": 0.5, "first_execute_s": 0.25}, 2.0)
    assert text == "graph (in setup) 0.100 · rewrite 1.00 · link 0.500 · first_execute 0.250 · other 0.250"
    assert phases_text({}, 2.0) == "—"


def test_rows_compare_warm_with_cold_and_say_when_there_is_no_cache() -> None:
    cache = {"what": "JAX persistent compilation cache", "dir": "/tmp/x/jax"}
    cached = finding_document(CASE, start_entry(raw(2.0, {"compile_s": 1.5}, cache)),
                              start_entry(raw(0.5, {"compile_s": 0.1}, cache)), (3, 3 * 1024 * 1024))  # fmt: skip
    assert cached["case_key"] == finding_key(CASE) and "cache_dir" not in cached["case"]["options"]
    assert cached["cache"]["files_after_cold"] == 3
    plain = Case("lstm", CASE.size, "torch", "fp32", "forward")
    uncached = finding_document(plain, start_entry(raw(0.2, {"first_execute_s": 0.19})),
                                start_entry(raw(0.3, {"first_execute_s": 0.29})), (0, 0))  # fmt: skip
    assert uncached["cache"] == {}
    rows, classes, notes = finding_rows([cached, uncached])
    assert [r[2] for r in rows] == ["cold", "warm", "cold", "warm"]
    assert rows[0][3].startswith("empty: JAX") and rows[1][3] == "filled by cold: 3 files, 3.0 MiB"
    assert rows[1][9] == "0.25" and rows[0][9] == ""  # warm first step ÷ cold
    assert rows[2][3] == rows[3][3] == "none (no persistent cache)"
    assert classes == [{}, {}, {}, {}] and notes == []


def test_failures_become_numbered_notes() -> None:
    cold = start_entry({"status": "error", "error": "RuntimeError: no compiler\nmore"})
    warm = {"status": "not run", "error": "the cold start ended error"}
    rows, classes, notes = finding_rows([finding_document(CASE, cold, warm, (0, 0))])
    assert rows[0][6] == "error [1]" and rows[1][6] == "not run [2]"
    assert classes == [{6: "bad"}, {6: "neutral"}]
    assert notes == [
        "[1] jax cold: error: RuntimeError: no compiler",
        "[2] jax warm: not run: the cold start ended error",
    ]


def _run(store: Store, run_id: str, results: list[dict[str, Any]] | None = None) -> Run:
    store.create_run(run_id, "compile-lstm", [CASE], {}, {})
    return Run(run_id, "compile-lstm", "complete", [CASE], [], {}, {}, str(store.path))


def test_report_section_shows_the_stored_findings(tmp_path: Path) -> None:
    assert compile_section.build in SECTIONS
    store = Store(tmp_path / "s.sqlite")
    run = _run(store, "r1")
    assert compile_section.build(store, [run]) is None  # nothing to show: no section
    document = finding_document(CASE, start_entry(raw(2.0, {"compile_s": 1.5})), start_entry(raw(1.9, {})), (0, 0))
    store.add_finding("r1", KIND, document["case_key"], document)
    section = compile_section.build(store, [run])
    assert section is not None and section.source_runs == ["r1"]
    (table,) = section.tables
    assert table.rows[0][0] == "jax" and "compile 1.50" in table.rows[0][7]
    assert table.cases[0][6] == document["case_key"]


def test_report_section_shows_phases_of_ordinary_results(tmp_path: Path) -> None:
    from dlbench.core.results import Result

    store = Store(tmp_path / "s.sqlite")
    run = _run(store, "r1")
    plain = Case("lstm", CASE.size, "jax", "fp32", "train")
    doc = {"case": plain.to_dict(), "status": "ok", "setup_s": 0.2, "first_step_s": 1.0,
           "first_step_phases": {"compile_s": 0.75}, "stats": {"median_s": 0.001}}  # fmt: skip
    run.results.append(Result.from_document(doc))
    section = compile_section.build(store, [run])
    assert section is not None and section.source_runs == []
    (table,) = section.tables
    assert table.rows == [["jax", "lstm seq_len=5,batch=2,hidden=8 fp32 train cpu", "0.200", "1.00",
                           "compile 0.750 · other 0.250", "0.001"]]  # fmt: skip


def test_base_backend_phases_and_cache() -> None:
    backend = Backend("cpu", {"cache_dir": "/tmp/c", "other": 1})
    assert backend.cache_dir == "/tmp/c" and backend.options == {"other": 1}  # taken out before a backend checks
    assert backend.compile_cache() == {} and backend.first_step_phases() == {}
    calls: list[int] = []

    def count() -> int:
        calls.append(1)
        return len(calls)

    step = backend.time_first_call(count)
    assert [step(), step(), step()] == [1, 2, 3]  # the same step, every call
    assert list(backend.first_step_phases()) == ["first_execute_s"]  # only the first call was timed


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["compile", "nosuch"], "unknown workload 'nosuch' (allowed: "),
        (["compile", "lstm", "--backends", "nosuch"], "unknown backend 'nosuch' (allowed: "),
        (["compile", "lstm", "--set", "hidden=0"], "bad size hidden=0 for lstm"),
        (["compile", "lstm", "--modes", "sideways"], "unknown mode 'sideways'"),
        (["compile", "lstm", "--timeout", "0"], "argument --timeout: expected a number of seconds > 0, got '0'"),
        (["compile", "lstm", "--cpus", "999"], "bad --cpus 999"),
    ],
)
def test_usage_errors(argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "s.sqlite"
    assert main([*argv, "--store", str(store)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert not store.exists()  # nothing written
