"""The house's rules that a tool checks, not memory: one place opens a run, one place starts workers, a framework is
one folder with one registry entry, every feature has the same shape, and the layer contracts cover every package.
(The contracts themselves are checked by `lint-imports`, which `make test` runs.)"""

from __future__ import annotations

import ast
import importlib
import tomllib
from pathlib import Path

import pytest

import dlbench
from dlbench import cli
from dlbench.backends import FOLDERS, FRAMEWORKS
from dlbench.report.sections import SECTIONS

PACKAGE = Path(dlbench.__file__).parent
PYPROJECT = PACKAGE.parents[1] / "pyproject.toml"


def _calls(name: str) -> list[tuple[str, str]]:
    """(module file, enclosing function) of every call to `name` (a function or a method) in dlbench's source."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        for function in [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]:
            for node in ast.walk(function):
                if isinstance(node, ast.Call):
                    called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                    if called == name:
                        found.append((path.relative_to(PACKAGE).as_posix(), function.name))
    return sorted(set(found))


def test_a_run_is_opened_in_one_function() -> None:
    assert _calls("create_run") == [("runner/session.py", "open_run")]


def test_worker_processes_are_started_in_one_module() -> None:
    assert {module for module, _ in _calls("WorkerClient")} == {"runner/session.py"}


def test_a_framework_is_one_folder_with_one_registry_entry() -> None:
    folders = sorted(p.name for p in (PACKAGE / "backends").iterdir() if (p / "__init__.py").is_file())
    assert folders == sorted(FOLDERS) == sorted(f.name for f in FRAMEWORKS)
    for framework in FRAMEWORKS:
        prefix = f"dlbench.backends.{framework.name}."
        modules = [info.module for info in framework.backends]
        modules += [m for m in (framework.layers, framework.usability, framework.peak) if m]
        assert all(m.startswith(prefix) for m in modules), (framework.name, modules)
        assert all(info.framework == framework.name for info in framework.backends)


def test_backend_names_are_unique_across_frameworks() -> None:
    names = [info.name for framework in FRAMEWORKS for info in framework.backends]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("module_name", cli.COMMAND_MODULES)
def test_every_feature_has_the_same_shape(module_name: str) -> None:
    command = importlib.import_module(module_name)
    assert command.__name__.endswith(".command") and command.COMMANDS
    assert callable(command.add_parsers) and callable(command.run_command)
    folder = PACKAGE / command.__name__.split(".")[1]
    if folder.name != "report":  # the report has no API of its own: it renders what the others stored
        assert (folder / "api.py").is_file()
    init = (folder / "__init__.py").read_text()
    assert all(isinstance(node, (ast.Expr, ast.ImportFrom, ast.Assign)) for node in ast.parse(init).body)  # no logic
    if (folder / "section.py").is_file():
        assert importlib.import_module(f"dlbench.{folder.name}.section").build in SECTIONS


def test_the_layer_contract_covers_every_package() -> None:
    """A package that no layer names would escape the contract: each top-level package or module is in it."""
    contracts = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["contracts"]
    layers = next(c for c in contracts if c["type"] == "layers" and "containers" not in c)["layers"]
    named = {name.strip() for layer in layers for name in layer.replace(":", "|").split("|")}
    top = {f"dlbench.{p.stem if p.is_file() else p.name}" for p in PACKAGE.iterdir()
           if (p.suffix == ".py" and p.name != "__init__.py") or (p / "__init__.py").is_file()}  # fmt: skip
    assert top - named == set()
