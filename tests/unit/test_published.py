"""Other published benchmarks beside a run (runs/published.py, report/published.py): convnet-benchmarks' CNN table,
rnn-benchmarks' and DeepBench's LSTM rows, as package data with their citations; today ÷ then only where model, size
and precision match on a GPU, and a plain reason everywhere else. Synthetic runs (figures from a formula), written
through the Store; the CNN workloads' names are used as data only, so the tests do not need those workloads."""

from __future__ import annotations

import csv
import fnmatch
import re
import tomllib
from pathlib import Path
from typing import Any

import synthetic
from dlbench.backends import BACKENDS
from dlbench.core.cases import Case
from dlbench.core.results import Result, Run
from dlbench.core.tables import Table
from dlbench.measure.stats import summarize
from dlbench.report import published as published_section
from dlbench.report.sections import SECTIONS
from dlbench.runs import published as pub
from dlbench.runs.render import to_markdown

DATA = Path(pub.__file__).parents[1] / "data" / "published"
PYPROJECT = Path(pub.__file__).parents[3] / "pyproject.toml"
H200 = {"index": 0, "name": "NVIDIA H200", "driver": "1", "memory": "141 GiB"}
RATIO = re.compile(r"×([0-9.]+) / ×([0-9.]+) vs (.+)")


def cnn(
    workload: str,
    backend: str,
    batch: int,
    image: int,
    precision: str = "fp32",
    device: str = "cuda",
    mode: str = "forward",
) -> Case:
    return Case(workload, {"batch": batch, "image": image}, backend, precision, mode, device)


def lstm(backend: str, seq_len: int, batch: int, hidden: int, device: str = "cuda", mode: str = "forward") -> Case:
    return Case("lstm", {"seq_len": seq_len, "batch": batch, "hidden": hidden}, backend, "fp32", mode, device)


def both(make: Any, *args: Any, **kwargs: Any) -> list[Case]:
    """The case's forward and train (forward + backward) modes."""
    return [make(*args, mode=mode, **kwargs) for mode in ("forward", "train")]


def make_run(tmp_path: Path, plan: list[Case], disturbed: tuple[str, ...] = ()) -> Run:
    """Forward at 900 samples/s, train at 300 (on a CPU a hundredth); a backend in `disturbed` is marked so.
    Results are made directly, not through the Store: storing a result asks the workload registry for its FLOPs, and
    these tests must not depend on the CNN workloads. The statistics come from the runner's own summarize()."""
    results = []
    for case in plan:
        speed = (900.0 if case.mode == "forward" else 300.0) * (1 if case.device == "cuda" else 0.01)
        samples = [case.batch / speed * (1 + k / 100) for k in (-2, -1, 0, 1, 2)]
        results.append(Result.from_document({
            "case": case.to_dict(), "case_key": case.key, "status": "ok", "versions": {case.backend: "1.0"},
            "samples_s": samples, "stats": summarize(samples, case.batch),
            "flags": ["disturbed"] if case.backend in disturbed else [],
        }))  # fmt: skip
    return Run(
        tmp_path.name,
        "synthetic",
        "complete",
        plan,
        results,
        {"note": synthetic.NOTE},
        synthetic.fingerprint(gpus=[H200]),
        str(tmp_path / "none.sqlite"),
    )


def result(run: Run, **match: Any) -> Result:
    return next(r for r in run.results if all(getattr(r.case, k) == v for k, v in match.items()))


def cells(table: Table, first: str, framework: str = "", precision: str = "") -> list[str]:
    """The row whose first cell starts with `first` (and whose framework and precision cells contain the others)."""
    return next(row for row in table.rows
                if row[0].startswith(first) and framework in row[1] and precision in row[3])  # fmt: skip


def _raw(name: str) -> list[dict[str, str]]:
    text = (DATA / name).read_text(encoding="utf-8")
    return list(csv.DictReader(line for line in text.splitlines() if not line.startswith("#")))


# -- the data --------------------------------------------------------------------------------------------------------


def test_every_published_file_ships_as_package_data_with_its_source() -> None:
    patterns = tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"]["package-data"]["dlbench"]
    sources = _raw("sources.csv")
    for name in ["sources.csv", *(s["file"] for s in sources)]:
        assert any(fnmatch.fnmatch(f"data/published/{name}", p) for p in patterns), name
        if name != "sources.csv":
            header = [line for line in (DATA / name).read_text().splitlines() if line.startswith("#")]
            assert header and "titan x" in " ".join(header).lower()
    assert all(s["citation"] and s["gpu"] and s["timed"] for s in sources)
    rows = pub.published()
    assert len(rows) == sum(len(_raw(s["file"])) for s in sources)
    assert {p.workload for p in rows} == {*pub.CNN_WORKLOADS.values(), "lstm"}


def test_published_cells_reproduce_each_file_in_its_own_unit(tmp_path: Path) -> None:
    """What the tables show is what the files say: ms per batch, µs per sample (DeepBench: 10⁶ ÷ samples/s)."""
    run = make_run(
        tmp_path,
        [cnn(w, "torch", 2, 32) for w in pub.CNN_WORKLOADS.values()]
        + [lstm("torch", 30, b, h) for b in (32, 128) for h in (128, 512, 1024)],
    )
    table, lstms = pub.convnet_table(run), pub.lstm_table(run)
    assert table is not None and lstms is not None
    for row in _raw("convnet_benchmarks_titanx_maxwell.csv"):
        shown = cells(table, f"{row['model']} ({row['input']})", row["library"], row["precision"])
        assert shown[4:7] == [row["forward_ms"], row["backward_ms"], row["total_ms"]]
    for row in _raw("rnn_benchmarks_titanx_maxwell.csv"):
        shown = cells(
            lstms, f"seq_len=30, batch={row['batch']}, hidden={row['hidden']}", f"{row['framework']} (rnn-benchmarks)"
        )
        assert [float(v) for v in shown[4:6]] == [
            float(row["forward_us_per_sample"]),
            float(row["train_us_per_sample"]),
        ]
    for row in _raw("deepbench_lstm_titanx_pascal.csv"):
        shown = cells(lstms, f"seq_len={row['seq_len']}, batch={row['batch']}, hidden={row['hidden']}", "DeepBench")
        expected = [1e6 / float(row[c]) for c in ("forward_samples_per_s", "total_samples_per_s")]
        assert [float(v) for v in shown[4:6]] == [round(v, 1) for v in expected]


# -- the CNN table ---------------------------------------------------------------------------------------------------


def test_a_matching_gpu_case_gets_today_over_then_against_its_frameworks_row(tmp_path: Path) -> None:
    plan = [c for b in ("torch", "tensorflow") for c in both(cnn, "alexnet", b, 128, 224)]
    run = make_run(tmp_path, plan)
    table = pub.convnet_table(run)
    assert table is not None
    then = {(p.library, p.precision): p for p in pub.published() if p.model == "alexnet-owt"}
    for backend in ("torch", "tensorflow"):
        row = cells(table, "alexnet (128x3x224x224)", BACKENDS[backend].seed_row or "")
        match = RATIO.fullmatch(row[-1])
        assert match, row
        ref = then[(match[3], "fp32")]
        assert ref.lineage == BACKENDS[backend].seed_row
        forward = result(run, backend=backend, mode="forward")
        train = result(run, backend=backend, mode="train")
        assert float(match[1]) == round(ref.forward_s / (128 / forward.samples_per_s), 2)
        assert float(match[2]) == round(ref.train_s / (128 / train.samples_per_s), 2)
        # backward is derived: total − forward, in ms
        assert float(row[5]) == float(f"{(128 / train.samples_per_s - 128 / forward.samples_per_s) * 1e3:.3g}")
    assert any("NVIDIA H200 vs GTX Titan X (Maxwell)" in note for note in table.notes)
    assert not any("not comparable" in row[-1] for row in table.rows)


def test_a_backend_continuing_no_2016_framework_is_set_against_the_fastest_row(tmp_path: Path) -> None:
    plan = both(cnn, "vgga", "jax", 64, 224, "fp16")
    table = pub.convnet_table(make_run(tmp_path, plan))
    assert table is not None
    fastest = min((p for p in pub.published() if p.model == "vgg-a" and p.precision == "fp16"), key=lambda p: p.train_s)
    match = RATIO.fullmatch(cells(table, "vgga (")[-1])
    assert match and match[3] == fastest.library


def test_a_cpu_or_scaled_case_is_not_comparable_and_says_why(tmp_path: Path) -> None:
    plan = [*both(cnn, "alexnet", "torch", 8, 64, device="cpu"), *both(cnn, "overfeat", "torch", 128, 231, "bf16"),
            *both(cnn, "vgga", "torch", 64, 224, device="cpu")]  # fmt: skip
    table = pub.convnet_table(make_run(tmp_path, plan))
    assert table is not None
    today = [row for row in table.rows if row[-1] != "(published)"]
    assert len(today) == 3 and all(row[-1].startswith("not comparable [") for row in today)
    assert not any("×" in row[-1] for row in table.rows)
    notes = "\n".join(table.notes)
    assert (
        "alexnet: not comparable: cpu (Synthetic CPU) vs GTX Titan X (Maxwell), input 8x3x64x64 vs "
        "128x3x224x224" in notes
    )
    assert "overfeat: not comparable: bf16 vs fp32/fp16" in notes
    assert "vgga: not comparable: cpu (Synthetic CPU) vs GTX Titan X (Maxwell)\n" in notes + "\n"
    assert "today ÷ then:" not in notes  # no ratio shown: no claim about one
    # only the run's models get their published rows
    assert {row[0].split(" ")[0] for row in table.rows} == {"alexnet", "alexnet-owt", "overfeat", "overfeat-fast",
                                                            "vgga", "vgg-a"}  # fmt: skip


def test_a_disturbed_figure_is_shown_but_never_set_against_then(tmp_path: Path) -> None:
    plan = both(cnn, "alexnet", "torch", 128, 224)
    table = pub.convnet_table(make_run(tmp_path, plan, disturbed=("torch",)))
    assert table is not None
    row = cells(table, "alexnet (")
    assert "[disturbed]" in row[4] and "×" not in row[-1]


def test_run_and_show_print_the_cnn_table_only_for_a_run_with_cnns(tmp_path: Path) -> None:
    with_cnn = make_run(tmp_path, [*both(cnn, "alexnet", "torch", 8, 64, device="cpu"), lstm("torch", 30, 32, 128)])
    assert "### Beside convnet-benchmarks" in to_markdown(with_cnn)
    (tmp_path / "other").mkdir()
    lstm_only = make_run(tmp_path / "other", [lstm("torch", 30, 32, 128)])
    assert pub.published_tables(lstm_only) == [] and "convnet-benchmarks" not in to_markdown(lstm_only)


# -- the LSTM rows and the report's section ----------------------------------------------------------------------------


def test_lstm_cases_match_rnn_benchmarks_at_seq_30_and_deepbench_at_seq_25_only(tmp_path: Path) -> None:
    plan = [*both(lstm, "torch", 30, 32, 512), *both(lstm, "jax", 25, 32, 512), *both(lstm, "torch", 60, 32, 512),
            *both(lstm, "torch", 30, 128, 512, device="cpu"), *both(lstm, "torch", 30, 8, 64)]  # fmt: skip
    run = make_run(tmp_path, plan)
    table = pub.lstm_table(run)
    assert table is not None
    assert not any(row[0].startswith("seq_len=30, batch=8,") for row in table.rows)  # no published batch 8
    rnn = RATIO.fullmatch(cells(table, "seq_len=30, batch=32, hidden=512", "PyTorch")[-1])
    ref = next(p for p in pub.published() if p.source.name == "rnn-benchmarks" and p.library == "Torch"
               and p.size_dict == {"seq_len": 30, "batch": 32, "hidden": 512})  # fmt: skip
    train = result(run, backend="torch", mode="train", size={"seq_len": 30, "batch": 32, "hidden": 512})
    assert rnn and rnn[3] == "Torch" and float(rnn[2]) == round(ref.train_s / (32 / train.samples_per_s), 2)
    deep = RATIO.fullmatch(cells(table, "seq_len=25, batch=32, hidden=512", "JAX")[-1])
    assert deep and deep[3] == "cuDNN LSTM kernels"
    notes = "\n".join(table.notes)
    assert (
        "seq_len=60, batch=32, hidden=512: not comparable: seq_len 60 vs 30 (rnn-benchmarks) / 25 (DeepBench)" in notes
    )
    assert (
        "seq_len=30, batch=128, hidden=512: not comparable: cpu (Synthetic CPU) vs GTX Titan X (Maxwell) / "
        "Titan X (Pascal)" in notes
    )
    assert "cuDNN LSTM kernels only" in notes and "glample/rnn-benchmarks" in notes


def test_the_report_section_shows_both_tables_or_says_why_not(tmp_path: Path) -> None:
    assert published_section.build in SECTIONS
    run = make_run(tmp_path, [*both(cnn, "googlenet", "torch", 4, 64, device="cpu"), *both(lstm, "torch", 30, 8, 64)])
    section = published_section.build(None, [run])  # type: ignore[arg-type]  # the section reads no findings
    assert section is not None and section.anchor == "published"
    assert [t.title.split(":")[0] for t in section.tables] == ["Beside convnet-benchmarks (2016)"]
    assert any("No LSTM case" in p and "DeepBench: seq_len ∈ {25}" in p for p in section.paragraphs)
    (tmp_path / "vgg").mkdir()
    other = make_run(tmp_path / "vgg", both(cnn, "vgg16", "torch", 2, 32, device="cpu"))
    assert published_section.build(None, [other]) is None  # type: ignore[arg-type]
