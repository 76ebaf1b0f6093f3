"""User mistakes: one line on stderr naming the bad value and what is allowed, exit 2, nothing written."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from dlbench.cli import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "quick", "--backends", "nosuch"], "unknown backend 'nosuch' (allowed: "),
        (["run", "nosuch"], "unknown suite or workload 'nosuch' (allowed: "),
        (["run", "quick", "--precisions", "fp8"], "unknown precision 'fp8' (allowed: bf16, fp16, fp32)"),
        (["run", "lstm", "--set", "hidden=abc"], "bad size 'hidden=abc': values must be integers"),
        (["run", "lstm", "--set", "hidden"], "bad --set 'hidden'"),
        (["run", "lstm", "--set", "hidden=0"], "bad size hidden=0 for lstm"),
        (["run", "quick", "--modes", "sideways"], "unknown mode 'sideways'"),
        (["run", "quick", "--device", "tpu"], "unknown device 'tpu'"),
        (["run", "quick", "--timeout", "-1"], "argument --timeout: expected a number of seconds > 0, got '-1'"),
        (["run", "quick", "--cpus", "999"], "bad --cpus 999"),
        (["run", "--resume", "nosuchrun"], "no store at"),
        (["run", "quick", "--resume", "nosuchrun"], "--resume finishes a run as it was planned; drop a suite"),
        (["run", "--bogus"], "unrecognized arguments: --bogus"),
        (["show"], "no store at"),
        (["run", "quick", "--spread"], "--spread needs --cluster ADDRESS"),
        (["run", "quick", "--nodes", "accelerator:H200"], "--nodes needs --cluster ADDRESS"),
        (["run", "quick", "--cluster", "local:99"], "bad --cluster 'local:99': local:N takes 1 to 16 nodes"),
        (["run", "quick", "--cluster", "auto", "--nodes", "gpu=2"], "bad --nodes term 'gpu=2': allowed are "),
        (["run", "quick", "--cluster", "auto", "--spread", "--on-every-node"], "not allowed with argument"),
    ],
)
def test_usage_errors(argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "s.sqlite"
    assert main([*argv, "--store", str(store)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], captured.err
    assert "Traceback" not in captured.err
    assert not store.exists()  # nothing written


def test_cluster_without_ray_says_how_to_install_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed: `import ray` raises ImportError
    store = tmp_path / "s.sqlite"
    assert main(["run", "quick", "--backends", "numpy", "--cluster", "local:2", "--store", str(store)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--cluster needs Ray, which is not installed: pip install 'dlbench[ray]'" in err[0]
    assert not store.exists()


def test_unreadable_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.sqlite"
    bad.write_text("hello, I am not SQLite" * 50)
    before = bad.read_bytes()
    assert main(["run", "quick", "--backends", "numpy", "--store", str(bad)]) == 2
    assert "cannot read store" in capsys.readouterr().err
    assert bad.read_bytes() == before


def test_list_shows_backends_with_availability(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("lstm", "vgg16", "numpy", "torch", "seed-cpu", "quick"):
        assert name in out
