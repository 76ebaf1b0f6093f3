"""Managed environments and other interpreters: recipes, argument parsing, env listing in a private data directory,
which interpreter each backend spec gets, and user mistakes (one line, exit 2, nothing written)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from dlbench.backends import BackendInfo, get_backend, recipes
from dlbench.cli import main
from dlbench.core.arguments import assignments as parse_assignments
from dlbench.core.cases import Case
from dlbench.core.errors import UsageError
from dlbench.envs import api as envs
from dlbench.runner import environments
from dlbench.runner.interpreters import Interpreter, interpreter_packages, resolve, worker_path


@pytest.fixture
def data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    return tmp_path / "data"


def fake_env(name: str, requirements: tuple[str, ...] = ("numpy",), env: dict[str, str] | None = None) -> Path:
    """An env directory as `envs create` leaves it, whose interpreter is this one (a symlink, as in a venv)."""
    path = envs.envs_dir() / name
    (path / "bin").mkdir(parents=True)
    (path / "bin" / "python").symlink_to(sys.executable)
    (path / environments.METADATA).write_text(json.dumps({"requirements": list(requirements), "env": env or {},
                                                 "python_version": "3.11.0"}))  # fmt: skip
    return path


def test_recipes_pin_the_legacy_stack() -> None:
    theano = recipes()["theano"]
    assert theano.requirements == ("theano==1.0.5", "numpy==1.23.5", "scipy==1.11.4")
    assert theano.env == {"THEANO_FLAGS": "blas.ldflags="}
    assert "aesara==2.9.4" in recipes()["aesara"].requirements


def test_envs_dir_honours_xdg_data_home(data_home: Path) -> None:
    assert envs.envs_dir() == data_home / "dlbench" / "envs"


def test_listing_reads_metadata_and_skips_unfinished_creates(data_home: Path) -> None:
    fake_env("legacy", ("numpy==1.23.5",), {"THEANO_FLAGS": "blas.ldflags="})
    (envs.envs_dir() / "half-made" / "bin").mkdir(parents=True)  # no metadata: a create that did not finish
    listed = envs.list_envs()
    assert [e.name for e in listed] == ["legacy"]
    assert listed[0].requirements == ["numpy==1.23.5"] and listed[0].env == {"THEANO_FLAGS": "blas.ldflags="}
    assert "numpy" in {name.lower() for name in interpreter_packages(str(listed[0].python))}  # asked of it


def test_unknown_env_names_the_existing_ones_and_the_create_command(data_home: Path) -> None:
    fake_env("legacy")
    with pytest.raises(UsageError, match=r"unknown env 'theano' \(existing: legacy; `dlbench envs create theano`"):
        envs.get_env("theano")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("theano==1.0.5 numpy==1.23.5", ["theano==1.0.5", "numpy==1.23.5"]), ("a<2, b", ["a<2", "b"])],
)
def test_parse_requirements(text: str, expected: list[str]) -> None:
    assert envs.parse_requirements(text) == expected


@pytest.mark.parametrize("text", ["", "  ", "--index-url http://x numpy"])
def test_bad_requirements(text: str) -> None:
    with pytest.raises(UsageError, match="bad --requirements"):
        envs.parse_requirements(text)


def test_parse_assignments() -> None:
    assert parse_assignments(["theano=/x/bin/python", "torch@old = /y"], "--python") == {
        "theano": "/x/bin/python", "torch@old": "/y"}  # fmt: skip
    with pytest.raises(UsageError, match="bad --env 'theano': expected BACKEND=VALUE"):
        parse_assignments(["theano"], "--env")


def test_an_env_named_like_a_backend_runs_it_by_default_and_says_so(data_home: Path) -> None:
    fake_env("numpy")
    chosen, notes = resolve(["numpy"])
    assert chosen["numpy"].env_name == "numpy" and chosen["numpy"].how == "default env"
    assert len(notes) == 1 and "managed env 'numpy'" in notes[0] and "--env numpy=-" in notes[0]
    assert resolve(["numpy"], envs={"numpy": "-"}) == ({}, [])  # dlbench's own interpreter, on request


def test_tagged_spec_uses_the_env_of_its_tag_and_python_paths_are_checked(data_home: Path) -> None:
    fake_env("legacy", env={"X": "1"})
    chosen, _ = resolve(["numpy", "numpy@legacy"])
    assert list(chosen) == ["numpy@legacy"] and chosen["numpy@legacy"].env_vars == {"X": "1"}
    chosen, _ = resolve(["numpy"], pythons={"numpy": sys.executable})
    assert chosen["numpy"].python == str(Path(sys.executable).absolute()) and chosen["numpy"].how == "--python"


@pytest.mark.parametrize(
    ("specs", "pythons", "env_map", "message"),
    [
        (["numpy"], {"numpy": "/no/such/python"}, {}, "bad --python numpy=/no/such/python: no executable file"),
        (["numpy"], {}, {"torch": "x"}, "bad --env torch=...: 'torch' is not among this run's backends (numpy)"),
        (["numpy"], {}, {"numpy": "nosuch"}, "unknown env 'nosuch'"),
        (["numpy@nosuch"], {}, {}, "unknown env 'nosuch'"),
        (["nosuch@x"], {}, {}, "unknown backend 'nosuch'"),
        (["numpy@bad/tag"], {}, {}, "bad env name 'bad/tag'"),
    ],
)
def test_resolve_mistakes(
    data_home: Path, specs: list[str], pythons: dict[str, str], env_map: dict[str, str], message: str
) -> None:
    with pytest.raises(UsageError) as caught:
        resolve(specs, pythons, env_map)
    assert message in str(caught.value)


def test_availability_is_asked_of_the_other_interpreter(data_home: Path) -> None:
    interpreter = Interpreter(str(fake_env("legacy") / "bin" / "python"), env_name="legacy")
    assert interpreter.available(get_backend("numpy")) == (True, "")
    missing = BackendInfo("nothing", "dlbench.backends.nothing:X", "Nothing", requires=("dlbench_no_such_module",))
    ok, reason = interpreter.available(missing)
    assert not ok and reason.startswith("dlbench_no_such_module is not installed in env 'legacy'")


def test_worker_path_holds_only_dlbench() -> None:
    root = Path(worker_path())
    assert [p.name for p in root.iterdir() if not p.name.startswith(".")] == ["dlbench"]
    assert (root / "dlbench").resolve() == Path(environments.__file__).resolve().parent.parent


def test_env_tag_is_part_of_the_case_identity() -> None:
    plain = Case("lstm", {"seq_len": 2, "batch": 1, "hidden": 4}, "torch", "fp32", "forward")
    tagged = Case("lstm", {"seq_len": 2, "batch": 1, "hidden": 4}, "torch", "fp32", "forward", env="old")
    assert "-torch@old-fp32-" in tagged.key and plain.key != tagged.key
    assert "env" not in plain.to_dict() and Case.from_dict(tagged.to_dict()) == tagged


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["envs", "create", "mystack"], "no built-in recipe for env 'mystack' (recipes: theano, aesara)"),
        (["envs", "create", "bad/name", "--requirements", "numpy"], "bad env name 'bad/name'"),
        (["envs", "create", "x", "--requirements", "numpy", "--python", "/no/python"], "bad --python '/no/python'"),
        (["envs", "remove", "nosuch"], "unknown env 'nosuch'"),
        (["envs"], "dlbench envs needs an action"),
        (["run", "lstm", "--backends", "numpy", "--python", "numpy=/no/python"], "bad --python numpy=/no/python"),
        (["run", "lstm", "--backends", "numpy", "--env", "numpy"], "bad --env 'numpy'"),
        (["run", "lstm", "--backends", "numpy@nosuch"], "unknown env 'nosuch'"),
        (["verify", "--backends", "numpy", "--env", "numpy=nosuch"], "unknown env 'nosuch'"),
    ],
)
def test_usage_errors(
    argv: list[str], message: str, data_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "s.sqlite"
    extra = ["--store", str(store)] if argv[0] == "run" else []
    assert main([*argv, *extra]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert not store.exists() and not envs.envs_dir().exists()  # nothing written


def test_list_says_a_backend_runs_via_its_env(
    data_home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "300")  # rich would wrap the cell in a narrow terminal
    fake_env("numpy")
    assert main(["list"]) == 0
    assert "yes, via env numpy" in capsys.readouterr().out


def test_a_suite_file_names_envs_and_the_command_line_wins(data_home: Path, tmp_path: Path) -> None:
    from dlbench.runs import api

    fake_env("legacy")
    suite_file = tmp_path / "mine.toml"
    suite_file.write_text('[envs]\nnumpy = "legacy"\ntorch = "nosuch"\n[[experiments]]\nworkload = "lstm"\n'
                          "[experiments.sizes]\nhidden = [8]\n")  # fmt: skip
    suite, plan = api.plan_cases(str(suite_file), backends=["numpy"])
    chosen, _ = api.interpreters_for(suite, plan)  # torch is not run: its entry is not an error
    assert chosen["numpy"].env_name == "legacy" and chosen["numpy"].how == "--env"
    chosen, _ = api.interpreters_for(suite, plan, pythons={"numpy": sys.executable})
    assert chosen["numpy"].how == "--python"
    assert api.interpreters_for(suite, plan, envs={"numpy": "-"}) == ({}, [])


def test_a_recipes_flags_go_before_the_users_own_so_the_users_win(monkeypatch: pytest.MonkeyPatch) -> None:
    interpreter = Interpreter(sys.executable, {"THEANO_FLAGS": "blas.ldflags=", "OTHER": "recipe"}, "theano", "env")
    monkeypatch.delenv("THEANO_FLAGS", raising=False)
    assert interpreter.worker_env()["THEANO_FLAGS"] == "blas.ldflags="
    monkeypatch.setenv("THEANO_FLAGS", "blas.ldflags=-lopenblas,optimizer=fast_compile")
    monkeypatch.setenv("OTHER", "user")
    env = interpreter.worker_env()
    # Theano and Aesara parse the list left to right, a later entry overriding an earlier one.
    assert env["THEANO_FLAGS"] == "blas.ldflags=,blas.ldflags=-lopenblas,optimizer=fast_compile"
    assert env["OTHER"] == "recipe"  # not a flag list: the recipe's value, as before
