"""The `theano` and `aesara` backends' registry side, without their frameworks: labels in the seed's tables, default
runs that leave them out until their env exists, and a backend module that stays importable by Python 3.9."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from dlbench.backends import BACKENDS
from dlbench.core.cases import Case
from dlbench.core.results import Result
from dlbench.runs import api
from dlbench.runs.tables import framework_label

BACKEND_DIR = Path(__file__).parents[2] / "src" / "dlbench" / "backends"


def _result(backend: str, versions: dict[str, str]) -> Result:
    case = Case("lstm", {"seq_len": 5, "batch": 2, "hidden": 8}, backend, "fp32", "forward")
    return Result(case, "ok", {"case": case.to_dict(), "status": "ok", "versions": versions})


def test_the_real_theano_row_is_labelled_with_theanos_own_version() -> None:
    assert framework_label(_result("theano", {"theano": "1.0.5", "numpy": "1.23.5"})) == "Theano 1.0.5"
    assert framework_label(_result("aesara", {"aesara": "2.9.4"})) == "Theano (Aesara 2.9.4)"
    assert framework_label(_result("pytensor", {"pytensor": "3.0.7"})) == "Theano (PyTensor 3.0.7)"


def test_pytensor_stays_the_primary_continuation_of_the_seeds_theano() -> None:
    from dlbench.report.seed2016 import continuations, variants

    assert continuations()["Theano"] == "pytensor"
    assert {"theano", "aesara"} <= set(variants()["Theano"])


def test_default_runs_take_them_only_where_their_env_exists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    defaults = api.default_backends()
    assert "theano" not in defaults and "aesara" not in defaults and "pytensor" in defaults
    env = tmp_path / "dlbench" / "envs" / "theano"
    env.mkdir(parents=True)
    (env / "dlbench-env.json").write_text('{"requirements": ["theano==1.0.5"]}')
    assert "theano" in api.default_backends() and "aesara" not in api.default_backends()
    assert BACKENDS["theano"].needs_env and BACKENDS["aesara"].needs_env


@pytest.mark.parametrize("module", ["theano/family.py", "theano/scan_lstm.py", "theano/backend.py",
                                    "theano/__init__.py", "aesara/backend.py", "aesara/__init__.py"])
def test_worker_side_modules_parse_as_python_3_9(module: str) -> None:
    """They run in a legacy env's interpreter (Python 3.9 where Theano's compiled scan builds): no 3.10+ syntax
    (match, parenthesised context managers) and no zip(strict=...), which 3.9 rejects at run time."""
    source = (BACKEND_DIR / module).read_text()
    tree = ast.parse(source, feature_version=(3, 9))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "zip":
            assert not any(k.arg == "strict" for k in node.keywords), f"{module}:{node.lineno}"
