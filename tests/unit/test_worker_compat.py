"""The worker side must import under an older Python (≥ 3.9) in another environment (dlbench envs): every module a
worker imports, and each legacy backend's module, parses as Python 3.9 and uses no 3.10+ call this check knows of.

Only Python 3.11 exists where this was written, so the syntax is checked with ast's feature_version; the real run
under another interpreter, with NumPy 1.23, is tests/integration/test_legacy_env.py.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import dlbench

PACKAGE = Path(dlbench.__file__).parent
WORKER_ENTRIES = ("dlbench.runner.worker", "dlbench.backends.numpy.backend")
# Names that exist only from Python 3.10 on (as attributes, functions or modules).
NEWER_NAMES = {"pairwise", "bit_count", "TypeAlias", "ParamSpec", "Concatenate", "TypeGuard", "Self", "tomllib",
               "ExceptionGroup", "aiter", "anext", "EllipsisType", "NoneType", "UnionType", "TaskGroup"}  # fmt: skip
NEWER_KEYWORDS = {"zip": {"strict"}, "dataclass": {"slots", "kw_only", "match_args"}}


# Backend modules meant for a legacy environment (their frameworks' last releases run on Python 3.9 with NumPy 1.x).
# The other backends' frameworks are run from dlbench's own Python here; a module of theirs that should run on 3.9
# too joins this list.
LEGACY_BACKENDS = ("numpy", "theano", "aesara")  # framework folders, every module in them


def worker_modules() -> list[Path]:
    """The dlbench modules a worker process really imports (asked of a fresh interpreter), plus the legacy
    backends."""
    code = (f"import importlib, sys\nfor name in {WORKER_ENTRIES!r}: importlib.import_module(name)\n"
            "print('\\n'.join(m.__file__ for n, m in sys.modules.items() if n.startswith('dlbench') "
            "and getattr(m, '__file__', None)))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    legacy = {path for name in LEGACY_BACKENDS for path in (PACKAGE / "backends" / name).glob("*.py")}
    files = {Path(line) for line in out.split()} | legacy
    return sorted(files)


def problems(path: Path) -> list[str]:
    source = path.read_text()
    try:
        tree = ast.parse(source, str(path), feature_version=(3, 9))
    except SyntaxError as exc:
        return [f"line {exc.lineno}: not Python 3.9 syntax: {exc.msg}"]
    found = []
    annotated = any(isinstance(n, ast.AnnAssign) or (isinstance(n, ast.arg) and n.annotation is not None)
                    or (isinstance(n, ast.FunctionDef) and n.returns is not None) for n in ast.walk(tree))  # fmt: skip
    if annotated and "from __future__ import annotations" not in source:
        found.append("no `from __future__ import annotations` (3.10+ annotations would be evaluated)")
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            bad = {k.arg for k in node.keywords} & NEWER_KEYWORDS.get(name, set())
            if bad:
                found.append(f"line {node.lineno}: {name}({', '.join(sorted(bad))}=...) is Python 3.10+")
            if name in ("isinstance", "issubclass") and len(node.args) == 2 and isinstance(node.args[1], ast.BinOp):
                found.append(f"line {node.lineno}: {name}(x, A | B) is Python 3.10+")
        elif isinstance(node, (ast.Attribute, ast.Name, ast.alias)):
            name = {ast.Attribute: "attr", ast.Name: "id", ast.alias: "name"}[type(node)]
            if getattr(node, name) in NEWER_NAMES:
                found.append(f"line {getattr(node, 'lineno', '?')}: {getattr(node, name)} is Python 3.10+")
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.BinOp):
            sides = (node.value.left, node.value.right)
            if isinstance(node.value.op, ast.BitOr) and any(isinstance(s, ast.Constant) and s.value is None
                                                            for s in sides):  # fmt: skip
                found.append(f"line {node.lineno}: a `X | None` type alias is evaluated, Python 3.10+")
    return found


def test_the_worker_closure_is_what_we_think() -> None:
    names = {p.relative_to(PACKAGE).as_posix() for p in worker_modules()}
    for needed in ("runner/worker.py", "runner/protocol.py", "core/cases.py", "measure/timing.py", "workloads/base.py",
                   "backends/base.py", "runner/verification.py", "core/precisions.py", "core/errors.py",
                   "workloads/reference.py", "backends/registry.py"):  # fmt: skip
        assert needed in names
    for parent_only in ("runs/api.py", "cli.py", "store/sqlite.py", "runs/tables.py", "runner/session.py",
                        "runner/client.py", "envs/api.py"):
        assert parent_only not in names


@pytest.mark.parametrize("path", worker_modules(), ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_worker_side_module_runs_on_python_3_9(path: Path) -> None:
    assert problems(path) == []


def test_the_check_catches_what_it_claims(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from __future__ import annotations\nimport itertools\nMaybe = int | None\n"
                   "pairs = list(zip([1], [2], strict=True))\nisinstance(1, int | str)\n"
                   "w = itertools.pairwise([1, 2])\n")  # fmt: skip
    found = problems(bad)
    assert len(found) == 4, found
    bad.write_text("match 1:\n    case 1:\n        pass\n")
    assert "not Python 3.9 syntax" in problems(bad)[0]
