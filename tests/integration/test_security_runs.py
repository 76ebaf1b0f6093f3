"""Security with real processes: `dlbench run` of a suite file, and `--resume` of a crafted store, execute the
interpreter they name only with --trust-interpreters, and a stored LD_PRELOAD never reaches a worker. The
interpreter is a shell script that records, each time it is executed, the variables a store might have smuggled."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dlbench
from dlbench.store import Store

CLI = [sys.executable, "-m", "dlbench.cli"]
NOTE = "\\u001b[31mred\\u001b]0;title\\u0007"  # as TOML spells it


def _dlbench(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *argv], capture_output=True, text=True, timeout=300)


def test_suite_and_store_interpreters_run_only_with_the_opt_in(tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    program = tmp_path / "bin" / "python"
    program.parent.mkdir()
    program.write_text(f'#!/bin/sh\necho "LD_PRELOAD=$LD_PRELOAD EVIL=$EVIL_VAR" >> "{marker}"\n'
                       f'exec "{sys.executable}" "$@"\n')  # fmt: skip
    program.chmod(0o755)
    suite = tmp_path / "shared.toml"
    suite.write_text(f'note = "{NOTE}"\n[pythons]\nnumpy = "{program}"\n'
                     "[measure]\nmin_time_s = 0.01\nmin_iters = 2\nmax_time_s = 0.2\nretries = 0\n"
                     '[[experiments]]\nworkload = "lstm"\nprecisions = ["fp32"]\nmodes = ["forward"]\n'
                     "[experiments.sizes]\nseq_len = [2]\nbatch = [1]\nhidden = [4]\n")  # fmt: skip
    store = tmp_path / "s.sqlite"

    refused = _dlbench("run", str(suite), "--backends", "numpy", "--store", str(store))
    assert refused.returncode == 2 and "--trust-interpreters" in refused.stderr, refused.stderr
    assert not marker.exists() and not store.exists()

    trusted = _dlbench("run", str(suite), "--backends", "numpy", "--store", str(store), "--trust-interpreters")
    assert trusted.returncode == 0, trusted.stderr
    assert marker.exists()  # the worker ran under the named interpreter
    output = trusted.stdout + trusted.stderr
    assert "red" in output and not any(c in output for c in ("\x1b", "\x07", "\x9b"))

    # A crafted store: the same run, its interpreter given LD_PRELOAD and another variable, nothing measured yet.
    plan = dlbench.plan(str(suite), backends=["numpy"], trust_interpreters=True)
    settings = plan.settings.to_dict()
    settings["interpreters"]["numpy"]["env_vars"] = {"LD_PRELOAD": "/nonexistent/evil.so", "EVIL_VAR": "1"}
    db = Store(store)
    db.create_run("crafted", plan.suite, plan.cases, settings, {})
    db.close()
    marker.unlink()

    refused = _dlbench("run", "--resume", "crafted", "--store", str(store))
    assert refused.returncode == 2 and "--trust-interpreters" in refused.stderr, refused.stderr
    assert not marker.exists()

    trusted = _dlbench("run", "--resume", "crafted", "--store", str(store), "--trust-interpreters")
    assert trusted.returncode == 0, trusted.stderr
    seen = marker.read_text().splitlines()
    assert seen and all(line == "LD_PRELOAD= EVIL=" for line in seen), seen


def test_a_module_planted_in_the_working_folder_is_not_imported_by_workers(tmp_path: Path) -> None:
    """`python -m` puts the working folder first on sys.path: a numpy.py (or sitecustomize.py is not enough: the
    worker imports numpy first) where dlbench was started must not run in its workers, in either isolation."""
    marker = tmp_path / "imported"
    for name in ("numpy", "dlbench"):  # the worker's first imports
        (tmp_path / f"{name}.py").write_text(f"open({str(marker)!r}, 'a').write({name!r})\nraise SystemExit(9)\n")
    for isolation in ("fork", "spawn"):
        result = subprocess.run(
            [str(Path(sys.executable).parent / "dlbench"), "run", "lstm", "--backends", "numpy", "--set", "seq_len=2",
             "--set", "batch=1", "--set", "hidden=4", "--modes", "forward", "--min-time", "0", "--max-time", "0.2",
             "--retries", "0", "--isolation", isolation, "--store", str(tmp_path / f"{isolation}.sqlite")],
            capture_output=True, text=True, timeout=300, cwd=tmp_path,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert not marker.exists(), marker.read_text()
