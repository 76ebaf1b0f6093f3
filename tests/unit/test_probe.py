"""The probe's parent side and its float64 reference: verdicts decided from numbers, the reference's gradients
against finite differences, the matrix tables and report section from stored findings, and usage errors."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dlbench import cli
from dlbench.probe import section as probe_section
from dlbench.probe.matrix import matrix_tables
from dlbench.probe.verdict import TOLERANCE, judge
from dlbench.report.sections import SECTIONS
from dlbench.store import Store
from dlbench.workloads.layers import LAYERS, make_arrays
from dlbench.workloads.reference import layer_reference as reference


def ok(error: float | None, dtypes: dict[str, str], best_s: float = 1e-3, **extra: Any) -> dict[str, Any]:
    return {"status": "ok", "errors": {name: error for name in dtypes}, "dtypes": dtypes, "time_s": best_s,
            "best_s": best_s, **extra}  # fmt: skip


@pytest.mark.parametrize(
    ("measured", "precision", "direction", "fp32_s", "verdict"),
    [
        (ok(1e-7, {"output": "float32"}), "fp32", "forward", None, "native"),
        (ok(2e-5, {"output": "float32"}), "fp32", "forward", None, "wrong"),  # fp32 is held to 1e-5
        (ok(5e-3, {"output": "float16"}), "fp16", "forward", 1e-3, "native"),
        (ok(5e-3, {"output": "float32"}), "fp16", "forward", 1e-3, "upcast"),
        (ok(2e-2, {"output": "float16"}), "fp16", "forward", 1e-3, "wrong"),
        (ok(None, {"output": "float16"}), "fp16", "forward", 1e-3, "wrong"),  # NaN/inf stored as None
        (ok(5e-2, {"output": "bfloat16"}), "bf16", "forward", 1e-3, "native"),
        (ok(1e-3, {"output": "float16"}, best_s=1.0e-2), "fp16", "forward", 1e-3, "slow"),  # exactly 10x
        (ok(1e-3, {"output": "float16"}, best_s=0.9e-2), "fp16", "forward", 1e-3, "native"),
        (ok(1e-3, {"output": "float16"}, best_s=1.0), "fp16", "forward", None, "native"),  # no fp32 time: not judged
        (ok(1e-3, {"output": "float32"}, best_s=1.0), "fp16", "forward", 1e-3, "slow"),  # slow beats upcast
        (ok(1.0, {"output": "float16"}, best_s=1.0), "fp16", "forward", 1e-3, "wrong"),  # wrong beats slow
        (ok(1e-3, {"output": "float16"}), "fp32", "forward", 1e-3, "wrong"),  # narrower than asked
        (ok(1e-3, {"x": "float32", "weight": "float32"}), "amp-fp16", "backward", 1e-3, "native"),  # fp32 masters
        (ok(1e-3, {"output": "float32"}), "amp-bf16", "forward", 1e-3, "upcast"),  # autocast kept it in fp32
        ({"status": "unsupported", "message": "TypeError: Invalid dtype: bfloat16"}, "bf16", "forward", 1e-3,
         "unsupported"),
        ({"status": "error", "message": "timeout: no result"}, "fp16", "backward", 1e-3, "error"),
        ({"status": "oom", "message": "MemoryError"}, "fp16", "backward", 1e-3, "error"),
    ],
)  # fmt: skip
def test_verdicts_follow_from_the_numbers(measured: dict[str, Any], precision: str, direction: str,
                                          fp32_s: float | None, verdict: str) -> None:  # fmt: skip
    doc = judge(measured, precision, direction, fp32_s)
    assert doc["verdict"] == verdict, doc
    if verdict == "slow":
        assert doc["ratio_to_fp32"] >= 10 and "the fp32 time" in doc["message"]
    if verdict == "unsupported":
        assert doc["message"] == measured["message"]  # the framework's error, quoted as it was


def test_worst_error_names_the_tensor() -> None:
    measured = {"status": "ok", "errors": {"x": 1e-4, "bias": 0.2, "weight": 1e-3},
                "dtypes": {"x": "bfloat16", "bias": "bfloat16", "weight": "bfloat16"}, "best_s": 1e-3}  # fmt: skip
    doc = judge(measured, "bf16", "backward", 1e-3)
    assert (doc["verdict"], doc["worst"], doc["error"], doc["tolerance"]) == ("wrong", "bias", 0.2, TOLERANCE["bf16"])


@pytest.mark.parametrize("layer", list(LAYERS))
def test_reference_gradients_match_finite_differences(layer: str) -> None:
    """Σ grad · d equals the directional derivative of Σ out · g, in float64, for a random direction d."""
    arrays, g = make_arrays(layer)
    wide = {k: v.astype(np.float64) if v.dtype.kind == "f" else v for k, v in arrays.items()}
    _, grads = reference(layer, arrays, g)
    spec = LAYERS[layer]
    assert sorted(grads) == sorted(spec.differentiable)
    rng = np.random.default_rng(1)
    step = 1e-6 if layer != "maxpool" else 1e-3  # the pool's maxima are ≥ 1/16 apart: a small step keeps them
    direction = {k: rng.standard_normal(wide[k].shape) for k in spec.differentiable}

    def loss(scale: float) -> float:
        moved = {k: v + scale * direction[k] if k in direction else v for k, v in wide.items()}
        return float(np.sum(spec.forward(moved) * g))

    numeric = (loss(step) - loss(-step)) / (2 * step)
    analytic = sum(float(np.sum(grads[k] * direction[k])) for k in spec.differentiable)
    assert math.isclose(numeric, analytic, rel_tol=1e-5), (numeric, analytic)


def test_maxpool_input_is_exact_in_half_precision_with_one_maximum_per_window() -> None:
    x = make_arrays("maxpool")[0]["x"]
    assert np.array_equal(x.astype(np.float16).astype(np.float32), x)
    k = x * 16  # multiples of 1/16 below 4 in magnitude: at most 6 significant bits, exact in bfloat16 too
    assert np.array_equal(k, np.round(k)) and np.abs(k).max() <= 60
    n, c, h, w = x.shape
    windows = np.sort(x.reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(-1, 4), axis=1)
    assert (windows[:, 3] > windows[:, 2]).all()


def finding(backend: str, precision: str, layer: str, forward: dict[str, Any],
            backward: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    return {"backend": backend, "device": "cpu", "precision": precision, "layer": layer, "forward": forward,
            "backward": backward}  # fmt: skip


NATIVE = {"verdict": "native", "message": ""}
FINDINGS = [
    finding("torch", "fp32", "linear", NATIVE, NATIVE),
    finding("torch", "fp16", "linear", NATIVE, {"verdict": "slow", "ratio_to_fp32": 18.4, "message": "18× ..."}),
    finding("torch", "amp-fp16", "softmax", {"verdict": "upcast", "dtype": "float32", "message": "..."}, NATIVE),
    finding("pytensor", "bf16", "linear", {"verdict": "unsupported", "message": "TypeError: Invalid dtype: bfloat16"},
            {"verdict": "unsupported", "message": "TypeError: Invalid dtype: bfloat16"}),
    finding("pytensor", "bf16", "softmax", {"verdict": "unsupported", "message": "TypeError: Invalid dtype: bfloat16"},
            {"verdict": "wrong", "message": "relative error 2.0e-01 in x > tolerance 0.08"}),
]  # fmt: skip


def test_matrix_cells_classes_and_shared_notes() -> None:
    forward, backward = matrix_tables(FINDINGS)
    assert forward.columns == ["backend", "precision", "linear", "softmax"]
    rows = {(r[0], r[1]): (r, c) for r, c in zip(forward.rows, forward.classes, strict=True)}
    assert [key for key in rows] == [("torch", "fp32"), ("torch", "fp16"), ("torch", "amp-fp16"), ("pytensor", "bf16")]
    assert rows["torch", "fp32"][0][2:] == ["native", "—"] and rows["torch", "fp32"][1] == {2: "good"}
    assert rows["torch", "amp-fp16"][0][3] == "upcast: float32" and rows["torch", "amp-fp16"][1][3] == "info"
    # one quoted error, one note: both cells point at it
    assert rows["pytensor", "bf16"][0][2:] == ["unsupported [1]", "unsupported [1]"]
    assert forward.notes == ["[1] pytensor: unsupported: TypeError: Invalid dtype: bfloat16"]
    back = {(r[0], r[1]): (r, c) for r, c in zip(backward.rows, backward.classes, strict=True)}
    assert back["torch", "fp16"][0][2] == "slow 18×" and back["torch", "fp16"][1][2] == "warn"
    assert back["pytensor", "bf16"][0][3] == "wrong [2]" and back["pytensor", "bf16"][1][3] == "bad"


def test_report_section_renders_the_stored_matrix(tmp_path: Path) -> None:
    from dlbench.report.page import _section

    assert probe_section.build in SECTIONS
    store = Store(tmp_path / "s.sqlite")
    assert probe_section.build(store, []) is None  # no probe findings: no section
    store.create_run("p1", "probe", [], {}, {})
    for doc in FINDINGS:
        store.add_finding("p1", "probe", f"{doc['backend']}-cpu-{doc['precision']}-{doc['layer']}", doc)
    section = probe_section.build(store, [])
    assert section is not None and section.source_runs == ["p1"] and len(section.tables) == 2
    html = _section(section)
    assert '<td class="good"' in html and '<td class="warn"' in html and '<td class="neutral"' in html
    assert "Invalid dtype: bfloat16" in html
    store.close()


@pytest.mark.parametrize(
    ("argv", "text"),
    [
        (["--backends", "nosuch"], "unknown backend 'nosuch'"),
        (["--precisions", "fp8"], "unknown precision 'fp8'"),
        (["--layers", "conv3d"], "unknown layer 'conv3d'"),
        (["--device", "tpu"], "unknown device 'tpu'"),
        (["--timeout", "0"], "argument --timeout: expected a number of seconds > 0, got '0'"),
        (["--cpus", "x"], "bad --cpus 'x'"),
        (["--cpus", "99999"], "bad --cpus '99999': expected CPU ids from 0 to 65535"),
    ],
)
def test_usage_errors_write_nothing(argv: list[str], text: str, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    store = tmp_path / "s.sqlite"
    assert cli.main(["probe", *argv, "--store", str(store)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dlbench: error: ") and text in err and err.count("\n") == 1
    assert not store.exists()


@pytest.mark.parametrize("backend", ["numpy", "theano"])
def test_a_backend_without_layers_is_probed_as_unsupported_with_the_reason(backend: str, tmp_path: Path) -> None:
    # Its registry entry declares no layers: every cell says so (no worker starts), never a silent omission.
    from dlbench.probe import api

    run_id, findings = api.run([backend], precisions=["fp16"], layers=["linear", "conv2d"], store=tmp_path / "s.sqlite")
    assert [(f["precision"], f["layer"]) for f in findings] == [("fp32", "linear"), ("fp32", "conv2d"),
                                                                 ("fp16", "linear"), ("fp16", "conv2d")]  # fmt: skip
    reason = f"unsupported: the {backend} backend declares no layers for dlbench probe (its registry entry has none)"
    for finding in findings:
        for direction in ("forward", "backward"):
            assert finding[direction]["verdict"] == "unsupported" and finding[direction]["message"] == reason
    text = "\n".join(" ".join(row) + "\n" + "\n".join(t.notes) for t in matrix_tables(findings) for row in t.rows)
    assert "unsupported [1]" in text and reason in text
    store = Store(tmp_path / "s.sqlite", create=False)
    assert len(store.findings(run_id, "probe")) == 4 and store.get_run(run_id)["status"] == "complete"
    store.close()


def test_parent_side_of_the_probe_imports_no_framework() -> None:
    import subprocess
    import sys

    code = (
        "import sys, dlbench.cli, dlbench.probe.command, dlbench.probe.api, dlbench.probe.matrix\n"
        "import dlbench.probe.section, dlbench.backends.layers\n"
        "dlbench.cli._build_parser()[0].parse_args(['probe', '--backends', 'torch'])\n"
        "bad = [m for m in ('torch', 'tensorflow', 'jax', 'pytensor', 'keras') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""
