"""The usability command's parent side: the AST code metrics (exact counts on a synthetic module, and the code parts
the real backends' registry entries declare), the report section's tables and colours, and the command's usage
errors; a backend that declares no probes is reported as unsupported, with the reason."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dlbench import cli
from dlbench.backends import BACKENDS, usability_of
from dlbench.store import Store
from dlbench.usability import code_metrics
from dlbench.usability import section as usability_section
from dlbench.usability.code_metrics import Module

SOURCE = '''"""Module docstring
over two lines."""

import torch
from torch import nn
import numpy as np


def build(size):
    """Docstring."""
    # a comment
    layer = nn.LSTM(size,
                    size)  # wrapped: two lines, one statement
    x = torch.zeros(3)

    return layer, np.ones(2), torch.float32, x.shape


class Model:
    def step(self, keras):
        y = self.helper(keras.layers.Dense(2), self.keras.ops.mean)
        return torch.nn.functional.relu(y)
'''


def test_counts_lines_statements_and_framework_names_exactly() -> None:
    module = Module(SOURCE, {"torch"})
    build = module.count(["build"])
    # def, the call wrapped over two lines, x = ..., return: docstring, comment and blank lines not counted.
    assert (build.lines, build.statements) == (5, 4)
    # nn.LSTM resolves through `from torch import nn`; numpy is not a framework here; x.shape is no module's.
    assert build.api == ("torch.float32", "torch.nn.LSTM", "torch.zeros")
    step = module.count(["Model.step"])
    assert (step.lines, step.statements) == (3, 3)
    assert step.api == ("torch.nn.functional.relu",)  # keras is not a framework of this module
    whole = module.count()
    assert (whole.lines, whole.statements) == (12, 11)  # + 3 imports, the class line


def test_a_framework_module_passed_as_a_parameter_or_held_by_self_counts() -> None:
    step = Module(SOURCE, {"keras"}).count(["Model.step"])
    assert step.api == ("keras.layers.Dense", "keras.ops.mean")


def test_unknown_function_names_are_refused() -> None:
    with pytest.raises(KeyError, match="nosuch"):
        Module(SOURCE, {"torch"}).count(["build", "nosuch"])


PROBED = sorted(name for name in BACKENDS if usability_of(name)[0] is not None)


@pytest.mark.parametrize("backend", PROBED)
def test_every_probed_backend_declares_its_workload_code(backend: str) -> None:
    metrics = code_metrics.backend_metrics(backend, ["lstm", "vgg16"])  # KeyError if code_parts names a stale name
    for workload, doc in metrics.items():
        assert "note" not in doc, doc.get("note")
        assert doc["model"]["lines"] > 0 and doc["step"]["lines"] > 0, workload
        assert doc["api_distinct"] > 0  # every implementation calls its framework
        assert doc["module_total"]["lines"] > doc["model"]["lines"] + doc["step"]["lines"] - 1


def test_bare_scripts_are_counted_with_their_frameworks() -> None:
    bare = code_metrics.bare_metrics()
    assert bare["torch.py"]["frameworks"] == ["torch"]
    assert "torch.nn.LSTM" in bare["torch.py"]["api"]
    assert bare["keras.py"]["frameworks"] == ["keras"]
    assert all(doc["lines"] > 0 for doc in bare.values())


def test_code_metrics_and_the_command_import_no_framework() -> None:
    code = (
        "import sys, dlbench.usability.command, dlbench.usability.api, dlbench.usability.section\n"
        "from dlbench.usability import code_metrics\n"
        "[code_metrics.backend_metrics(b, ['lstm', 'vgg16']) for b in dlbench.usability.api.default_backends()]\n"
        "code_metrics.bare_metrics()\n"
        "print(','.join(m for m in ('torch', 'tensorflow', 'jax', 'pytensor', 'keras') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""


def test_export_paths_only_for_probed_backends() -> None:
    assert {name for name, info in BACKENDS.items() if info.exports} <= set(PROBED)


def _export(outcome: str, **extra: object) -> dict[str, object]:
    return {
        "part": "export",
        "backend": "torch",
        "workload": "lstm",
        "path": f"p-{outcome}",
        "status": "ok",
        "outcome": outcome,
        **extra,
    }


def test_export_table_colours_outcomes() -> None:
    table = usability_section.export_table(
        [
            _export("reproduces", max_rel_error=1e-7),
            _export("differs", max_rel_error=0.5),
            _export("fails", exception="RuntimeError", message="boom\nsecond line"),
            _export("not probed", reason="needs onnx"),
            _export("exported, not re-run"),
            {
                "part": "export",
                "backend": "torch",
                "workload": "lstm",
                "path": "x",
                "status": "timeout",
                "error": "slow",
            },
        ]
    )
    assert [c[3] for c in table.classes] == ["good", "warn", "bad", "neutral", "info", "bad"]
    assert table.rows[0][4] == "1.0e-07"
    assert any("boom ⏎ second line" in note for note in table.notes)  # the message verbatim, breaks marked


def test_debugging_and_shape_tables() -> None:
    eager = {
        "part": "debugging",
        "backend": "a",
        "workload": "lstm",
        "status": "ok",
        "compiled_by": "eager",
        "prints": {"build": 0, "step1": 1, "steps2_3": 2},
        "every_step": True,
    }
    traced = {**eager, "backend": "b", "prints": {"build": 0, "step1": 1, "steps2_3": 0}, "every_step": False}
    table = usability_section.debugging_table([eager, traced])
    assert [row[6] for row in table.rows] == ["yes", "no: at trace/compile only"]
    assert [c[6] for c in table.classes] == ["good", "warn"]
    shape = {
        "part": "shape_error",
        "backend": "a",
        "workload": "lstm",
        "status": "ok",
        "raised_in": "step1",
        "exception": "builtins.ValueError",
        "message": "shapes differ\nat line 2",
        "innermost_kind": "framework",
        "innermost": "fw/x.py:1 in f",
        "framework_frames": 3,
        "traceback_frames": 5,
        "user_frame": None,
    }
    table = usability_section.shape_table([shape])
    assert table.rows[0][2] == "in step 1" and table.rows[0][4] == "shapes differ"
    assert table.notes == ["a lstm, builtins.ValueError: shapes differ ⏎ at line 2"]


def test_headline_finds_the_line_that_states_the_error() -> None:
    tf_style = 'in user code:\n\n    File "/a/m.py", line 3, in f  *\n        return g(x)\n\n    ValueError: bad shape'
    assert usability_section.headline(tf_style) == "bad shape"
    keras_style = (
        "Exception encountered when calling LSTM.call().\n\nmat1 and mat2 differ\n\nArguments received by:\n  • x=1"
    )
    assert usability_section.headline(keras_style) == "mat1 and mat2 differ"
    assert usability_section.headline("one\ntwo") == "one"


def test_report_section_reads_the_latest_usability_run(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = Store(tmp_path / "s.sqlite")
    assert usability_section.build(store, []) is None  # nothing measured: no section
    store.create_run("r1", "usability", [], {}, {})
    store.add_finding("r1", "export", "torch-lstm-p", _export("reproduces", max_rel_error=0.0))
    section = usability_section.build(store, [])
    assert section is not None and section.source_runs == ["r1"]
    assert [t.title for t in section.tables] == ["Moving to production: export paths, probed for real"]
    store.close()


def test_a_backend_that_is_not_installed_gives_unsupported_findings(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import dataclasses

    from dlbench.usability import api

    missing = dataclasses.replace(BACKENDS["jax"], requires=("dlbench_no_such_module",), install="pip install it")
    monkeypatch.setitem(BACKENDS, "jax", missing)
    seen: list[str] = []
    run_id = api.run(["jax"], ["lstm"], ["debugging", "export"], tmp_path / "s.sqlite",
                     on_finding=lambda kind, key, doc: seen.append(key), paths=["jax.export"])  # fmt: skip
    store = Store(tmp_path / "s.sqlite", create=False)
    usability, exports = store.findings(run_id, "usability"), store.findings(run_id, "export")
    assert store.get_run(run_id)["status"] == "complete"
    store.close()
    assert seen == ["debugging-jax-lstm", "shape_error-jax-lstm", "jax-lstm-jax.export"]
    for doc in [*usability.values(), *exports.values()]:
        assert doc["status"] == "unsupported" and "dlbench_no_such_module is not installed" in doc["error"]
    assert exports["jax-lstm-jax.export"]["path"] == "jax.export"


@pytest.mark.parametrize("backend", ["numpy", "theano"])
def test_a_backend_without_probes_is_reported_unsupported_with_the_reason(tmp_path, backend) -> None:  # type: ignore[no-untyped-def]
    # Its registry entry declares no usability probes: its debugging findings say so (no worker starts), and the
    # code part still counts what its entry declares. Never a silent omission.
    from dlbench.usability import api

    seen: dict[str, dict[str, object]] = {}
    run_id = api.run([backend], ["lstm"], ["code", "debugging", "export"], tmp_path / "s.sqlite",
                     on_finding=lambda kind, key, doc: seen.setdefault(key, doc))  # fmt: skip
    assert set(seen) == {f"code-{backend}-lstm", f"debugging-{backend}-lstm", f"shape_error-{backend}-lstm",
                         *(f"bare-{s}" for s in code_metrics.bare_metrics())}  # fmt: skip
    for part in ("debugging", "shape_error"):
        doc = seen[f"{part}-{backend}-lstm"]
        assert doc["status"] == "unsupported"
        assert doc["error"] == f"the {backend} backend declares no usability probes (its registry entry has none)"
    store = Store(tmp_path / "s.sqlite", create=False)
    assert store.get_run(run_id)["status"] == "complete"
    store.close()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["usability", "--backends", "nosuch"], "unknown backend 'nosuch'"),
        (["usability", "--workloads", "mlp"], "unknown workload 'mlp'"),
        (["usability", "--parts", "speed"], "unknown usability part 'speed'"),
    ],
)
def test_usage_errors_write_nothing(tmp_path, capsys, argv, message) -> None:  # type: ignore[no-untyped-def]
    store = tmp_path / "s.sqlite"
    assert cli.main([*argv, "--store", str(store)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dlbench: error: ") and message in err and len(err.strip().splitlines()) == 1
    assert not store.exists()
