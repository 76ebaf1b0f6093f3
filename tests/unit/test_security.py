"""Security: a suite file or a store never chooses a program to execute (runner/trust.py), the worker's import folder
is private (runner/interpreters.py worker_path), and text from suites, stores and workers reaches a terminal or
Markdown without escape sequences (core/text.py). An interpreter here is a shell script that leaves a marker file
when it is executed, so "not executed" is observed, not assumed."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import dlbench
import synthetic
from dlbench.cli import main
from dlbench.core.cases import Case
from dlbench.core.errors import UsageError
from dlbench.core.tables import Table, markdown_table, print_tables
from dlbench.core.text import printable
from dlbench.runner import environments, interpreters
from dlbench.runner.interpreters import Interpreter, private_folder_problem, worker_path
from dlbench.store import Store

NOTE = "\u001b[31mred\u001b]0;title\u0007"
HOSTILE = ("\x1b", "\x07", "\x9b", "\x9d", "\u202e")
LSTM = Case("lstm", {"seq_len": 2, "batch": 1, "hidden": 4}, "numpy", "fp32", "forward")


def assert_clean(text: str) -> None:
    found = [repr(c) for c in HOSTILE if c in text]
    assert not found, f"{found} in output: {text[:400]!r}"


@pytest.fixture
def data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    return tmp_path / "data"


@pytest.fixture
def program(tmp_path: Path) -> Path:
    """An 'interpreter' that leaves `executed` beside itself, then runs this Python."""
    path = tmp_path / "bin" / "python"
    path.parent.mkdir()
    path.write_text(f'#!/bin/sh\necho "$@" >> "{tmp_path / "executed"}"\nexec "{sys.executable}" "$@"\n')
    path.chmod(0o755)
    return path


def managed_env(name: str, env: dict[str, str]) -> environments.Env:
    """An env as `dlbench envs create` leaves it (its interpreter a symlink to this one, as in a venv)."""
    path = environments.envs_dir() / name
    (path / "bin").mkdir(parents=True)
    (path / "bin" / "python").symlink_to(sys.executable)
    (path / environments.METADATA).write_text(json.dumps({"requirements": ["numpy"], "env": env}))
    found = environments.find_env(name)
    assert found is not None
    return found


def suite_file(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "hostile.toml"
    path.write_text(f'{extra}\n[[experiments]]\nworkload = "lstm"\nprecisions = ["fp32"]\nmodes = ["forward"]\n'
                    "[experiments.sizes]\nseq_len = [2]\nbatch = [1]\nhidden = [4]\n")  # fmt: skip
    return path


# -- a suite file's [pythons] -----------------------------------------------------------------------------------


def test_a_suite_naming_a_program_does_not_run_it(
    tmp_path: Path, program: Path, data_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = suite_file(tmp_path, f'[pythons]\nnumpy = "{program}"')
    store = tmp_path / "s.sqlite"
    assert main(["run", str(suite), "--backends", "numpy", "--store", str(store)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "--trust-interpreters" in lines[0] and f"--python numpy={program}" in lines[0], lines
    assert not (tmp_path / "executed").exists() and not store.exists()


def test_the_opt_in_or_the_same_path_on_the_command_line_runs_it(
    tmp_path: Path, program: Path, data_home: Path
) -> None:
    suite = str(suite_file(tmp_path, f'[pythons]\nnumpy = "{program}"'))
    for how in ({"trust_interpreters": True}, {"pythons": {"numpy": str(program)}}):
        chosen = dlbench.plan(suite, backends=["numpy"], **how).settings.placement.interpreters
        assert chosen["numpy"].python == str(program) and chosen["numpy"].env_vars == {}


def test_a_suite_path_that_is_a_managed_envs_interpreter_is_that_env(tmp_path: Path, data_home: Path) -> None:
    env = managed_env("legacy", {"THEANO_FLAGS": "blas.ldflags="})
    suite = str(suite_file(tmp_path, f'[pythons]\nnumpy = "{env.python}"'))
    chosen = dlbench.plan(suite, backends=["numpy"]).settings.placement.interpreters["numpy"]
    assert chosen.env_name == "legacy" and chosen.env_vars == {"THEANO_FLAGS": "blas.ldflags="}


@pytest.mark.parametrize("name", ["../x", "/abs/olute", "a/b", "", ".hidden", "x" * 65])
def test_suite_envs_name_managed_envs_never_paths(tmp_path: Path, data_home: Path, name: str) -> None:
    suite = str(suite_file(tmp_path, f'[envs]\nnumpy = "{name}"'))
    with pytest.raises(UsageError, match="malformed suite|is not an env name"):
        dlbench.plan(suite, backends=["numpy"])


# -- a stored run's interpreters ----------------------------------------------------------------------------------


def stored_run(store: Path, interpreter: dict[str, Any]) -> None:
    """A run as a crafted store may hold it: its settings name an interpreter with environment variables."""
    settings = dlbench.plan("quick", backends=["numpy"]).settings.to_dict()
    settings["interpreters"] = {"numpy": interpreter}
    db = Store(store)
    db.create_run("r1", "quick", [LSTM], settings, {})
    db.close()


EVIL_VARS = {"LD_PRELOAD": "/tmp/evil.so", "PYTHONPATH": "/tmp/evil", "PYTHONSTARTUP": "/tmp/evil.py"}


def test_resuming_a_store_that_names_a_program_does_not_run_it(
    tmp_path: Path, program: Path, data_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "s.sqlite"
    stored_run(store, {"python": str(program), "env_vars": EVIL_VARS, "env_name": "", "how": "--python"})
    before = store.read_bytes()
    assert main(["run", "--resume", "r1", "--store", str(store)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "--trust-interpreters" in lines[0], lines
    assert not (tmp_path / "executed").exists() and store.read_bytes() == before


def test_a_store_cannot_pass_for_a_managed_env(tmp_path: Path, program: Path, data_home: Path) -> None:
    managed_env("legacy", {})
    store = tmp_path / "s.sqlite"
    stored_run(store, {"python": str(program), "env_vars": {}, "env_name": "legacy", "how": "--env"})
    with pytest.raises(UsageError, match="env 'legacy', which is gone or elsewhere now"):
        dlbench.plan(resume="r1", store=store)


def test_resume_with_the_opt_in_runs_the_path_but_never_the_stored_variables(
    tmp_path: Path, program: Path, data_home: Path
) -> None:
    store = tmp_path / "s.sqlite"
    stored_run(store, {"python": str(program), "env_vars": EVIL_VARS, "env_name": "", "how": "--python"})
    for how in ({"trust_interpreters": True}, {"pythons": {"numpy": str(program)}}):
        resumed = dlbench.plan(resume="r1", store=store, **how)
        chosen = resumed.settings.placement.interpreters["numpy"]
        assert chosen.python == str(program) and chosen.env_vars == {}
        env = chosen.worker_env()
        assert set(env) == {"PYTHONPATH"} and env["PYTHONPATH"] == worker_path()
        assert "LD_PRELOAD" in resumed.settings.note  # the user is told what was left out
    with pytest.raises(UsageError, match="ran 'numpy' under"):
        dlbench.plan(resume="r1", store=store, pythons={"numpy": sys.executable})  # not the stored path


def test_a_resumed_managed_env_takes_its_variables_from_the_env_not_the_store(tmp_path: Path, data_home: Path) -> None:
    env = managed_env("legacy", {"THEANO_FLAGS": "blas.ldflags="})
    store = tmp_path / "s.sqlite"
    stored_run(store, {"python": str(env.python), "env_vars": EVIL_VARS, "env_name": "legacy", "how": "--env"})
    chosen = dlbench.plan(resume="r1", store=store).settings.placement.interpreters["numpy"]
    assert chosen == Interpreter(str(env.python), {"THEANO_FLAGS": "blas.ldflags="}, "legacy", "--env")


def test_a_stored_compilation_cache_is_code_and_needs_the_opt_in(tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite"
    cached = Case("lstm", {"seq_len": 2, "batch": 1, "hidden": 4}, "numpy", "fp32", "forward",
                  options={"cache_dir": str(tmp_path / "planted")})  # fmt: skip
    settings = dlbench.plan("quick", backends=["numpy"]).settings.to_dict()
    db = Store(store)
    db.create_run("r1", "quick", [cached], settings, {})
    db.close()
    with pytest.raises(UsageError, match="cache_dir at .*planted.*--trust-interpreters"):
        dlbench.plan(resume="r1", store=store)
    assert dlbench.plan(resume="r1", store=store, trust_interpreters=True).remaining == [cached]


# -- the worker's import folder ---------------------------------------------------------------------------------


@pytest.fixture
def temp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    interpreters._private_worker_path.cache_clear()
    yield root
    interpreters._private_worker_path.cache_clear()


def shared_name(temp_root: Path) -> Path:
    [path] = temp_root.glob("dlbench-worker-path-*")
    return path


def test_the_worker_folder_is_private(temp_root: Path) -> None:
    path = Path(worker_path())
    assert path == shared_name(temp_root)
    info = os.lstat(path)
    assert stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) == 0o700
    assert [p.name for p in path.iterdir()] == ["dlbench"]


def test_a_planted_sitecustomize_is_never_on_a_workers_path(temp_root: Path, tmp_path: Path) -> None:
    shared = Path(worker_path())
    shared.chmod(0o777)  # as if someone else made it first, open to all, and planted a module in it
    (shared / "sitecustomize.py").write_text(f"open({str(tmp_path / 'planted-ran')!r}, 'w').close()\n")
    used = worker_path()
    assert Path(used) != shared and private_folder_problem(Path(used)) is None
    subprocess.run([sys.executable, "-c", "import dlbench"], env={**os.environ, "PYTHONPATH": used}, check=True)
    assert not (tmp_path / "planted-ran").exists()


def test_a_foreign_owned_folder_is_not_used(temp_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = Path(worker_path())
    monkeypatch.setattr(os, "getuid", lambda: os.geteuid() + 1)  # the folder now belongs to someone else
    assert "owned by uid" in (private_folder_problem(shared) or "")
    assert Path(worker_path()) != shared


def test_a_symlink_or_extra_entries_are_refused(temp_root: Path, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    link = temp_root / "link"
    link.symlink_to(target)
    assert "not a directory" in (private_folder_problem(link) or "")
    (target / "numpy.py").write_text("")
    assert "numpy.py" in (private_folder_problem(target) or "")


def test_an_older_dlbenchs_0755_folder_is_tightened_and_kept(temp_root: Path) -> None:
    shared = Path(worker_path())
    shared.chmod(0o755)  # what the shared name got before: others could read, not write
    assert worker_path() == str(shared) and stat.S_IMODE(os.lstat(shared).st_mode) == 0o700


# -- escape sequences -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (NOTE, "red"),
        ("a\x9b31mb", "ab"),  # 8-bit CSI
        ("x\x1b]8;;http://e.example\x1b\\link\x1b]8;;\x1b\\", "xlink"),  # OSC 8 hyperlink
        ("\x1b]52;c;Y2xpcA==\x07copied", "copied"),  # OSC 52 clipboard write
        ("a\tb\r\nc\x00\x7f\x85", "a b c"),
        ("file\u202etxt.exe", "filetxt.exe"),
        ("reset\x1bc", "reset"),
        ("plain: 1,234.5 samples/s ±2% → é", "plain: 1,234.5 samples/s ±2% → é"),
    ],
)
def test_printable(text: str, expected: str) -> None:
    assert printable(text) == expected
    assert printable("one\ntwo\x1b[2J", newlines=True) == "one\ntwo"


def hostile_run(tmp_path: Path) -> Path:
    """A stored run whose every text a user may see carries escape sequences: note, suite name, CPU model, an error."""
    other = Case("lstm", {"seq_len": 2, "batch": 1, "hidden": 4}, "jax", "fp32", "forward")
    error = "boom \x1b]0;pwned\x07 \x9b31mred\x1b[0m\nsecond line \x1b[2J"
    synthetic.make_run(tmp_path / "s.sqlite", [LSTM], run_id="r\x1b[31m2")  # a run id is a store's text too
    synthetic.make_run(tmp_path / "s.sqlite", [LSTM, other], run_id="r1", suite="s\x1b[2Jx",
                       settings={"note": NOTE}, fp=synthetic.fingerprint(cpu={"model": "cpu\x1b[5m"}),
                       outcome=lambda c: {"status": "error", "error": error} if c.backend == "jax" else {})  # fmt: skip
    return tmp_path / "s.sqlite"


@pytest.mark.parametrize(
    "argv",
    [
        ["show", "r1"], ["show", "r1", "--format", "markdown"], ["show", "r1", "--format", "csv"],
        ["runs"], ["report", "r1", "--format", "markdown"], ["report", "r1", "--out", "-"],
        ["compare", "r1", "r1"], ["compare", "r1", "r1", "--format", "markdown"],
    ],
    ids=lambda argv: "-".join(a.strip("-") for a in argv),
)
def test_no_escape_sequence_reaches_the_terminal_or_markdown(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "300")
    monkeypatch.chdir(tmp_path)
    store = hostile_run(tmp_path)
    code = main([*argv, "--store", str(store)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert_clean(out + err)
    assert ("r2" if argv == ["runs"] else "red") in out  # the text stays, only the sequences go


@pytest.mark.parametrize("name", ["r.md", "r.html"])
def test_report_files_are_clean(tmp_path: Path, name: str) -> None:
    store = hostile_run(tmp_path)
    fmt = ["--format", "markdown"] if name.endswith(".md") else []
    assert main(["report", "r1", "--store", str(store), "--out", str(tmp_path / name), *fmt]) == 0
    text = (tmp_path / name).read_text()
    assert_clean(text)
    assert "boom" in text


def test_printed_tables_and_the_runs_progress_lines_are_clean(capsys: pytest.CaptureFixture[str]) -> None:
    from dlbench.runs.command import _Progress

    table = Table("title\x1b]0;t\x07", ["col\x1b[31m"], [["cell\x9b2J"]], ["note\x1b[1m"])
    print_tables([table], "table", ["extra\x07"])
    print_tables([table], "markdown", ["extra\x07"])
    assert_clean(markdown_table(table))
    progress = _Progress(1, NOTE)
    with progress.progress:
        progress("start", LSTM, None)
        progress("done", LSTM, {"status": "error", "error": "worker said \x1b]0;pwned\x07 \x1b[2Jboom"})
    out, err = capsys.readouterr()
    assert_clean(out + err)
    assert "red" in err and "boom" in err
