"""The report's one-screen overview (report/overview.py): each backend's speed ÷ the fastest per workload × mode ×
precision, from synthetic results with exact figures (one process, no scatter: samples/s is the speed given)."""

from __future__ import annotations

import math
import re
from html import escape
from pathlib import Path
from typing import Any

import pytest

import synthetic
from dlbench.core.cases import Case
from dlbench.core.results import Result, Run
from dlbench.report import content, overview, page


def lstm(backend: str, batch: int = 8, precision: str = "fp32", mode: str = "forward") -> Case:
    return Case("lstm", {"seq_len": 10, "batch": batch, "hidden": 32}, backend, precision, mode)


def ok(case: Case, speed: float, **kwargs: Any) -> dict[str, Any]:
    return synthetic.document(case, speed=speed, noise=0.0, between=0.0, repeat=1, n=5, **kwargs)


def failed(case: Case, status: str, error: str) -> dict[str, Any]:
    return synthetic.document(case, status=status, error=error)


def run_of(*documents: dict[str, Any], plan: list[Case] | None = None) -> Run:
    results = [Result.from_document(d) for d in documents]
    return Run("t", "synthetic", "complete", plan or [r.case for r in results], results, {}, synthetic.fingerprint(),
               "")  # fmt: skip


def cell(ov: overview.Overview, backend: str, column: str) -> overview.Cell:
    index = next(i for i, c in enumerate(ov.columns) if c.name == column)
    return ov.cells[(backend, index)]


def test_each_backend_is_its_speed_over_the_fastest_clean_one() -> None:
    ov = overview.build(run_of(
        ok(lstm("torch"), 100), ok(lstm("jax"), 50), ok(lstm("tensorflow"), 25),
        ok(lstm("keras-jax"), 1000, disturbed=True),  # faster, but disturbed: never the yardstick
        ok(lstm("torch", mode="train"), 10), ok(lstm("jax", mode="train"), 40),
    ))  # fmt: skip
    assert ov.backends == ["torch", "jax", "tensorflow", "keras-jax"]
    assert [c.name for c in ov.columns] == ["lstm forward fp32 cpu", "lstm train fp32 cpu"]
    forward = {b: cell(ov, b, "lstm forward fp32 cpu") for b in ov.backends}
    assert forward["torch"].value == pytest.approx(1.0) and forward["jax"].value == pytest.approx(0.5)
    assert forward["tensorflow"].value == pytest.approx(0.25)
    assert forward["keras-jax"].value is None and forward["keras-jax"].mark == "disturbed"
    assert "no clean window" in forward["keras-jax"].tip
    train = {b: cell(ov, b, "lstm train fp32 cpu") for b in ("torch", "jax")}  # each column its own fastest
    assert train["torch"].value == pytest.approx(0.25) and train["jax"].value == pytest.approx(1.0)
    assert ("tensorflow", 1) not in ov.cells  # not in the run: no cell, drawn as "·"

    html = overview.html(ov)
    assert re.search(r'data-rel="0\.5000" title="JAX · lstm forward fp32 cpu: 0\.500 × the fastest[^"]*">\.50<', html)
    assert 'data-rel="1.0000" title="PyTorch · lstm forward fp32 cpu: 1.000 × the fastest' in html
    assert html.count('title="not in this run">·</td>') == 2  # tensorflow and keras-jax did not train


def test_unranked_cells_show_what_happened_and_why() -> None:
    errors = {
        "tensorflow": ("oom", "MemoryError: Unable to allocate 2 GiB"),
        "jax": ("error", "failed verification: forward error 3.1e-01 (tolerance 1e-04)"),
        "keras-jax": ("error", "RuntimeError: <b>boom</b>"),
        "keras-torch": ("timeout", "no result within 60 s"),
        "pytensor-jax": ("unsupported", "jax is not installed: pip install 'dlbench[pytensor,jax]'"),
    }
    ov = overview.build(run_of(ok(lstm("torch"), 100), ok(lstm("numpy"), 20),
                               *(failed(lstm(b), s, e) for b, (s, e) in errors.items())))  # fmt: skip
    column = "lstm forward fp32 cpu"
    assert cell(ov, "numpy", column).value == pytest.approx(0.2)  # the failures change nobody's ratio
    marks = {b: cell(ov, b, column) for b in errors}
    assert {b: c.mark for b, c in marks.items()} == {"tensorflow": "oom", "jax": "unverified", "keras-jax": "error",
                                                     "keras-torch": "timeout", "pytensor-jax": "unsupported"}
    assert all(c.value is None for c in marks.values())
    assert "out of memory at seq_len=10,batch=8,hidden=32" in marks["tensorflow"].tip
    assert "forward error 3.1e-01" in marks["jax"].tip and "<b>boom</b>" in marks["keras-jax"].tip
    assert "jax is not installed" in marks["pytensor-jax"].tip

    html = overview.html(ov)
    for mark, text in (("oom", "oom"), ("unverified", "unv"), ("error", "err"), ("timeout", "t/o"),
                       ("unsupported", "n/s")):  # fmt: skip
        assert re.search(rf'data-mark="{mark}" title="[^"]+">{re.escape(text)}</td>', html), mark
        assert f"<b>{text}</b> {escape(overview.UNRANKED[mark][1])}" in html  # the legend says what each mark means
    assert "&lt;b&gt;boom&lt;/b&gt;" in html and "<b>boom" not in html
    assert "<b>dist</b>" not in html  # the legend lists only the marks the grid shows


def test_sizes_collapse_to_the_geometric_mean_over_those_every_ranked_backend_measured() -> None:
    s1, s2, s3 = 8, 16, 32
    ov = overview.build(run_of(
        ok(lstm("torch", s1), 100), ok(lstm("torch", s2), 100), ok(lstm("torch", s3), 100),
        ok(lstm("jax", s1), 50), ok(lstm("jax", s2), 400), failed(lstm("jax", s3), "oom", "out of memory"),
        ok(lstm("tensorflow", s1), 100), ok(lstm("tensorflow", s2), 100), ok(lstm("tensorflow", s3), 10),
    ))  # fmt: skip
    (column,) = ov.columns
    assert [dict(s)["batch"] for s in column.sizes] == [s1, s2, s3]
    assert [dict(s)["batch"] for s in column.common] == [s1, s2]  # jax has no figure at s3: s3 is left out
    torch, jax, tf = (cell(ov, b, column.name) for b in ("torch", "jax", "tensorflow"))
    # at s1 the fastest is 100 (torch 1, jax .5, tf 1); at s2 it is 400 (torch .25, jax 1, tf .25)
    assert jax.value == pytest.approx(math.sqrt(0.5 * 1))  # not the arithmetic mean, .75
    assert torch.value == pytest.approx(0.5) and tf.value == pytest.approx(0.5)  # tf's slow s3 does not count
    assert jax.partial and "out of memory at seq_len=10,batch=32,hidden=32" in jax.tip
    assert not torch.partial and "also measured at seq_len=10,batch=32,hidden=32, left out" in torch.tip
    assert "geometric mean over the 2 sizes" in torch.tip
    html = overview.html(ov)
    assert ">.71*</td>" in html  # jax: ranked on the common sizes, marked for the size it failed
    assert "compared over 2 of 3 sizes (seq_len=10,batch=8,hidden=32; seq_len=10,batch=16,hidden=32)" in html


def test_a_backend_with_no_size_in_common_is_left_unranked_and_said_so() -> None:
    ov = overview.build(run_of(ok(lstm("torch", 8), 100), ok(lstm("torch", 16), 100), ok(lstm("jax", 16), 50),
                               ok(lstm("jax", 32), 50), ok(lstm("numpy", 8), 1)))  # fmt: skip
    (column,) = ov.columns
    # torch ∩ jax ∩ numpy is empty: numpy, with the fewest clean sizes, is left out; torch and jax share 16
    assert [dict(s)["batch"] for s in column.common] == [16]
    assert cell(ov, "jax", column.name).value == pytest.approx(0.5)
    numpy = cell(ov, "numpy", column.name)
    assert numpy.value is None and numpy.mark == "elsewhere" and "clean only at seq_len=10,batch=8" in numpy.tip


def test_a_case_only_one_backend_ran_says_only_and_nothing_is_compared() -> None:
    ov = overview.build(run_of(ok(lstm("torch"), 100), ok(lstm("jax"), 50),
                               ok(lstm("torch", precision="fp16"), 30),
                               failed(lstm("torch", mode="train"), "oom", "out of memory"),
                               ok(lstm("jax", mode="train"), 7)))  # fmt: skip
    fp16 = cell(ov, "torch", "lstm forward fp16 cpu")
    assert fp16.mark == "only" and fp16.value == pytest.approx(1.0) and "only backend with a clean figure" in fp16.tip
    alone = cell(ov, "jax", "lstm train fp32 cpu")  # the other one failed: still nothing to compare
    assert alone.mark == "only" and cell(ov, "torch", "lstm train fp32 cpu").mark == "oom"
    assert cell(ov, "jax", "lstm forward fp32 cpu").mark == ""  # two ranked: a ratio
    html = overview.html(ov)
    assert html.count(">only</td>") == 2 and "<b>only</b>: the one backend with a clean figure" in html


def test_a_run_timed_without_verification_says_so() -> None:
    documents = ok(lstm("torch"), 100), ok(lstm("jax"), 50)
    run = run_of(*documents)
    assert "Timed with --no-verify" not in overview.html(overview.build(run))
    run.settings["verify"] = False
    ov = overview.build(run)
    assert cell(ov, "jax", "lstm forward fp32 cpu").value == pytest.approx(0.5)  # ranked as the tables rank it
    assert "<b>Timed with --no-verify</b>: no figure here was checked" in overview.html(ov)


def test_a_planned_case_without_a_result_is_not_measured() -> None:
    plan = [lstm("torch"), lstm("jax"), lstm("jax", precision="fp16")]
    ov = overview.build(run_of(ok(lstm("torch"), 100), ok(lstm("jax"), 50), plan=plan))
    missing = cell(ov, "jax", "lstm forward fp16 cpu")
    assert missing.mark == "not measured" and "not measured at seq_len=10,batch=8,hidden=32" in missing.tip


def test_wide_runs_stack_grids_without_splitting_a_workload() -> None:
    columns = [overview.Column(f"w{w}", m, p, "cpu") for w in range(10) for m in ("forward", "train")
               for p in ("fp32", "fp16")]  # fmt: skip
    grids = overview.bands(columns)
    assert len(grids) == 2 and [len(g) for g in grids] == [20, 20]
    assert [c for g in grids for c in g] == columns and {c.workload for c in grids[0]}.isdisjoint(
        {c.workload for c in grids[1]})  # fmt: skip
    assert overview.bands(columns[:32]) == [columns[:32]]  # 8 workloads × 2 modes × 2 precisions: one grid


def test_shade_darkens_with_speed() -> None:
    def lightness(value: float) -> int:
        colour = overview.shade(value)[0]
        return sum(int(colour[i : i + 2], 16) for i in (1, 3, 5))

    values = [1.0, 0.7, 0.5, 0.2, 0.05, overview.FLOOR, 0.001]
    assert all(lightness(a) < lightness(b) for a, b in zip(values, values[1:-1], strict=False))
    assert overview.shade(overview.FLOOR) == overview.shade(0.001)  # the floor's shade for all slower


def test_the_overview_opens_the_page_before_the_details(tmp_path: Path) -> None:
    run = synthetic.make_run(tmp_path / "s.sqlite", [lstm("torch"), lstm("jax")])
    html = page.render(content.build([run]))
    assert html.index('id="overview"') < html.index("<nav>") < html.index('id="recommendation"')
    assert html.count('<table class="ov">') == 1 and "data-case" not in html.split("<nav>")[0]
