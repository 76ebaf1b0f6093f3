"""Every malformed invocation of tests/hostile.py: exit status 2, one line on stderr naming the bad value, no
traceback, no file created or changed (the fixtures' folder and the working folder are hashed before and after),
and no process started (a worker, an interpreter, pip: the guard below turns any into a failure)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dlbench.cli import main  # noqa: E402
from hostile import invocations, make_fixtures  # noqa: E402

CASES = invocations()


class _Started(BaseException):
    """A process was about to start: a malformed invocation got past validation."""


class _TooLong(BaseException):
    pass


def _snapshot(folder: Path) -> dict[str, str]:
    out = {}
    for path in sorted(folder.rglob("*")):
        stat = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        out[str(path.relative_to(folder))] = f"{digest} {stat.st_mode:o}"
    return out


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hostile")
    make_fixtures(folder)
    return folder


@pytest.fixture
def no_processes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise _Started(f"a process was started: {args[:2]!r}")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    monkeypatch.setattr(os, "fork", refuse)
    previous = signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(_TooLong("took over 20 s")))
    signal.alarm(20)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_the_corpus_is_large_and_distinct() -> None:
    argvs = [tuple(argv) for argv, _ in CASES]
    assert len(set(argvs)) == len(argvs), "duplicate invocations"
    assert len(argvs) >= 300


@pytest.mark.parametrize(("argv", "needle"), CASES, ids=[" ".join(a)[:80] for a, _ in CASES])
def test_malformed_invocation(argv: list[str], needle: str, fixtures: Path, no_processes: None,
                              capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    argv = [a.replace("{W}", str(fixtures)) for a in argv]
    needle = needle.replace("{W}", str(fixtures))
    monkeypatch.chdir(fixtures)
    monkeypatch.setenv("DLBENCH_STORE", str(fixtures / "default.sqlite"))
    before = _snapshot(fixtures)
    status = main(argv)
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert status == 2, (status, captured.err[-2000:])
    assert len(lines) == 1 and lines[0].startswith("dlbench: error:"), captured.err[-2000:]
    assert any(n[:60] in lines[0] for n in needle.split("|")), f"{needle!r} not named in: {lines[0]}"
    assert "Traceback" not in captured.err
    assert _snapshot(fixtures) == before, "a file was created or changed"
