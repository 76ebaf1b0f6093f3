"""The max-batch table and the fp16-versus-fp32 sentences, from findings documents as `dlbench maxbatch`
stores them (synthetic here: this tests what the report says about findings, not a measurement)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlbench.maxbatch.section import build, findings_table, fp16_sentences, per_sample_fit
from dlbench.store import Store

MIB = 2**20


def finding(precision: str, per_sample_mib: int, largest: int | None, verdict: str = "found",
            step_s: float = 1.0, **extra: Any) -> dict[str, Any]:  # fmt: skip
    probes = [{"batch": b, "status": "ok", "memory_bytes": (300 + per_sample_mib * b) * MIB, "step_s": step_s * b}
              for b in (1, 2, 4) if largest and b <= largest]  # fmt: skip
    doc = {"workload": "vgg16", "size": {"image": 32}, "backend": "torch", "precision": precision, "mode": "train",
           "device": "cpu", "verdict": verdict, "largest_ok": largest, "probes": probes,
           "smallest_oom": largest + 1 if largest and verdict == "found" else None,
           "memory_limit_bytes": 4 * 2**30, "memory_at_largest": {"figure": "rss_peak_bytes", "bytes": 4000 * MIB}}
    return {**doc, **extra}  # fmt: skip


def test_fit_recovers_the_memory_per_sample() -> None:
    slope, fixed = per_sample_fit(finding("fp32", 3, 4)) or (0, 0)
    assert abs(slope - 3 * MIB) < 1 and abs(fixed - 300 * MIB) < 1
    assert per_sample_fit(finding("fp32", 3, 1)) is None  # one batch: no line


def test_table_rows_and_classes() -> None:
    stopped = finding("fp16", 2, 2, verdict="stopped", stopped={"batch": 4, "status": "timeout", "error": "no result"})
    table = findings_table([finding("fp32", 3, 1200), stopped, finding("bf16", 3, None, verdict="none fits")])
    column = table.columns.index("max batch")
    assert [row[column] for row in table.rows] == ["1200", "≥ 2, stopped: timeout at batch 4 [1]",
                                                   "none: batch 1 does not fit"]  # fmt: skip
    assert [c[column] for c in table.classes] == ["good", "warn", "bad"]
    assert table.rows[0][table.columns.index("first failing batch")] == "1201"
    assert table.rows[0][table.columns.index("limit")] == "4 GiB"
    assert table.rows[0][table.columns.index("memory per sample (fit)")] == "3 MiB"
    assert table.notes[0].startswith("[1] torch fp16 train: search stopped by timeout at batch 4: no result")


def test_fp16_sentences_say_yes_no_or_why_there_is_no_answer() -> None:
    yes = fp16_sentences([finding("fp32", 4, 900), finding("fp16", 2, 1800)])
    assert len(yes) == 1 and "yes, fp16 fits a larger batch: 1800 against 900 in fp32 (×2.00)" in yes[0]
    assert "2 MiB per sample in fp16 against 4 MiB in fp32 (×0.50)" in yes[0]
    no = fp16_sentences([finding("fp32", 3, 1200), finding("fp16", 3, 1100)])
    assert "no, fp16 fits a smaller batch than fp32: 1100 against 1200" in no[0]
    stopped = finding("fp16", 2, 4, verdict="stopped", step_s=17.0,
                      stopped={"batch": 8, "status": "timeout", "error": "no result within the 300 s timeout"})
    none = fp16_sentences([finding("fp32", 3, 1200), stopped])
    assert "no answer: the fp16 search stopped with timeout at batch 8" in none[0]
    assert "an fp16 step took 68 s against 4 s in fp32 (×17) and peaked at 308 MiB against 312 MiB" in none[0]
    assert fp16_sentences([finding("fp32", 3, 1200)]) == []  # nothing to compare


def test_section_reads_the_newest_maxbatch_findings(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    assert build(store, []) is None
    store.create_run("m", "maxbatch vgg16", [], {}, {})
    store.add_finding("m", "maxbatch", "vgg16-image=32-torch-fp32-train-cpu", finding("fp32", 3, 1200))
    section = build(store, [])
    assert section is not None and section.source_runs == ["m"] and section.tables[0].rows[0][4] == "1200"
