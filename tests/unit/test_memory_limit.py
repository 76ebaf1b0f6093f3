"""--memory-limit: sizes as users write them, the RSS watcher on a real process, and how a SIGKILL that
dlbench did not send is classified."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from dlbench.cli import main
from dlbench.core.errors import UsageError
from dlbench.core.units import format_size, parse_size
from dlbench.runner.client import _death
from dlbench.runner.memory_limit import MemoryWatch


@pytest.mark.parametrize(
    ("text", "expected"),
    [("4GiB", 4 * 2**30), ("512MiB", 512 * 2**20), ("8G", 8 * 2**30), ("8g", 8 * 2**30), ("1.5GiB", 3 * 2**29),
     ("2GB", 2 * 10**9), ("100MB", 10**8), ("1048576", 2**20), (" 4 GiB ", 4 * 2**30), ("1T", 2**40)],
)  # fmt: skip
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "4XB", "-1GiB", "0", "4 GiB 2", "1KiB", "GiB"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(UsageError, match=r"bad --memory-limit .*(expected a size like 4GiB|at least 1MiB)"):
        parse_size(text)


def test_format_size() -> None:
    assert format_size(4 * 2**30) == "4 GiB"
    assert format_size(512 * 2**20) == "512 MiB"
    assert format_size(int(3.71 * 2**30)) == "3.71 GiB"
    assert format_size(None) == "—"


def test_watch_sees_memory_this_process_really_holds() -> None:
    watch = MemoryWatch(os.getpid(), limit_bytes=2**40)
    before = watch.sample()
    held = np.ones(200 * 2**20, dtype=np.uint8)  # written, so resident
    after = watch.sample()
    assert held[-1] == 1
    assert after - before > 150 * 2**20 and watch.peak_bytes >= after and not watch.over
    watch.limit_bytes = after
    watch.sample()
    assert watch.over and "--memory-limit of" in watch.error()


def test_a_sigkill_while_the_kernel_counted_an_oom_kill_is_oom(tmp_path: Path) -> None:
    log = tmp_path / "case.log"
    log.write_text("")
    killed = _death(-9, log, killed_by_us=False, oom_kills=(3, 4))
    assert killed["status"] == "oom" and "out-of-memory killer" in killed["error"] and "from 3 to 4" in killed["error"]
    for counts in [(3, 3), (None, None), (None, 4)]:  # no evidence: an error that names the usual sender
        doc = _death(-9, log, killed_by_us=False, oom_kills=counts)
        assert doc["status"] == "error" and "usual sender" in doc["error"]
    assert _death(-9, log, killed_by_us=True, oom_kills=(3, 4))["status"] == "error"  # ours (a timeout)
    assert _death(-11, log, killed_by_us=False, oom_kills=(3, 4))["status"] == "error"  # a segfault


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "quick", "--backends", "numpy", "--memory-limit", "lots"], "bad --memory-limit 'lots': expected"),
        (["run", "quick", "--backends", "numpy", "--memory-limit", "0"], "bad --memory-limit '0': must be at least"),
        (["maxbatch", "vgg16", "--backends", "numpy", "--memory-limit", "4XB"], "bad --memory-limit '4XB'"),
        (["maxbatch", "vgg16", "--backends", "nosuch"], "unknown backend 'nosuch' (allowed: "),
        (["maxbatch", "quick", "--backends", "numpy"], "unknown workload 'quick' (allowed: "),
        (["maxbatch", "vgg16"], "the following arguments are required: --backends"),
        (["maxbatch", "vgg16", "--backends", "numpy", "--set", "batch=4"], "bad --set batch: maxbatch searches"),
        (["maxbatch", "vgg16", "--backends", "numpy", "--set", "image=31"], "bad size image=31"),
        (["maxbatch", "vgg16", "--backends", "numpy", "--set", "depth=3"], "unknown size parameter for vgg16 'depth'"),
        (["maxbatch", "vgg16", "--backends", "numpy", "--set", "image=32,64"], "one value per size"),
        (["maxbatch", "vgg16", "--backends", "numpy", "--device", "cuda", "--memory-limit", "1GiB"],
         "--memory-limit caps a case's host memory"),
        (["run", "lstm", "--backends", "numpy", "--device", "cuda", "--memory-limit", "1GiB"],
         "--memory-limit caps a case's host memory"),
        (["maxbatch", "vgg16", "--backends", "numpy", "--start", "0"], "--start: expected an integer from 1"),
        (["maxbatch", "vgg16", "--backends", "numpy", "--start", "8", "--max-batch", "4"], "bad --max-batch 4"),
        (["maxbatch", "vgg16", "--backends", "numpy", "--precisions", "fp8"], "unknown precision 'fp8'"),
        (["maxbatch", "vgg16", "--backends", "numpy", "--timeout", "0"], "--timeout: expected a number of seconds > 0"),
    ],
)
def test_usage_errors(argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "s.sqlite"
    assert main([*argv, "--store", str(store)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], captured.err
    assert not store.exists()  # nothing written
