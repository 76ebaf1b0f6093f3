"""Compile findings (and ordinary results that carry first-step phases) shaped into table rows, for the terminal
and for the report's section. Nothing here knows a framework: phase names come from the backends.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dlbench.core.results import Result
from dlbench.core.tables import Table

COLUMNS = ["backend", "case", "start", "persistent cache", "import s", "setup s", "first step s",
           "first step phases, s", "2nd step s", "first step warm/cold"]  # fmt: skip
RESULT_COLUMNS = ["backend", "case", "setup s", "first step s", "first step phases, s", "median step s"]
SETUP_PREFIX = "prepare_"  # phases measured inside prepare(): part of setup_s (backends/base.py)
MIB = 1024 * 1024

NOTES = [
    "Each start is a fresh process (a new interpreter). cold: every persistent compilation cache of the backend "
    "points at a new, empty folder; warm: a second process finds the folder the cold one filled. Where a "
    "backend keeps no persistent cache, warm is just a second cold process.",
    "Phases are the framework's own stages, each timed on its own (never apportioned): e.g. trace, lower, "
    "compile, first_execute (JAX); trace, first_call (TensorFlow: instantiation, Grappler, XLA and the run, "
    "in one call); rewrite, link, first_execute (PyTensor); dynamo, backend_compile (torch.compile). "
    "'other' is the rest of the first step (Python, dispatch, synchronization, work no phase covers); "
    "'(in setup)' phases ran while the model was built and are part of setup s, not of the first step.",
    "2nd step s: one ordinary step right after the first, what a step costs once nothing is left to compile.",
]


def seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 1:
        return f"{value:.2f}"
    if abs(value) >= 0.01:
        return f"{value:.3f}"
    return f"{value:.2g}"  # 0.00023: a step of microseconds still shows


def case_label(case: dict[str, Any]) -> str:
    size = ",".join(f"{k}={v}" for k, v in case["size"].items())
    return f"{case['workload']} {size} {case['precision']} {case['mode']} {case['device']}"


def phases_text(phases: dict[str, float], first_step_s: float | None) -> str:
    """`graph (in setup) 0.120 · rewrite 1.30 · link 0.450 · first_execute 0.010 · other 0.002`."""
    if not phases:
        return "—"
    setup = [(k, v) for k, v in phases.items() if k.startswith(SETUP_PREFIX)]
    step = [(k, v) for k, v in phases.items() if not k.startswith(SETUP_PREFIX)]
    parts = [f"{k.removeprefix(SETUP_PREFIX).removesuffix('_s')} (in setup) {seconds(v)}" for k, v in setup]
    parts += [f"{k.removesuffix('_s')} {seconds(v)}" for k, v in step]
    if step and first_step_s is not None:
        parts.append(f"other {seconds(first_step_s - sum(v for _, v in step))}")
    return " · ".join(parts)


def _cache_text(finding: dict[str, Any], start: str) -> str:
    cache = finding.get("cache") or {}
    if not cache:
        return "none (no persistent cache)"
    if start == "cold":
        return f"empty: {cache.get('what', '?')}"
    size = cache.get("bytes_after_cold", 0)
    amount = f"{size / MIB:.1f} MiB" if size >= MIB else f"{size / 1024:.0f} KiB"
    return f"filled by cold: {cache.get('files_after_cold', 0)} files, {amount}"


def finding_rows(findings: Iterable[dict[str, Any]]) -> tuple[list[list[str]], list[dict[int, str]], list[str]]:
    """(rows, cell classes, numbered notes for the failures): two rows per finding, cold then warm."""
    rows: list[list[str]] = []
    classes: list[dict[int, str]] = []
    errors: list[str] = []
    for finding in findings:
        case = finding["case"]
        cold_first = (finding.get("cold") or {}).get("first_step_s")
        for start in ("cold", "warm"):
            entry = finding.get(start) or {}
            status = entry.get("status", "error")
            row = [case["backend"], case_label(case), start, _cache_text(finding, start)]
            if status == "ok":
                first = entry.get("first_step_s")
                ratio = ""
                if start == "warm" and first is not None and cold_first:
                    ratio = f"{first / cold_first:.2f}"
                row += [seconds(entry.get("import_s")), seconds(entry.get("setup_s")), seconds(first),
                        phases_text(entry.get("first_step_phases") or {}, first), seconds(entry.get("second_step_s")),
                        ratio]  # fmt: skip
                classes.append({})
            else:
                reason = f"{case['backend']} {start}: {status}: {entry.get('error') or ''}".strip().splitlines()[0][
                    :300
                ]
                if reason not in errors:
                    errors.append(reason)
                row += ["—", "—", f"{status} [{errors.index(reason) + 1}]", "—", "—", ""]
                classes.append({6: "neutral" if status == "not run" else "bad"})
            rows.append(row)
    return rows, classes, [f"[{i}] {text}" for i, text in enumerate(errors, 1)]


def findings_table(findings: Iterable[dict[str, Any]], title: str) -> Table:
    findings = list(findings)
    rows, classes, errors = finding_rows(findings)
    cases = [{6: f["case_key"]} for f in findings for _ in ("cold", "warm")]
    return Table(title, list(COLUMNS), rows, [*NOTES, *errors], cases, classes)


def result_rows(results: Iterable[Result]) -> tuple[list[list[str]], list[dict[int, str]]]:
    """Ordinary run results whose backend reported first-step phases: one row each."""
    rows, cases = [], []
    for result in results:
        phases = result.document.get("first_step_phases") or {}
        if result.status != "ok" or not phases:
            continue
        first = result.first_step_s
        rows.append([result.case.backend, case_label(result.case.to_dict()), seconds(result.document.get("setup_s")),
                     seconds(first), phases_text(phases, first), seconds(result.stats.get("median_s"))])  # fmt: skip
        cases.append({3: result.case.key})
    return rows, cases
