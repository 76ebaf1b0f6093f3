"""`dlbench envs create|list|remove`: managed Python environments for backends that need their own (see
dlbench.envs). cli.py adds the parser and hands the parsed arguments here.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from dlbench.backends import recipes
from dlbench.core.errors import UsageError
from dlbench.envs import api as envs

COMMANDS = ("envs",)
EXIT_FAILED = 1


def add_parsers(sub: Any, store_help: str) -> None:
    built_in = "; ".join(f"{name}: {' '.join(r.requirements)}" for name, r in recipes().items())
    parser = sub.add_parser("envs", help="Python environments a backend can run in (legacy Theano, other versions)",
                            description=(
        "Manage virtual environments under dlbench's data directory (" + str(envs.envs_dir()) + "). A backend runs "
        "in one with `--env BACKEND=NAME`, or by default when the env has the backend's name. Built-in recipes: "
        + built_in + "."))  # fmt: skip
    actions = parser.add_subparsers(dest="envs_action", metavar="ACTION", parser_class=type(parser))
    create = actions.add_parser("create", help="make a venv and pip-install a recipe or --requirements")
    create.add_argument("name", metavar="NAME", help=f"the env's name (built-in recipes: {', '.join(recipes())})")
    create.add_argument("--requirements", metavar="'PKG==V ...'", help="pip requirements, space- or comma-separated "
                        "(default: the built-in recipe of that name); NumPy is added, as the worker needs it")
    create.add_argument("--python", metavar="BASE_PYTHON", help="the interpreter to base the venv on (default: the "
                        "one running dlbench)")  # fmt: skip
    actions.add_parser("list", help="the managed envs: interpreter, requirements, packages")
    remove = actions.add_parser("remove", help="delete a managed env")
    remove.add_argument("name", metavar="NAME")


def run_command(args: argparse.Namespace) -> int:
    action = getattr(args, "envs_action", None)
    if action == "create":
        return _create(args)
    if action == "remove":
        path = envs.remove(args.name)
        print(f"removed env {args.name!r} ({path})")
        return 0
    if action == "list":
        return _list()
    raise UsageError("dlbench envs needs an action (allowed: create, list, remove)")


def _create(args: argparse.Namespace) -> int:
    requirements = envs.parse_requirements(args.requirements) if args.requirements is not None else None
    envs.plan_create(args.name, requirements, args.python)  # every mistake is reported before anything is written
    started = time.monotonic()
    try:
        env = envs.create(args.name, requirements, args.python,
                          progress=lambda text: print(f"envs create {args.name}: {text}", file=sys.stderr))
    except envs.EnvCreateError as exc:
        print(f"dlbench: envs create {args.name} failed after {time.monotonic() - started:.1f} s: {exc}",
              file=sys.stderr)  # fmt: skip
        return EXIT_FAILED
    print(f"created env {env.name!r} in {env.create_s:.1f} s: {env.python} (Python {env.python_version}); "
          f"use it with --env BACKEND={env.name}" + (f" (or by default for backend {env.name})" if
                                                    _is_backend(env.name) else ""))  # fmt: skip
    return 0


def _is_backend(name: str) -> bool:
    from dlbench.backends import BACKENDS

    return name in BACKENDS


def _list() -> int:
    from dlbench.runner.interpreters import interpreter_packages

    found = envs.list_envs()
    if not found:
        print(f"no managed envs in {envs.envs_dir()} (`dlbench envs create theano` makes one)")
        return 0
    for env in found:
        try:
            packages = interpreter_packages(str(env.python))
            shown = ", ".join(f"{name} {packages[name]}" for name in sorted(packages, key=str.lower)
                              if name.lower() not in ("pip", "setuptools", "wheel"))  # fmt: skip
        except Exception as exc:  # noqa: BLE001 — a broken env is listed, with why
            shown = f"cannot ask its interpreter: {exc}"
        print(f"{env.name}: Python {env.python_version} at {env.python}")
        print(f"  requirements: {' '.join(env.requirements)}")
        if env.env:
            print(f"  environment: {' '.join(f'{k}={v}' for k, v in env.env.items())}")
        print(f"  packages: {shown}")
    return 0
