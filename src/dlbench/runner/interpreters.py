"""Which interpreter runs each backend of a command, and what another interpreter holds.

A backend spec is a backend name, optionally tagged: `torch@old` is the torch backend run by another interpreter,
kept apart from plain `torch` in the same run (the tag is part of each case's identity). Per spec, in order:
  1. `--python SPEC=PATH`: that interpreter (any Python ≥ 3.9 with NumPy ≥ 1.21);
  2. `--env SPEC=NAME`: the managed env NAME (its interpreter and its recipe's environment variables);
     `--env SPEC=-` forces dlbench's own interpreter;
  3. a tagged spec `torch@NAME` with neither: the managed env NAME;
  4. an untagged backend with a managed env of the same name (`dlbench envs create theano`): that env, said so;
  5. else dlbench's own interpreter.
The worker finds dlbench's worker-side modules through PYTHONPATH pointing at a directory that holds only the
`dlbench` package (a symlink), so nothing else of this environment leaks into the other one.

What another interpreter holds (its version, its packages, whether a module is importable there) is asked of it by
running it (find_spec: nothing is imported); the parent never imports a framework, and never learns what another
environment holds by looking at its own. The snippet runs on any Python ≥ 3.8, legacy environments included.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import json
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlbench.backends import BackendInfo, get_backend
from dlbench.core.cases import split_spec
from dlbench.core.errors import UsageError
from dlbench.runner.environments import check_name, find_env, get_env

_INFO = """
import importlib.metadata as m, importlib.util as u, json, sys
mods = json.loads(sys.argv[1])
packages = {}
for d in m.distributions():
    name = d.metadata["Name"]
    if name:
        packages[name] = d.version
print(json.dumps({"python_version": sys.version.split()[0], "executable": sys.executable,
                  "packages": packages, "missing": [n for n in mods if u.find_spec(n) is None]}))
"""


@functools.lru_cache(maxsize=64)
def _ask(python: str, modules: tuple[str, ...]) -> dict[str, Any]:
    try:
        out = subprocess.run([python, "-I", "-c", _INFO, json.dumps(list(modules))], capture_output=True, text=True,
                             timeout=120)  # fmt: skip
    except (OSError, subprocess.SubprocessError) as exc:
        raise UsageError(f"bad interpreter {python!r}: cannot run it ({exc})") from None
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["no output"])[-1]
        raise UsageError(f"bad interpreter {python!r}: it exits with status {out.returncode} ({last[:200]})")
    data: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return data


def interpreter_info(python: str) -> dict[str, Any]:
    """{"python_version", "executable", "packages": {distribution: version}} of that interpreter."""
    data = dict(_ask(python, ()))
    data.pop("missing", None)
    return data


def interpreter_packages(python: str) -> dict[str, str]:
    return dict(_ask(python, ())["packages"])


def missing_modules(python: str, modules: tuple[str, ...]) -> list[str]:
    """The top-level modules of `modules` that interpreter cannot find (find_spec, nothing imported)."""
    return list(_ask(python, tuple(modules))["missing"])


OWN = "-"  # `--env torch=-`: dlbench's own interpreter, even where an env named torch exists


@dataclass(frozen=True)
class Interpreter:
    """How one backend spec's workers start: which python, which extra environment variables."""

    python: str
    env_vars: dict[str, str] = field(default_factory=dict)
    env_name: str = ""  # the managed env, "" for --python PATH
    how: str = ""  # why this one: "--python", "--env", "tag", "default env"

    def worker_env(self) -> dict[str, str]:
        """Environment variables for its worker processes: the recipe's, and dlbench on PYTHONPATH. A recipe's
        THEANO_FLAGS-style list goes in front of the user's own value, not in its place: Theano and Aesara let
        a later entry override an earlier one, so what the user set still wins."""
        env = dict(self.env_vars)
        for key, value in self.env_vars.items():
            own = os.environ.get(key)
            if key.endswith("_FLAGS") and own and own != value:
                env[key] = f"{value},{own}"
        return {**env, "PYTHONPATH": worker_path()}

    def available(self, info: BackendInfo) -> tuple[bool, str]:
        missing = missing_modules(self.python, info.requires)
        if missing:
            where = f"env {self.env_name!r}" if self.env_name else self.python
            return False, f"{missing[0]} is not installed in {where} ({self.python})"
        return True, ""

    def describe(self) -> str:
        return f"env {self.env_name!r} ({self.python})" if self.env_name else self.python

    def to_dict(self) -> dict[str, Any]:
        return {"python": self.python, "env_vars": self.env_vars, "env_name": self.env_name, "how": self.how}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Interpreter:
        return cls(str(data["python"]), dict(data.get("env_vars") or {}), str(data.get("env_name", "")),
                   str(data.get("how", "")))  # fmt: skip


def check_spec(spec: str) -> tuple[str, str]:
    """Validate `torch` / `torch@old`: (backend, tag)."""
    backend, tag = split_spec(spec)
    get_backend(backend)
    if "@" in spec:
        check_name(tag)
    return backend, tag


def resolve(
    specs: Iterable[str], pythons: Mapping[str, str] | None = None, envs: Mapping[str, str] | None = None
) -> tuple[dict[str, Interpreter], list[str]]:
    """{spec: Interpreter} for every spec that does not run in dlbench's own interpreter, and notes saying so.
    UsageError for an unknown backend or env, a missing interpreter, or a mapping for a backend not in the run."""
    specs = list(dict.fromkeys(specs))
    pythons, envs = dict(pythons or {}), dict(envs or {})
    for option, mapping in (("--python", pythons), ("--env", envs)):
        for spec in mapping:
            check_spec(spec)
            if spec not in specs:
                raise UsageError(f"bad {option} {spec}=...: {spec!r} is not among this run's backends "
                                 f"({', '.join(specs)})")  # fmt: skip
    both = sorted(set(pythons) & set(envs))
    if both:
        raise UsageError(f"bad --python/--env for {both[0]!r}: give one of them, not both")
    chosen: dict[str, Interpreter] = {}
    notes: list[str] = []
    for spec in specs:
        backend, tag = check_spec(spec)
        if spec in pythons:
            python = _check_python(pythons[spec], spec)
            chosen[spec] = Interpreter(python, how="--python")
        elif spec in envs and envs[spec] == OWN:
            continue
        elif spec in envs or tag:
            named = get_env(envs.get(spec, tag))
            chosen[spec] = Interpreter(str(named.python), dict(named.env), named.name,
                                       "--env" if spec in envs else "tag")  # fmt: skip
        elif (env := find_env(backend)) is not None:
            chosen[spec] = Interpreter(str(env.python), dict(env.env), env.name, "default env")
            notes.append(f"{spec} runs in the managed env {env.name!r} ({env.python}), as one of that name exists; "
                         f"--env {spec}=- uses dlbench's own interpreter")  # fmt: skip
        else:
            continue
        if chosen[spec].how != "default env":
            notes.append(f"{spec} runs in {chosen[spec].describe()}")
    return chosen, notes


def _check_python(path: str, spec: str) -> str:
    candidate = Path(path).expanduser()
    if not candidate.is_file() or not os.access(candidate, os.X_OK):
        raise UsageError(f"bad --python {spec}={path}: no executable file there (give a Python interpreter's path, "
                         "e.g. /opt/legacy/bin/python)")  # fmt: skip
    return str(candidate.absolute())  # not resolve(): a venv's python is a symlink that must stay one


def environments_fingerprint(chosen: Mapping[str, Interpreter]) -> dict[str, Any]:
    """Per spec: interpreter, its Python version and every package's version, read by that interpreter."""
    out: dict[str, Any] = {}
    for spec, interpreter in chosen.items():
        out[spec] = {**interpreter_info(interpreter.python), **interpreter.to_dict()}
    return out


def worker_path() -> str:
    """A directory holding only a `dlbench` symlink to this dlbench's package: the other interpreter's PYTHONPATH.
    (dlbench's own parent directory may be a site-packages full of NumPy 2 and frameworks.)

    Whatever lies in that directory is imported by the worker (a `sitecustomize.py` there runs at its start), so it
    must be this user's alone: `/tmp/dlbench-worker-path-<uid>-<hash>` is created mode 0700 and used only if
    lstat says it is a real directory (not a symlink), owned by this user, with no group or other permission bits,
    and holding nothing but the link (and this code's own `.dlbench-<pid>` temporaries, which no import can name).
    Anyone can create that name in a shared /tmp first; then this process makes a private one of its own instead
    (mkdtemp, removed at exit), so a planted folder is never used and never stops a run."""
    package = Path(__file__).resolve().parent.parent
    digest = hashlib.sha1(str(package).encode()).hexdigest()[:12]
    uid = os.getuid() if hasattr(os, "getuid") else 0
    root = Path(tempfile.gettempdir()) / f"dlbench-worker-path-{uid}-{digest}"
    try:
        root.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except OSError:
        return _private_worker_path(package)
    with contextlib.suppress(OSError):  # an older dlbench made it 0755: nobody else could write into it, tighten it
        info = os.lstat(root)
        if stat.S_ISDIR(info.st_mode) and info.st_uid == uid and info.st_mode & 0o077 and not info.st_mode & 0o022:
            os.chmod(root, 0o700)
    if private_folder_problem(root) is not None:
        return _private_worker_path(package)
    link = root / "dlbench"
    if not link.is_symlink() or link.resolve() != package:
        _link(root, package)
    return str(root)


def private_folder_problem(root: Path) -> str | None:
    """Why `root` is not safe to put on a worker's PYTHONPATH (None: it is): it must be a directory, not a link,
    owned by this user, with no group/other permissions, holding only the `dlbench` link and `.dlbench-*` temporaries.
    """
    try:
        info = os.lstat(root)
    except OSError as exc:
        return f"cannot stat it ({exc.strerror})"
    if not stat.S_ISDIR(info.st_mode):
        return "not a directory (a symlink or a file)"
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        return f"owned by uid {info.st_uid}, not by this user ({os.getuid()})"
    if info.st_mode & 0o077:
        return f"mode {stat.S_IMODE(info.st_mode):o} lets others in (must be 700)"
    others = sorted(p.name for p in root.iterdir() if p.name != "dlbench" and not p.name.startswith(".dlbench-"))
    if others:
        return f"it holds {', '.join(others[:3])} besides the dlbench link"
    return None


def _link(root: Path, package: Path) -> None:
    temporary = root / f".dlbench-{os.getpid()}"
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(package, target_is_directory=True)
    os.replace(temporary, root / "dlbench")  # atomic: concurrent runs never see a missing link


@functools.lru_cache(maxsize=1)
def _private_worker_path(package: Path) -> str:
    """This process's own worker folder, when the shared name is taken by a folder that is not safely ours."""
    root = Path(tempfile.mkdtemp(prefix="dlbench-worker-path-"))  # mode 0700, a fresh name: no one else's
    atexit.register(shutil.rmtree, root, True)
    _link(root, package)
    return str(root)
