"""The store under hostile conditions: created by several processes at once, private to its owner, and never
written by a command that only reads it (whatever the file holds)."""

from __future__ import annotations

import hashlib
import multiprocessing
import stat
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dlbench.cli import main  # noqa: E402
from dlbench.core.cases import Case  # noqa: E402
from dlbench.store import Store  # noqa: E402
from synthetic import make_run  # noqa: E402

PLAN = [Case("lstm", {"seq_len": 2, "batch": 2, "hidden": 4}, "numpy", "fp32", "forward")]


def _create(path: str, run_id: str, barrier: multiprocessing.synchronize.Barrier) -> None:
    barrier.wait()
    store = Store(path)
    try:
        store.create_run(run_id, "s", PLAN, {}, {})
    finally:
        store.close()


def test_a_new_store_made_by_six_processes_at_once(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")  # not fork: a test process that imported JAX warns on fork
    for attempt in range(4):  # the race the issue saw failed about one time in six
        path = str(tmp_path / f"s{attempt}.sqlite")
        barrier = context.Barrier(6)
        workers = [context.Process(target=_create, args=(path, f"r{i}", barrier)) for i in range(6)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(60)
        assert [w.exitcode for w in workers] == [0] * 6
        store = Store(path, readonly=True)
        try:
            assert sorted(store.run_ids()) == [f"r{i}" for i in range(6)]
        finally:
            store.close()


def test_a_new_store_is_private(tmp_path: Path) -> None:
    path = tmp_path / "new" / "s.sqlite"
    Store(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def _folder(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("argv", [["runs"], ["show"], ["show", "--attempts", "r1"], ["show", "--format", "json"],
                                  ["report", "--format", "markdown"], ["compare", "r1", "r1"]])  # fmt: skip
def test_read_commands_write_nothing(argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "store"
    folder.mkdir()
    path = folder / "s.sqlite"
    make_run(path, PLAN, run_id="r1")
    before = _folder(folder)
    assert main([*argv, "--store", str(path)]) == 0, capsys.readouterr().err
    assert _folder(folder) == before  # no -wal, -shm or -journal, no upgrade, no WAL switch


@pytest.mark.parametrize("content", [b"", b"SQLite format 3\x00" + b"\x00" * 100, b"not sqlite\n" * 40])
def test_read_commands_leave_an_empty_or_foreign_file_alone(content: bytes, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "x.sqlite"
    path.write_bytes(content)
    for argv in (["runs"], ["show"], ["report", "--format", "markdown"]):
        assert main([*argv, "--store", str(path)]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "x.sqlite" in err, err
    assert path.read_bytes() == content and sorted(p.name for p in tmp_path.iterdir()) == ["x.sqlite"]


def test_report_never_overwrites_its_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.sqlite"
    make_run(path, PLAN, run_id="r1")
    before = path.read_bytes()
    for out in (str(path), f"{tmp_path}/./s.sqlite"):
        assert main(["report", "--store", str(path), "--out", out]) == 2
        assert "results store" in capsys.readouterr().err
    assert path.read_bytes() == before
