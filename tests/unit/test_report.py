"""The report from synthetic stored runs (written through the Store, as a real run is): the seed's figures as
package data, ratios today ÷ 2016, rankings, the recommendation, escaping, and self-containment."""

from __future__ import annotations

import re
import zlib
from pathlib import Path
from typing import Any

import pytest

import synthetic
from dlbench.backends import BACKENDS
from dlbench.cli import main
from dlbench.core.cases import Case
from dlbench.core.errors import UsageError
from dlbench.core.results import Run
from dlbench.report import content, markdown, page, seed2016
from dlbench.report.recommend import parse_weights

SEED_SIZE = {"seq_len": 30, "batch": 32, "hidden": 128}
HEIRS = seed2016.continuations()


def lstm(backend: str, mode: str = "forward", device: str = "cpu", **size: int) -> Case:
    return Case("lstm", {**SEED_SIZE, **size}, backend, "fp32", mode, device)


def vgg(backend: str, batch: int, precision: str = "fp32", mode: str = "forward", image: int = 32) -> Case:
    return Case("vgg16", {"batch": batch, "image": image}, backend, precision, mode)


def make(tmp_path: Path, plan: list[Case], speeds: dict[str, float] | None = None,
         failures: dict[str, tuple[str, str]] | None = None, run_id: str = "r1", **kwargs: Any) -> Run:
    """A synthetic run: `speeds` gives samples/s per backend (else a formula); `failures` a status and error."""

    def outcome(case: Case) -> dict[str, Any]:
        if failures and case.backend in failures:
            status, error = failures[case.backend]
            return {"status": status, "error": error}
        if speeds and case.backend in speeds:
            speed = speeds[case.backend] * (1 if case.mode == "forward" else 0.3)
            return {"speed": speed, "seed": zlib.crc32(run_id.encode()) % 97}  # crc32: stable across processes
        return {}

    return synthetic.make_run(tmp_path / "s.sqlite", plan, run_id=run_id, outcome=outcome, **kwargs)


# -- the 2016 figures --------------------------------------------------------------------------------------------


def test_seed_figures_ship_as_package_data_with_their_citation() -> None:
    figures = seed2016.seed_figures()
    lstm_rows = [f for f in figures if f.workload == "lstm"]
    assert len(lstm_rows) == 36 * 2 and {f.framework for f in lstm_rows} == set(HEIRS)
    torch_like = next(f for f in lstm_rows if f.size_dict == SEED_SIZE and f.mode == "forward"
                      and f.framework == "Torch")  # fmt: skip
    assert torch_like.value == 22110  # the study's first row, as published
    oom = [f for f in figures if f.workload == "vgg16" and f.value is None]
    assert {(f.size_dict["batch"], f.precision) for f in oom} == {(128, "fp32")}
    assert all(f.size_dict["image"] == 224 for f in figures if f.workload == "vgg16")
    for words in ("GA-CCRi", "Pascal Titan X", "CUDA 8", "cuDNN 5.1", "2016"):
        assert words in seed2016.citation()


def test_each_2016_framework_is_continued_by_its_first_registered_backend() -> None:
    for framework, backend in HEIRS.items():
        assert BACKENDS[backend].seed_row == framework
        same_row = [n for n, info in BACKENDS.items() if info.seed_row == framework]
        assert same_row[0] == backend and seed2016.variants().get(framework, []) == same_row[1:]


# -- today beside 2016 -------------------------------------------------------------------------------------------


def test_ratio_where_the_case_matches_and_only_for_continuations(tmp_path: Path) -> None:
    variant = seed2016.variants()["Torch"][0]
    plan = [lstm(b, m, device="cuda") for b in [*HEIRS.values(), variant] for m in ("forward", "train")]
    run = make(tmp_path, plan, speeds={HEIRS["Torch"]: 44220.0, HEIRS["Theano"]: 1000.0, variant: 5.0})
    report = content.build([run])
    table = report.ratio_table
    assert table is not None and not report.no_match
    rows = {(r[1].split(" → ")[0], r[4]): r for r in table.rows}
    assert len(table.rows) == 6  # 3 frameworks × 2 modes; the variant has no row
    measured = {(r.case.backend, r.case.mode): r.samples_per_s or 0 for r in run.results}
    assert measured[(HEIRS["Torch"], "forward")] == pytest.approx(44220, rel=0.05)  # twice 2016's 22,110
    assert rows[("Torch", "forward")][7] == f"×{measured[(HEIRS['Torch'], 'forward')] / 22110:.2f}"
    assert rows[("Theano", "forward")][7] == f"×{measured[(HEIRS['Theano'], 'forward')] / 15462:.2f}"
    assert not any("GPU" in n and "hardware" in n for n in table.notes)  # a GPU run: no hardware caveat


def test_cpu_run_at_the_seed_sizes_says_the_ratio_crosses_hardware(tmp_path: Path) -> None:
    run = make(tmp_path, [lstm(HEIRS["Torch"])])
    table = content.build([run]).ratio_table
    assert table is not None and any("measures the hardware" in n for n in table.notes)


def test_scaled_run_has_no_ratio_and_says_so_plainly(tmp_path: Path) -> None:
    plan = [lstm(b, m, seq_len=t, batch=n, hidden=h) for b in HEIRS.values() for m in ("forward", "train")
            for t in (30, 60) for n in (8, 16) for h in (64, 128, 256)]  # the seed's grid shape, scaled
    report = content.build([make(tmp_path, plan)])
    assert report.ratio_table is None and report.no_match.startswith("No case of this run has the seed's size")
    assert report.rankings is not None  # rankings, paired by grid position, are still shown
    assert len(report.rankings.rows) == 24 and all("(by grid position)" in row[2] for row in report.rankings.rows)
    first = next(row for row in report.rankings.rows if row[4] == "seq_len=30, batch=8, hidden=64")
    assert first[2] == "seq_len=30, batch=32, hidden=128 (by grid position)"
    html = page.render(report)
    assert "No case of this run has the seed" in html and "by grid position" in html


def test_rankings_name_todays_winner_and_compare_with_2016(tmp_path: Path) -> None:
    speeds = {HEIRS["TensorFlow"]: 9000.0, HEIRS["Torch"]: 3000.0, HEIRS["Theano"]: 1000.0}
    plan = [lstm(b, m) for b in HEIRS.values() for m in ("forward", "train")]
    rankings, wins = content.versus2016.rankings_table(make(tmp_path, plan, speeds=speeds))
    assert rankings is not None
    forward = next(r for r in rankings.rows if r[1] == "forward")
    assert forward[3] == "Torch > Theano > TensorFlow"  # 2016, at seq 30, batch 32, hidden 128
    assert forward[5].startswith("TensorFlow > Torch (") and forward[6] == "no"
    assert any(line.startswith("today, lstm forward: TensorFlow fastest at 1 of 1 sizes (1 significantly)")
               for line in wins)  # fmt: skip


def test_near_equal_backends_are_marked_as_within_the_noise(tmp_path: Path) -> None:
    speeds = {HEIRS["Torch"]: 1000.0, HEIRS["TensorFlow"]: 1001.0, HEIRS["Theano"]: 100.0}
    plan = [lstm(b) for b in HEIRS.values()]
    rankings, _ = content.versus2016.rankings_table(make(tmp_path, plan, speeds=speeds))
    assert rankings is not None and " ≈ " in rankings.rows[0][5] and "(not significant)" in rankings.rows[0][6]


# -- the recommendation ------------------------------------------------------------------------------------------


def two_workload_plan(backends: list[str]) -> list[Case]:
    return [c for b in backends for m in ("forward", "train")
            for c in (lstm(b, m, hidden=64, batch=8), vgg(b, 2, mode=m))]  # fmt: skip


def test_fastest_backend_per_regime_with_its_lead_and_significance(tmp_path: Path) -> None:
    a, b, c = HEIRS["Torch"], HEIRS["TensorFlow"], HEIRS["Theano"]
    run = make(tmp_path, [lstm(x, hidden=64, batch=8) for x in (a, b, c)], speeds={a: 2000.0, b: 1000.0, c: 900.0})
    (regime,) = content.build([run]).regimes
    assert regime.winner == a and regime.significant and regime.lead is not None
    assert regime.lead.value == pytest.approx(2.0, rel=0.05) and regime.lead.low > 1
    assert [name for name, _ in regime.ranking] == [a, b, c]
    lead = f"{BACKENDS[a].label}, ×{regime.lead.value:.2f} the speed of {BACKENDS[b].label}"
    assert regime.verdict().startswith(lead)


def test_failed_backends_are_named_not_dropped(tmp_path: Path) -> None:
    a, b, c = HEIRS["Torch"], HEIRS["TensorFlow"], HEIRS["Theano"]
    run = make(tmp_path, [lstm(x, hidden=64, batch=8) for x in (a, b, c)], speeds={a: 1000.0, b: 900.0},
               failures={c: ("error", "failed verification: forward error 3e-1 > 1e-4")})  # fmt: skip
    report = content.build([run])
    (regime,) = report.regimes
    assert c in regime.excluded and "failed verification" in regime.excluded[c][0][1]
    assert any(BACKENDS[c].label in line and "error" in line for line in report.summary.lines)
    assert "failed verification" in markdown.render(report)


def test_no_overall_winner_is_claimed_without_a_majority_and_weights_decide(tmp_path: Path) -> None:
    a, b = HEIRS["Torch"], HEIRS["TensorFlow"]
    plan = two_workload_plan([a, b])

    def outcome(case: Case) -> dict[str, Any]:  # a wins LSTM, b wins VGG-16, each by 2×
        fast = (case.backend == a) == (case.workload == "lstm")
        return {"speed": (2.0 if fast else 1.0) * (1000 if case.workload == "lstm" else 10)}

    run = synthetic.make_run(tmp_path / "s.sqlite", plan, outcome=outcome)
    even = content.build([run]).summary
    assert any(line.startswith("Overall: no backend") for line in even.lines)
    assert even.wins == {a: 2.0, b: 2.0}
    for weights, winner in (("lstm=3", a), ("vgg16=3", b)):
        summary = content.build([run], parse_weights(weights)).summary
        assert any(line.startswith(f"Overall: {BACKENDS[winner].label} is the fastest") for line in summary.lines)
    ignored = content.build([run], parse_weights("vgg16=0")).summary
    assert ignored.total_weight == 2.0 and ignored.wins == {a: 2.0}


def test_the_summary_states_its_scope(tmp_path: Path) -> None:
    run = make(tmp_path, [lstm(HEIRS["Torch"], hidden=64), lstm(HEIRS["Theano"], hidden=64)])
    lines = content.build([run]).summary.lines
    assert any(line.startswith("Scope: these runs only (cpu on Synthetic CPU") for line in lines)
    assert synthetic.NOTE in lines  # the run's own note travels with the recommendation


@pytest.mark.parametrize("text", ["nosuch=2", "lstm", "lstm=x", "lstm=-1", "train=nan"])
def test_bad_weights_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="bad --weights item"):
        parse_weights(text)


# -- HTML: escaping, self-containment, every case ---------------------------------------------------------------

HOSTILE = "<script>alert('x')</script><img src=http://example.com/x.png>"


def test_every_string_from_a_run_is_escaped(tmp_path: Path) -> None:
    a, b = HEIRS["Torch"], HEIRS["TensorFlow"]
    fp = synthetic.fingerprint(hostname=HOSTILE, cpu={"model": HOSTILE, "logical_cores": 2})
    run = make(tmp_path, [lstm(a, hidden=64), lstm(b, hidden=64), vgg(a, 2)], failures={b: ("error", HOSTILE)},
               fp=fp, settings={"note": HOSTILE})  # fmt: skip
    html = page.render(content.build([run]))
    assert "<script" not in html.lower() and "<img" not in html.lower()
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html  # shown as text, in cells, notes and env
    assert html.count("&lt;script&gt;") >= 3
    text = markdown.render(content.build([run]))
    assert "<script" not in text and "&lt;script>" in text


def test_html_is_self_contained(tmp_path: Path) -> None:
    run = make(tmp_path, two_workload_plan([HEIRS["Torch"], HEIRS["Theano"]]))
    html = page.render(content.build([run]))
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    for attribute in re.findall(r'(?:href|src)="([^"]*)"', html):
        assert attribute.startswith(("#", "data:")), attribute
    assert "url(" not in html and "@import" not in html and "<script" not in html
    urls = set(re.findall(r"https?://[^\s\"'<>]+", html))
    assert urls <= {"http://www.w3.org/2000/svg"}  # the SVG namespace, never fetched


def test_html_marks_every_case_and_explains_every_failure(tmp_path: Path) -> None:
    a, b = HEIRS["Torch"], HEIRS["Theano"]
    plan = two_workload_plan([a, b])
    run = make(tmp_path, plan, failures={b: ("oom", "MemoryError: 2 GiB")})
    html = page.render(content.build([run]))
    assert set(re.findall(r'data-case="([^"]*)"', html)) == {c.key for c in plan}
    assert re.search(r'<td class="fail" data-case="[^"]+" title="\[1\] [^"]*out of memory: MemoryError: 2 GiB">', html)
    assert html.count('<svg class="plot"') >= 4  # LSTM, VGG speed and memory, first step


def test_pooled_runs_keep_each_environment_and_warn_across_machines(tmp_path: Path) -> None:
    a = make(tmp_path, [lstm(HEIRS["Torch"], hidden=64)], run_id="r1")
    b = make(tmp_path, [lstm(HEIRS["Theano"], hidden=64)], run_id="r2",
             fp=synthetic.fingerprint(cpu={"model": "Other CPU"}))  # fmt: skip
    report = content.build([a, b])
    assert len(report.run.results) == 2 and report.run.run_id == "r1 + r2"
    assert any("different machines" in n and "Other CPU" in n for n in report.notes)
    html = page.render(report)
    assert "Run r1 · suite" in html and "Run r2 · suite" in html


# -- the command ---------------------------------------------------------------------------------------------------


def test_report_command_writes_html_and_markdown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make(tmp_path, two_workload_plan([HEIRS["Torch"], HEIRS["Theano"]]))
    store = str(tmp_path / "s.sqlite")
    out = tmp_path / "report.html"
    assert main(["report", "--store", store, "--out", str(out), "--weights", "lstm=2"]) == 0
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert main(["report", "r1", "--store", store, "--format", "markdown"]) == 0
    assert capsys.readouterr().out.startswith("# dlbench report: run r1")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--weights", "gpu=2"], "bad --weights item 'gpu=2'"),
        (["nosuchrun"], "unknown run 'nosuchrun'"),
        (["--format", "pdf"], "invalid choice: 'pdf'"),
        (["--format", "markdown", "--screenshot", "x.png"], "--screenshot needs --format html"),
        (["--out", "/nonexistent-dir/r.html"], "directory '/nonexistent-dir' does not exist"),
    ],
)
def test_report_usage_errors_write_nothing(argv: list[str], message: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    make(tmp_path, [lstm(HEIRS["Torch"], hidden=64)])
    before = set(tmp_path.iterdir())
    out = ["--out", str(tmp_path / "report.html")] if "--out" not in argv else []
    assert main(["report", *argv, *out, "--store", str(tmp_path / "s.sqlite")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]
    assert set(tmp_path.iterdir()) == before


# -- plots and bands -----------------------------------------------------------------------------------------------


def test_plots_go_logarithmic_where_values_span_decades() -> None:
    from dlbench.report.svg import Panel, Point, Series, render

    def panel(values: list[float]) -> str:
        points = [Point(float(2**i), v, v * 0.9, v * 1.1, f"v={v}") for i, v in enumerate(values)]
        points.append(Point(64.0, None, tip="out of memory: <b>"))
        return render(Panel("t", "batch", "samples / s", [Series("s", "#000", points=points)]))

    wide, narrow = panel([1.0, 30.0, 1000.0]), panel([10.0, 20.0, 30.0])
    assert "samples / s (log)" in wide and "samples / s (log)" not in narrow
    assert "batch (log)" in wide  # x from 1 to 64: a doubling grid
    assert "<title>out of memory: &lt;b&gt;</title></path>" in narrow  # the failure drawn as a cross, with why


def test_size_bands_split_sizes_by_work(tmp_path: Path) -> None:
    plan = [lstm(HEIRS["Torch"], hidden=h, batch=b) for h in (64, 128, 256) for b in (8, 32)]
    found = content.build([make(tmp_path, plan)]).regimes
    assert [g.band for g in found] == ["small", "medium", "large"]
    work = [[s["batch"] * s["hidden"] ** 2 for s in g.sizes] for g in found]
    assert all(len(w) == 2 for w in work) and max(work[0]) <= min(work[1]) and max(work[1]) <= min(work[2])
