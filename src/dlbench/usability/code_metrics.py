"""Writing and reading code, measured on source: lines, statements and framework API names, by `ast` + `tokenize`.

What is counted, precisely (the report says it too):
- lines: physical lines that hold code (a token other than a comment), docstrings excluded; a call wrapped over
  three lines is three lines. statements: `ast` statement nodes (a `def` is one), docstrings excluded — the
  figure that does not depend on how the code is wrapped.
- API names: distinct dotted names reached through a framework's module (`nn.LSTM` after `from torch import nn`
  is `torch.nn.LSTM`; `jnp.split` is `jax.numpy.split`), counted where they are referenced (called or not).
  Imports anywhere in the module bind aliases; a name spelled like the framework's top-level module (`keras`
  passed as a parameter, `self.keras`) counts as that module. Methods of framework objects (`model.to(...)`,
  `x.numpy()`) are NOT counted: telling them from plain Python needs types, which an AST does not have.
- dlbench's backends: each backend's registry entry declares (`code_parts`) which functions are each workload's
  model code and which make the timed step from it (shared by both workloads): qualified names in the module of
  the backend's class, or `module:qualname` elsewhere in dlbench (Keras' models, shared by its three engines),
  read from the source, never imported. Both are dlbench's implementation, written for comparable, verified
  measurement (weights loaded from the workload, layouts, precision), not a user's script; the remaining code of
  the modules they live in (settings, memory, error classification: the harness) is counted only in the modules'
  total.
- bare scripts (benchmarks/bare/<script>, each framework's named by its registry entry): the whole file, timing
  loop included: the closest thing here to what a user writes for one LSTM layer.
"""

from __future__ import annotations

import ast
import io
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlbench.backends import BACKENDS, bare_scripts, framework_modules

_NOT_CODE = {
    tokenize.COMMENT,
    tokenize.NL,
    tokenize.NEWLINE,
    tokenize.INDENT,
    tokenize.DEDENT,
    tokenize.ENCODING,
    tokenize.ENDMARKER,
}
# The registry's framework modules, less the reference backend's NumPy (data, not a framework) and jaxlib.
_FRAMEWORKS = set(framework_modules()) - {"numpy", "jaxlib"}
BARE_DIR = Path(__file__).resolve().parents[3] / "benchmarks" / "bare"  # present in a source checkout only


@dataclass(frozen=True)
class CodeCount:
    lines: int
    statements: int
    api: tuple[str, ...]  # distinct framework names, sorted

    def to_dict(self) -> dict[str, Any]:
        return {"lines": self.lines, "statements": self.statements, "api": list(self.api)}

    def __add__(self, other: CodeCount) -> CodeCount:
        """Two files' counts together (their lines are distinct; their API names may repeat)."""
        return CodeCount(self.lines + other.lines, self.statements + other.statements,
                         tuple(sorted(set(self.api) | set(other.api))))  # fmt: skip


class Module:
    """One parsed source file: its code lines, docstrings, import aliases and definitions by qualified name."""

    def __init__(self, source: str, frameworks: set[str] | None = None) -> None:
        self.tree = ast.parse(source)
        self.docstring_lines = self._docstring_lines()
        self.code_lines = self._code_lines(source) - self.docstring_lines
        self.aliases = self._aliases()
        # Frameworks: given, else every known framework module that the source imports.
        imported = {target.split(".")[0] for target in self.aliases.values()}
        self.frameworks = frameworks if frameworks is not None else imported & _FRAMEWORKS
        self.definitions = self._definitions()

    @staticmethod
    def _code_lines(source: str) -> set[int]:
        lines: set[int] = set()
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type not in _NOT_CODE:
                lines.update(range(token.start[0], token.end[0] + 1))
        return lines

    def _docstring_lines(self) -> set[int]:
        lines: set[int] = set()
        for node in ast.walk(self.tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
                first = node.body[0]
                if (
                    isinstance(first, ast.Expr)
                    and isinstance(first.value, ast.Constant)
                    and isinstance(first.value.value, str)
                ):
                    lines.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
        return lines

    def _aliases(self) -> dict[str, str]:
        aliases: dict[str, str] = {}
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    # `import jax.numpy as jnp` binds jnp; `import torch._dynamo` binds torch.
                    aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for a in node.names:
                    aliases[a.asname or a.name] = f"{node.module}.{a.name}"
        return aliases

    def _definitions(self) -> dict[str, ast.AST]:
        found: dict[str, ast.AST] = {}
        for node in self.tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                found[node.name] = node
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        found[f"{node.name}.{item.name}"] = item
        return found

    # -- counting -------------------------------------------------------------------------------------------

    def _span(self, node: ast.AST) -> set[int]:
        start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])  # type: ignore[attr-defined]
        return set(range(start, (node.end_lineno or node.lineno) + 1))  # type: ignore[attr-defined]

    def _statements(self, node: ast.AST) -> int:
        return sum(
            1
            for n in ast.walk(node)
            if isinstance(n, ast.stmt) and not (n.lineno in self.docstring_lines and isinstance(n, ast.Expr))
        )

    def _api(self, node: ast.AST) -> set[str]:
        names: set[str] = set()

        def visit(n: ast.AST) -> None:
            if isinstance(n, (ast.Attribute, ast.Name)):
                dotted = _dotted(n)
                if dotted is not None:
                    resolved = self.resolve(dotted)
                    if resolved is not None:
                        names.add(resolved)
                    return  # a whole chain is one name; do not count its prefixes
            for child in ast.iter_child_nodes(n):
                visit(child)

        visit(node)
        return names

    def resolve(self, dotted: str) -> str | None:
        """The framework name `dotted` refers to, or None (not a framework's)."""
        parts = dotted.split(".")
        if parts[0] == "self" and len(parts) > 1 and parts[1] in self.frameworks:
            parts = parts[1:]  # self.keras.layers.LSTM
        root = self.aliases.get(parts[0], parts[0] if parts[0] in self.frameworks else None)
        if root is None or root.split(".")[0] not in self.frameworks:
            return None
        return ".".join([root, *parts[1:]])

    def count(self, qualnames: list[str] | tuple[str, ...] | None = None) -> CodeCount:
        """The named definitions together (None: the whole module). KeyError names one that is not defined."""
        if qualnames is None:
            nodes: list[ast.AST] = [self.tree]
            lines = set(self.code_lines)
        else:
            missing = [q for q in qualnames if q not in self.definitions]
            if missing:
                raise KeyError(f"not defined at module or class level: {', '.join(missing)}")
            nodes = [self.definitions[q] for q in qualnames]
            lines = set().union(*(self._span(n) for n in nodes)) & self.code_lines
        api: set[str] = set()
        for node in nodes:
            api |= self._api(node)
        return CodeCount(len(lines), sum(self._statements(n) for n in nodes), tuple(sorted(api)))


def _dotted(node: ast.AST) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])


def _module_path(module: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(module)  # imports the parent packages only (dlbench.backends, no framework)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(module)
    return Path(spec.origin)


def _display_path(path: Path) -> str:
    parts = path.parts
    return "/".join(parts[parts.index("dlbench") - 1 :]) if "dlbench" in parts else str(path)


def backend_metrics(backend: str, workloads: list[str]) -> dict[str, dict[str, Any]]:
    """workload -> the usability finding's `code` part for one backend of dlbench's own source."""
    info = BACKENDS[backend]
    frameworks = set(info.requires) & _FRAMEWORKS
    parts = info.code_parts
    where = {ref: ref.rpartition(":")[0] or info.module for refs in parts.values() for ref in refs}
    modules = {name: Module(_module_path(name).read_text(), frameworks) for name in (info.module, *where.values())}

    def count(refs: tuple[str, ...]) -> CodeCount:
        by_module: dict[str, list[str]] = {}
        for ref in refs:
            by_module.setdefault(where[ref], []).append(ref.rpartition(":")[2])
        counts = [modules[name].count(qualnames) for name, qualnames in by_module.items()]
        return sum(counts[1:], counts[0])

    total = sum((m.count() for m in list(modules.values())[1:]), next(iter(modules.values())).count())
    shown = ", ".join(_display_path(_module_path(name)) for name in modules)
    step = count(parts["step"]) if "step" in parts else None
    out: dict[str, dict[str, Any]] = {}
    for workload in workloads:
        doc: dict[str, Any] = {"module": shown, "module_total": total.to_dict()}
        if workload in parts:
            model = count(parts[workload])
            doc["model"] = {"functions": list(parts[workload]), **model.to_dict()}
            if step is not None:
                doc["step"] = {"functions": list(parts["step"]), **step.to_dict()}
                doc["api_distinct"] = len(set(model.api) | set(step.api))
        else:
            doc["note"] = (f"the {backend} backend's registry entry declares no code_parts for {workload}: module "
                           "total only")  # fmt: skip
        out[workload] = doc
    return out


def bare_metrics(directory: Path = BARE_DIR) -> dict[str, dict[str, Any]]:
    """script name -> the whole script's count, for each framework's bare script (one LSTM layer, timed)."""
    out: dict[str, dict[str, Any]] = {}
    for name in bare_scripts().values():
        path = directory / name
        if not path.is_file():  # an installed dlbench has no benchmarks/ folder
            continue
        module = Module(path.read_text())
        out[path.name] = {
            "script": f"benchmarks/bare/{path.name}",
            "workload": "lstm",
            "frameworks": sorted(module.frameworks),
            **module.count().to_dict(),
        }
    return out
