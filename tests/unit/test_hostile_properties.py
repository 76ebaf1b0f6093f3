"""Property-based hostility (Hypothesis): every parser of a user's text, given any text, either returns a value
that keeps its promise or raises the one error the CLI turns into one line and exit 2; and `dlbench` given junk
arguments after a bad target answers exit 2, one line, no traceback, nothing written. tests/hostile.py holds the
hand-made corpus; this file finds what a hand did not think of."""

from __future__ import annotations

import argparse
import math
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlbench.cli import main
from dlbench.core import arguments
from dlbench.core.errors import UsageError
from dlbench.core.units import parse_size
from dlbench.report.compare import parse_threshold, split_run_arg
from dlbench.report.recommend import parse_weights

EXPECTED = (UsageError, argparse.ArgumentTypeError)
# Text a hostile user types: digits, separators, signs, letters, the odd unicode and control character.
TEXT = st.text(alphabet=st.sampled_from(list("0123456789,-=.%+e :abcnifx_\x00\x1b\u00e9\u2212")), max_size=24)
ANY_TEXT = st.one_of(TEXT, st.text(max_size=24))
# derandomize: the same examples on every run, so CI is reproducible (a new seed is a deliberate change); no
# example database written into the checkout.
FAST = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def _one_line(exc: BaseException) -> None:
    assert "\n" not in str(exc).strip(), str(exc)


@FAST
@given(ANY_TEXT)
def test_names(text: str) -> None:
    try:
        names = arguments.names(text)
    except EXPECTED as exc:
        _one_line(exc)
        return
    assert names and all(n and n == n.strip() and "," not in n for n in names)


@pytest.mark.parametrize(("parse", "low", "integer"), [(arguments.seconds, 0, False), (arguments.count, 1, True),
                                                        (arguments.seconds_or_zero, 0, False),
                                                        (arguments.count_or_zero, 0, True)])  # fmt: skip
@FAST
@given(text=ANY_TEXT)
def test_numbers_are_finite_and_in_range(parse: Any, low: float, integer: bool, text: str) -> None:
    try:
        value = parse(text)
    except EXPECTED as exc:
        _one_line(exc)
        return
    assert math.isfinite(value) and value >= low and (value > 0 or parse in (arguments.seconds_or_zero,
                                                                              arguments.count_or_zero))
    assert not integer or value == int(value) <= arguments.MAX_SIZE


@FAST
@given(ANY_TEXT)
def test_cpus(text: str) -> None:
    try:
        cpus = arguments.cpus(text)
    except EXPECTED as exc:
        _one_line(exc)
        return
    assert cpus and all(0 <= c <= arguments.MAX_CPU for c in cpus) and cpus == sorted(set(cpus))


@FAST
@given(st.lists(ANY_TEXT, max_size=3))
def test_sets_and_options(items: list[str]) -> None:
    for parse in (arguments.sets, arguments.options):
        try:
            parsed = parse(items)
        except EXPECTED as exc:
            _one_line(exc)
            continue
        assert all(k and k == k.strip() for k in parsed)
        if parse is arguments.sets:
            assert all(values and len(set(values)) == len(values) for values in parsed.values())  # type: ignore


@FAST
@given(ANY_TEXT)
def test_percentages_thresholds_weights_sizes_run_ids(text: str) -> None:
    for parse in (lambda t: arguments.percent(t, "--x"), parse_threshold, parse_weights, parse_size, split_run_arg):
        try:
            value = parse(text)
        except EXPECTED as exc:
            _one_line(exc)
            continue
        if isinstance(value, float):
            assert 0 <= value <= 1
        elif isinstance(value, int):
            assert value >= 1
        elif isinstance(value, tuple):
            assert value[0].strip()


class _Started(BaseException):
    pass


@pytest.fixture
def quiet_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise _Started(f"a process was started: {args[:1]!r}")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    monkeypatch.setattr(os, "fork", refuse)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DLBENCH_STORE", str(tmp_path / "store.sqlite"))
    return tmp_path


OPTIONS = ["--backends", "--precisions", "--modes", "--set", "--option", "--cpus", "--timeout", "--min-time",
           "--max-time", "--repeat", "--retries", "--quiet-threshold", "--wait-quiet", "--memory-limit", "--device",
           "--store", "--format", "--isolation", "--resume", "--python", "--env"]  # fmt: skip


@settings(max_examples=200, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pairs=st.lists(st.tuples(st.sampled_from(OPTIONS), ANY_TEXT), max_size=4))
def test_junk_after_a_bad_target_is_one_line_and_exit_2(quiet_folder: Path, pairs: list[tuple[str, str]],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["run", "nosuch-target"] + [f"{option}={value}" for option, value in pairs]
    status = main(argv)
    err = capsys.readouterr().err
    assert status == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert sorted(p.name for p in quiet_folder.iterdir()) == [], "a file was written"
