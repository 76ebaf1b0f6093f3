"""Which interpreters dlbench may execute: those the user named, and managed envs; never one a file names.

A suite file and a store are data: a user runs a suite someone published and resumes a run from a store someone
sent, and neither may decide what program runs. An interpreter is a program (and PYTHONPATH or LD_PRELOAD in its
environment variables make any program one), so dlbench executes only
  - what the command line names: `--python SPEC=PATH` (the user typed the path), `--env SPEC=NAME`;
  - managed envs, the venvs `dlbench envs create` made under dlbench's own data directory (envs_dir()): a suite's
    [envs] and a tagged spec name one (the name pattern admits no path: `../x` and `/abs` are not names), and their
    environment variables are read from the env itself, never from the file that named it.
A suite's [pythons] entry that is a managed env's interpreter is that env; any other entry, and a stored run's
interpreter that is not (still) a managed env with the same interpreter, is refused with a UsageError (exit 2,
nothing written, nothing started) unless the user vouches for it: `--trust-interpreters` (`trust_interpreters=True`),
or the same path given again with `--python`. Environment variables a store holds are never applied, trusted or not:
a resumed managed env gets its own env's, a trusted path none (a `--python` run stores none). Likewise a stored case's
`cache_dir` option (a compilation cache is code the framework loads) is refused on a resume unless trusted.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from dlbench.core.cases import Case
from dlbench.core.errors import UsageError
from dlbench.core.text import printable
from dlbench.runner.environments import Env, find_env, list_envs
from dlbench.runner.interpreters import Interpreter

TRUST_OPTION = "--trust-interpreters"


def managed_env_for(python: str) -> Env | None:
    """The managed env whose interpreter is exactly `python` (its path as `Env.python` spells it), else None."""
    path = str(Path(python).expanduser().absolute())
    return next((env for env in list_envs() if str(env.python) == path), None)


def suite_interpreters(entries: Mapping[str, str], where: str, trust: bool) -> tuple[dict[str, str], dict[str, str]]:
    """A suite file's [pythons] entries as (pythons, envs) for resolve(): an entry that is a managed env's interpreter
    names that env (with the env's own variables); any other only with `trust`, else a UsageError saying how to
    vouch for it."""
    pythons: dict[str, str] = {}
    envs: dict[str, str] = {}
    for spec, path in entries.items():
        env = managed_env_for(path)
        if env is not None:
            envs[spec] = env.name
        elif trust:
            pythons[spec] = path
        else:
            raise UsageError(f"suite {where!r} runs {spec} under {path!r}, and dlbench does not execute a program "
                             f"a suite file names: if you trust it, add {TRUST_OPTION} or --python "
                             f"{spec}={printable(path)} (a managed env is named in [envs])")  # fmt: skip
    return pythons, envs


def stored_interpreters(
    run_id: str, stored: Mapping[str, Interpreter], pythons: Mapping[str, str] | None, trust: bool
) -> tuple[dict[str, Interpreter], list[str]]:
    """The interpreters a resumed run's workers may start with, from the ones its store names, and notes. Per spec:
    a managed env that still exists with the same interpreter, re-read from the env (its variables, not the
    store's); else the stored path if `--python SPEC=PATH` repeats it or `trust` vouches for it, with no variables;
    else a UsageError. `--python` for a spec that ran in dlbench's own interpreter, or with another path, is a
    UsageError too: a resume finishes the run as it was planned."""
    pythons = dict(pythons or {})
    for spec, path in pythons.items():
        if spec not in stored:
            raise UsageError(f"bad --python {spec}={path}: run {run_id} ran {spec!r} in dlbench's own interpreter "
                             f"(--resume finishes a run as it was planned)")  # fmt: skip
    chosen: dict[str, Interpreter] = {}
    notes: list[str] = []
    for spec, interpreter in stored.items():
        env = find_env(interpreter.env_name) if interpreter.env_name else None
        if env is not None and str(env.python) == interpreter.python:
            chosen[spec] = Interpreter(str(env.python), dict(env.env), env.name, interpreter.how)
            continue
        if spec in pythons:
            given = str(Path(pythons[spec]).expanduser().absolute())
            if given != interpreter.python:
                raise UsageError(f"bad --python {spec}={pythons[spec]}: run {run_id} ran {spec!r} under "
                                 f"{interpreter.python!r} (--resume finishes a run as it was planned)")  # fmt: skip
        elif not trust:
            what = f"env {interpreter.env_name!r}, which is gone or elsewhere now" if interpreter.env_name else "a path"
            raise UsageError(f"run {run_id} ran {spec!r} under {interpreter.python!r} ({what}), and dlbench does not "
                             f"execute a program a store names: if you trust it, add {TRUST_OPTION} or --python "
                             f"{printable(spec)}={printable(interpreter.python)}")  # fmt: skip
        if not (os.path.isfile(interpreter.python) and os.access(interpreter.python, os.X_OK)):
            raise UsageError(f"run {run_id} ran {spec!r} under {interpreter.python!r}: no executable file there now")
        chosen[spec] = Interpreter(interpreter.python, {}, "", "--python")
        if interpreter.env_vars:
            notes.append(f"{spec!r} runs in {interpreter.python!r} without the environment variables the store holds "
                         f"for it ({', '.join(map(repr, sorted(interpreter.env_vars)))})")  # fmt: skip
    return chosen, notes


# Backend options whose value is a folder a framework loads code from: a compilation cache holds compiled modules and
# executables (PyTensor's compiledir, TorchInductor's, XLA's), so a cache a store points at is a program too.
CODE_OPTIONS = ("cache_dir",)


def check_stored_options(run_id: str, cases: Iterable[Case], trust: bool) -> None:
    """A resumed run's cases as its store gives them: UsageError for an option naming a folder code is loaded from
    (CODE_OPTIONS), unless `trust`."""
    if trust:
        return
    for case in cases:
        for option in CODE_OPTIONS:
            if option in case.options:
                raise UsageError(f"run {run_id} points {case.backend_spec}'s {option} at "
                                 f"{str(case.options[option])!r}, whose compiled code the framework loads, and dlbench "
                                 f"does not load code a store names: if you trust it, add {TRUST_OPTION}")  # fmt: skip


__all__ = ["CODE_OPTIONS", "TRUST_OPTION", "check_stored_options", "managed_env_for", "stored_interpreters",
           "suite_interpreters"]  # fmt: skip
