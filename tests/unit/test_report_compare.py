"""`dlbench compare` on synthetic stored runs: verdicts, regressions and their threshold, matching, and the refusal
to compare runs whose environments differ in what decides the figures."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import synthetic
from dlbench.cli import main
from dlbench.core.cases import Case
from dlbench.core.errors import UsageError
from dlbench.core.results import Run
from dlbench.report.compare import compare_runs, parse_threshold, summary_lines

PLAN = [Case("lstm", {"seq_len": 4, "batch": 2, "hidden": h}, "numpy", "fp32", m) for h in (8, 16, 32)
        for m in ("forward", "train")]  # fmt: skip


def make(tmp_path: Path, run_id: str, factor: float = 1.0, plan: list[Case] | None = None,
         fp: dict[str, Any] | None = None, fail: set[str] | None = None, versions: str = "2.0.0") -> Run:  # fmt: skip
    """A synthetic run; `factor` scales every case's samples/s; `fail` makes those case keys run out of memory."""

    def outcome(case: Case) -> dict[str, Any]:
        if fail and case.key in fail:
            return {"status": "oom", "error": "MemoryError"}
        return {"speed": 100.0 * factor, "seed": sum(map(ord, run_id)), "versions": {"numpy": versions}}

    return synthetic.make_run(tmp_path / "s.sqlite", plan or PLAN, run_id=run_id, outcome=outcome, fp=fp)


def test_same_speed_is_no_significant_difference(tmp_path: Path) -> None:
    result = compare_runs(make(tmp_path, "a"), make(tmp_path, "b"))
    verdicts = [row.verdict for row in result.rows]
    assert verdicts.count("no significant difference") >= len(PLAN) - 1 and not result.regressions


def make_each(tmp_path: Path, run_id: str, factors: dict[str, float], **kwargs: Any) -> Run:
    """A synthetic run whose case `key` runs at factors.get(key, 1) × the baseline speed."""

    def outcome(case: Case) -> dict[str, Any]:
        return {"speed": 100.0 * factors.get(case.key, 1.0), "seed": sum(map(ord, run_id)),
                "versions": {"numpy": "2.0.0"}, **kwargs}  # fmt: skip

    return synthetic.make_run(tmp_path / "s.sqlite", PLAN, run_id=run_id, outcome=outcome)


def test_one_case_twice_as_slow_is_a_regression_with_its_ratio(tmp_path: Path) -> None:
    slow = PLAN[2].key
    result = compare_runs(make(tmp_path, "a"), make_each(tmp_path, "b", {slow: 0.5}), threshold=0.05)
    (row,) = result.regressions
    assert row.key == slow and row.verdict == "slower" and row.ratio is not None
    assert row.ratio.low <= 0.5 * 1.02 and row.ratio.high >= 0.5 * 0.98 and row.ratio.high < 0.6
    assert result.shift is not None and result.shift.value == pytest.approx(1.0, abs=0.03)
    assert all(r.verdict == "no significant difference" for r in result.rows if r.key != slow)


def test_a_slowdown_within_the_threshold_is_slower_but_no_regression(tmp_path: Path) -> None:
    """A regression must lie beyond the threshold with 95% confidence, not only at its point estimate."""
    slow = PLAN[2].key
    a, b = make(tmp_path, "a"), make_each(tmp_path, "b", {slow: 0.9})
    assert [r.verdict for r in compare_runs(a, b, threshold=0.2).rows if r.key == slow] == ["slower"]
    assert not compare_runs(a, b, threshold=0.2).regressions
    assert [r.key for r in compare_runs(a, b, threshold=0.05).regressions] == [slow]


def test_every_case_moving_alike_is_the_run_wide_shift_judged_against_the_drift(tmp_path: Path) -> None:
    """Two separate runs: a move common to every case is the run's, judged against --drift; within it the
    machine's state may explain it (no verdict), beyond it the whole run regressed."""
    a = make(tmp_path, "a")
    within = compare_runs(a, make(tmp_path, "b", factor=0.88))
    assert within.shift is not None and within.shift.value == pytest.approx(0.88, rel=0.03)
    assert not within.regressed and {r.verdict for r in within.rows} == {"no significant difference"}
    assert any("cannot tell a change common to every case from the machine" in line
               for line in summary_lines(within))  # fmt: skip
    half = compare_runs(a, make(tmp_path, "c", factor=0.5))
    assert half.shift is not None and half.shift.regression and half.regressed and not half.regressions
    assert any("a REGRESSION of every case" in line for line in summary_lines(half))
    assert compare_runs(a, make(tmp_path, "d", factor=0.88), drift=0.05).regressed  # the user's own drift


def test_noisy_identical_runs_a_whole_run_apart_call_no_regression(tmp_path: Path) -> None:
    """A/A with what this machine does between runs (synthetic, shaped as measured on the real pair in
    benchmarks/results/seed-cpu-2core-cpu.md: the whole run moved ×0.88, the cases scattered about that by ~15%
    (sd of the log), their processes by more): every case ×0.88 and a further 10% of its own, processes 12%
    apart, three per figure. At most ~5% called different, no regression."""
    plan = [Case("lstm", {"seq_len": 4, "batch": 2, "hidden": h}, "numpy", "fp32", m)
            for h in range(8, 68, 4) for m in ("forward", "train")]  # fmt: skip
    rng = np.random.default_rng(0)
    moved = {c.key: 0.88 * float(np.exp(rng.normal(0, 0.10))) for c in plan}

    def run(run_id: str, factors: dict[str, float]) -> Run:
        return synthetic.make_run(tmp_path / "s.sqlite", plan, run_id=run_id, outcome=lambda c: {
            "speed": 100.0 * factors.get(c.key, 1.0), "seed": sum(map(ord, run_id)), "between": 0.12})

    result = compare_runs(run("a", {}), run("b", moved))
    significant = [r for r in result.rows if r.verdict in ("faster", "slower")]
    assert len(significant) <= 0.05 * len(plan) + 1 and not result.regressed, [r.verdict for r in result.rows]


def test_two_backends_of_one_run_have_no_run_wide_shift(tmp_path: Path) -> None:
    """Interleaved in one run, both sides saw the same machine: nothing is taken out of their ratios."""
    from dlbench.report.compare import select_backend

    plan = PLAN + [replace(c, env="old") for c in PLAN]
    run = synthetic.make_run(tmp_path / "s.sqlite", plan, run_id="one",
                             outcome=lambda c: {"speed": 50.0 if c.env else 100.0})  # fmt: skip
    result = compare_runs(select_backend(run, "numpy@old"), select_backend(run, "numpy"))
    assert result.shift is None and len(result.rows) == len(PLAN)
    assert {r.verdict for r in result.rows} == {"faster"}


def test_a_case_that_now_fails_is_a_regression(tmp_path: Path) -> None:
    broken = PLAN[0].key
    result = compare_runs(make(tmp_path, "a"), make(tmp_path, "b", fail={broken}))
    (row,) = result.regressions
    assert row.key == broken and row.verdict == "now fails (out of memory)"
    back = compare_runs(make(tmp_path, "c", fail={broken}), make(tmp_path, "d"))
    assert not back.regressions and any(r.verdict == "now runs (was out of memory)" for r in back.rows)


def test_cases_match_on_their_key_and_options_are_named(tmp_path: Path) -> None:
    with_option = [Case(c.workload, c.size, c.backend, c.precision, c.mode, options={"sleep_s": 0.01}) for c in PLAN]
    result = compare_runs(make(tmp_path, "a"), make(tmp_path, "b", plan=with_option[:4]))
    matched = [row for row in result.rows if row.a and row.b]
    assert len(matched) == 4 and all(row.note == "options differ: sleep_s=— → 0.01" for row in matched)
    assert [row.verdict for row in result.rows if not row.b] == ["only in A", "only in A"]


def test_no_common_case_is_a_usage_error(tmp_path: Path) -> None:
    other = [Case("vgg16", {"batch": 1, "image": 32}, "numpy", "fp32", "forward")]
    with pytest.raises(UsageError, match="no case in common"):
        compare_runs(make(tmp_path, "a"), make(tmp_path, "b", plan=other))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"fp": synthetic.fingerprint(cpu={"model": "Another CPU"})}, "cpu.model ('Synthetic CPU' vs 'Another CPU')"),
    ],
)
def test_environments_that_differ_in_what_matters_are_refused_unless_forced(
    tmp_path: Path, change: dict[str, Any], field: str
) -> None:
    a, b = make(tmp_path, "a"), make(tmp_path, "b", **change)
    with pytest.raises(UsageError) as caught:
        compare_runs(a, b)
    assert field in str(caught.value) and "--force" in str(caught.value)
    forced = compare_runs(a, b, force=True)
    assert forced.refused_fields == [field] and len(forced.rows) == len(PLAN)


def test_two_machines_of_one_cluster_run_compare_as_machines(tmp_path: Path) -> None:
    """`run --cluster --on-every-node`: the hardware is what is compared (no refusal), B's speed against A's is
    the machines' ratio (reported, never a regression), and each case is judged against ×1."""

    def on(run: Run, node: str) -> Run:
        cluster = {"group": "cluster-x", "node": {"node_id": node * 8, "address": f"10.0.0.{len(node)}"}}
        return replace(run, settings={**run.settings, "cluster": cluster})

    a = on(make(tmp_path, "a"), "a")
    b = on(make(tmp_path, "b", factor=0.5, fp=synthetic.fingerprint(cpu={"model": "Another CPU"})), "bb")
    result = compare_runs(a, b)
    assert result.shift is not None and result.shift.machines and result.shift.value == pytest.approx(0.5, rel=0.03)
    assert not result.shift.regression and not result.refused_fields
    assert {r.verdict for r in result.rows} == {"slower"}  # against ×1, not against the machines' ratio
    assert any("Two machines of one cluster run" in line for line in summary_lines(result))
    with pytest.raises(UsageError, match="--force"):  # the same two runs outside a cluster group: refused
        compare_runs(make(tmp_path, "c"), make(tmp_path, "d", fp=synthetic.fingerprint(cpu={"model": "Another"})))


def test_two_versions_of_one_framework_compare_and_the_header_says_so(tmp_path: Path) -> None:
    """Version against version ("PyTorch 2.5 vs 2.13") is a supported comparison, not a refusal."""
    result = compare_runs(make(tmp_path, "a"), make(tmp_path, "b", factor=0.5, versions="2.1.0"))
    assert not result.refused_fields and result.version_changes == ["numpy 2.0.0 → 2.1.0 (backend numpy)"]
    assert result.shift is not None and result.shift.regression  # every case at half speed: the whole run
    assert any("measures the version change: numpy 2.0.0 → 2.1.0" in line for line in summary_lines(result))


def test_gpu_and_hostname_do_not_block_a_cpu_comparison(tmp_path: Path) -> None:
    fp = synthetic.fingerprint(hostname="elsewhere", gpus=[{"name": "Some GPU"}])
    result = compare_runs(make(tmp_path, "a"), make(tmp_path, "b", fp=fp))
    assert not result.refused_fields and any(d.startswith("hostname") for d in result.other_differences)


@pytest.mark.parametrize(("text", "value"), [("5%", 0.05), ("12.5", 0.125), (" 1 % ", 0.01)])
def test_threshold_is_a_percentage(text: str, value: float) -> None:
    assert parse_threshold(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["0%", "100%", "-5%", "five", ""])
def test_bad_threshold(text: str) -> None:
    with pytest.raises(UsageError, match="bad --threshold"):
        parse_threshold(text)


def test_compare_command_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make(tmp_path, "a")
    make(tmp_path, "b", factor=0.5)
    make(tmp_path, "c", fp=synthetic.fingerprint(cpu={"model": "Another CPU"}))
    store = ["--store", str(tmp_path / "s.sqlite")]
    assert main(["compare", "a", "b", *store]) == 0  # regressions are reported, not fatal, by default
    assert "a REGRESSION of every case" in capsys.readouterr().out
    assert main(["compare", "a", "b", "--fail-on-regression", *store]) == 1
    capsys.readouterr()
    assert main(["compare", "a", "a", "--fail-on-regression", "--format", "json", *store]) == 0
    document = json.loads(capsys.readouterr().out)
    assert {c["verdict"] for c in document["cases"]} == {"no significant difference"}
    assert main(["compare", "a", "c", *store]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "differ in cpu.model" in err[0]
    assert main(["compare", "a", "c", "--force", "--format", "markdown", *store]) == 0
    assert "COMPARED UNDER --force" in capsys.readouterr().out
    assert main(["compare", "a", "b", "--threshold", "lots", *store]) == 2
    assert "bad --threshold 'lots'" in capsys.readouterr().err
