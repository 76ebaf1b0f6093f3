"""The report's usability section, from `dlbench usability` findings (kinds "usability" and "export"): the seed's
"fluffy" metrics — writing and reading code, debugging, moving to production — measured. `dlbench usability`
prints the same tables.

- Code: lines, statements and framework API names of dlbench's own implementation of each workload, beside the
  samples/s the report's runs measured for it (where they did), and of the bare one-LSTM-layer scripts.
- Debugging: how often a Python print at the top of the model's forward ran, while the step was prepared, in step
  1 and in steps 2-3; and the error a wrongly shaped input raises, verbatim (first lines).
- Production: each export path, whether its artifact reloads and reproduces the model's output.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import TYPE_CHECKING, Any

from dlbench.core.tables import Section, Table

if TYPE_CHECKING:
    from dlbench.core.results import Run
    from dlbench.store import Store

WHAT_CODE_COUNTS = (
    "Code figures count dlbench's own implementation, not a user's script: per backend, the functions that build "
    "each workload's model (model) and the step dlbench times from it (step: shared by both workloads, and written "
    "for verified, comparable measurement: weights loaded from the workload, layouts, precision). Lines hold code "
    "(comments, blank lines and docstrings excluded; wrapping changes them), statements do not depend on wrapping. "
    "API names are distinct dotted names reached through the framework's modules (nn.LSTM is torch.nn.LSTM); "
    "methods called on framework objects (model.to, x.numpy) are not counted. The module total includes dlbench's "
    "harness code (settings, memory, error classification). The bare scripts (benchmarks/bare) are whole files, "
    "timing loop included: the closest to what a user writes for one LSTM layer."
)
WHAT_DEBUGGING_MEANS = (
    "Debugging: the backend's own step ran 3 times with a Python print and a breakpoint() at the top of the model's"
    " forward (sys.breakpointhook replaced by a counter, so nothing stops). A traced or compiled step runs them "
    "while tracing only; an eager one on every step. The shape-mismatch probe feeds the model an input one feature "
    "too wide (LSTM: hidden+1 features; VGG-16: 4 channels) and keeps the error's first lines verbatim (⏎ marks a "
    "line break); 'traceback ends in' says whether its innermost frame is framework code or dlbench's (the user's) "
    "code."
)
WHAT_EXPORT_MEANS = (
    "Export: each path was run for real on the float32 model at the probe's small size; the artifact was written, "
    "reloaded and run on the same input, and its output compared with the model's (max |difference| / max "
    "|output|; reproduces if ≤ 1e-5). A path that needs a package not installed here is 'not probed', not a failure."
)


def _first_line(text: Any, limit: int = 160) -> str:
    lines = str(text or "").strip().splitlines()
    return (lines[0][:limit] + (" …" if len(lines[0]) > limit or len(lines) > 1 else "")) if lines else ""


_ERROR_PREFIX = re.compile(r"^[\w.]*(?:Error|Exception): ")
# Lines that frame an error rather than state it: TensorFlow's "in user code:" and its quoted frames, Keras'
# "Exception encountered when calling ..." and "Arguments received by ...:" with its bullet list.
_FRAMING = re.compile(r"^(?:in user code:|File \"|Exception encountered when calling |Arguments received by |• )")


def headline(message: Any, limit: int = 140) -> str:
    """The line of an error message that states what went wrong: the first that is not framing (see _FRAMING; the
    source line quoted under a `File "..."` line is framing too), with a leading `SomeError: ` dropped."""
    lines = str(message or "").strip().splitlines()
    chosen, quoted = "", False
    for raw in lines:
        line = _ERROR_PREFIX.sub("", raw.strip())
        if not line or quoted:
            quoted = False
            continue
        if _FRAMING.match(line):
            quoted = line.startswith('File "')
            continue
        chosen = line
        break
    chosen = chosen or next((raw.strip() for raw in lines if raw.strip()), "")
    return chosen[:limit] + (" …" if len(chosen) > limit else "")


def _one_line(text: str) -> str:
    return " ⏎ ".join(line.rstrip() for line in text.strip().splitlines())


def _failed(doc: dict[str, Any]) -> str | None:
    """The probe's own failure (the worker's status), or None when it ran."""
    status = doc.get("status", "ok")
    return None if status == "ok" else f"{status}: {_first_line(doc.get('error'))}"


def speed_lookup(runs: list[Run]) -> tuple[dict[tuple[str, str], str], dict[str, str]]:
    """(backend, workload) -> samples/s of fp32 forward results in the report's runs ("~" marks a large spread, as
    in the seed's tables), at one size per workload (the size the most backends ran ok), and workload -> that
    size's text."""
    by_size: dict[str, dict[str, dict[str, str]]] = {}
    for run in runs:
        for result in run.results:
            case = result.case
            if result.status == "ok" and case.precision == "fp32" and case.mode == "forward" and result.samples_per_s:
                size = ",".join(f"{k}={v}" for k, v in case.size.items())
                text = f"{result.samples_per_s:,.1f}" + (" ~" if result.stats.get("warnings") else "")
                by_size.setdefault(case.workload, {}).setdefault(size, {})[case.backend] = text
    speed: dict[tuple[str, str], str] = {}
    sizes: dict[str, str] = {}
    for workload, options in by_size.items():
        size = max(options, key=lambda s: (len(options[s]), s))
        sizes[workload] = size
        speed.update({(backend, workload): value for backend, value in options[size].items()})
    return speed, sizes


def code_table(findings: list[dict[str, Any]], runs: list[Run] | None = None) -> Table:
    speed, sizes = speed_lookup(runs or [])
    columns = [
        "backend",
        "workload",
        "model lines",
        "model statements",
        "step lines (shared)",
        "framework API names",
        "module total lines (with harness)",
    ]
    if speed:
        columns.append("samples/s, fp32 forward (" + "; ".join(f"{w} {s}" for w, s in sorted(sizes.items())) + ")")
    table = Table("Writing and reading code: dlbench's implementation of each workload", columns)
    for doc in findings:
        model, step, total = doc.get("model") or {}, doc.get("step") or {}, doc.get("module_total") or {}
        api = sorted(set(model.get("api", [])) | set(step.get("api", [])))
        row = [
            doc["backend"],
            doc["workload"],
            str(model.get("lines", "—")),
            str(model.get("statements", "—")),
            str(step.get("lines", "—")),
            str(len(api)) if model else "—",
            str(total.get("lines", "—")),
        ]
        if speed:
            row.append(speed.get((doc["backend"], doc["workload"]), "—"))
        table.rows.append(row)
        if doc.get("note"):
            table.notes.append(doc["note"])
    return table


def bare_table(findings: list[dict[str, Any]]) -> Table:
    table = Table(
        "Bare scripts: one LSTM layer's timed forward pass, as a user writes it (benchmarks/bare)",
        ["script", "frameworks", "lines", "statements", "framework API names", "API names used"],
    )
    for doc in findings:
        api = doc.get("api") or []
        table.rows.append(
            [
                doc["script"],
                ", ".join(doc.get("frameworks") or []),
                str(doc["lines"]),
                str(doc["statements"]),
                str(len(api)),
                ", ".join(api),
            ]
        )
    return table


def debugging_table(findings: list[dict[str, Any]]) -> Table:
    table = Table(
        "Debugging: does a print in the model's forward run on every step?",
        [
            "backend",
            "workload",
            "compiled by",
            "prints while preparing",
            "in step 1",
            "in steps 2–3",
            "runs every step",
            "breakpoint() stops (preparing / 1 / 2–3)",
        ],
    )
    for doc in findings:
        failed = _failed(doc)
        if failed:
            table.rows.append([doc["backend"], doc["workload"], "—", "—", "—", "—", f"probe {failed}", "—"])
            table.classes.append({6: "neutral" if doc.get("status") == "unsupported" else "bad"})
            continue
        prints, stops = doc.get("prints") or {}, doc.get("breakpoints") or {}
        every = bool(doc.get("every_step"))
        verdict = (
            "yes"
            if every
            else (
                "no: at trace/compile only"
                if prints.get("step1")
                else "no: while building the graph only"
                if prints.get("build")
                else "never"
            )
        )
        table.rows.append(
            [
                doc["backend"],
                doc["workload"],
                str(doc.get("compiled_by", "")),
                *(str(prints.get(k, "—")) for k in ("build", "step1", "steps2_3")),
                verdict,
                " / ".join(str(stops.get(k, "—")) for k in ("build", "step1", "steps2_3")) if stops else "—",
            ]
        )
        table.classes.append({6: "good" if every else "warn"})
    return table


def shape_table(findings: list[dict[str, Any]]) -> Table:
    table = Table(
        "Debugging: the error a wrongly shaped input raises",
        [
            "backend",
            "workload",
            "raised",
            "exception",
            "message (headline)",
            "message quotes user code",
            "traceback ends in",
            "frames (framework / all)",
            "nearest dlbench frame",
        ],
    )
    for doc in findings:
        failed = _failed(doc)
        if failed:
            table.rows.append([doc["backend"], doc["workload"], f"probe {failed}", "", "", "", "", "", ""])
            table.classes.append({2: "neutral" if doc.get("status") == "unsupported" else "bad"})
            continue
        if not doc.get("raised_in"):
            table.rows.append(
                [doc["backend"], doc["workload"], "no error raised", "", doc.get("note", ""), "", "", "", ""]
            )
            table.classes.append({2: "bad"})
            continue
        where = {"build": "while preparing", "step1": "in step 1"}.get(doc["raised_in"], doc["raised_in"])
        user_frame = str(doc.get("user_frame") or "—")
        table.rows.append(
            [
                doc["backend"],
                doc["workload"],
                where,
                doc["exception"],
                headline(doc.get("message")),
                "yes" if doc.get("message_names_dlbench_file") else "no",
                f"{doc.get('innermost_kind')} ({doc.get('innermost')})",
                f"{doc.get('framework_frames')} / {doc.get('traceback_frames')}",
                user_frame[:100] + (" …" if len(user_frame) > 100 else ""),
            ]
        )
        table.classes.append(
            {
                5: "good" if doc.get("message_names_dlbench_file") else "neutral",
                6: "good" if doc.get("innermost_kind") == "dlbench" else "info",
            }
        )
        table.notes.append(f"{doc['backend']} {doc['workload']}, {doc['exception']}: {_one_line(doc['message'])}")
    return table


_OUTCOME_CLASS = {
    "reproduces": "good",
    "differs": "warn",
    "exported, not re-run": "info",
    "not probed": "neutral",
    "fails": "bad",
}


def export_table(findings: list[dict[str, Any]]) -> Table:
    table = Table(
        "Moving to production: export paths, probed for real",
        ["backend", "workload", "path", "result", "max rel. error", "artifact", "how"],
    )
    for doc in findings:
        failed = _failed(doc)
        outcome = doc.get("outcome") or "probe failed"
        detail = ""
        if failed:
            outcome, cls = f"probe {failed}", "neutral" if doc.get("status") == "unsupported" else "bad"
        else:
            cls = _OUTCOME_CLASS.get(outcome, "bad")
            if outcome == "fails":
                detail = f"{doc.get('exception', '')}: {doc.get('message', '')} (at {doc.get('user_frame') or '?'})"
            elif outcome == "not probed":
                detail = str(doc.get("reason", ""))
            elif doc.get("note") or doc.get("detail"):
                detail = str(doc.get("note") or doc.get("detail"))
            if doc.get("deprecation_warnings"):
                outcome += " (with deprecation warnings)"
                detail = " ".join([detail, "Warned: " + "; ".join(doc["deprecation_warnings"])]).strip()
        error = doc.get("max_rel_error")
        size = doc.get("artifact_bytes")
        table.rows.append(
            [
                doc["backend"],
                doc["workload"],
                doc.get("path", "?"),
                outcome,
                f"{error:.1e}" if isinstance(error, (int, float)) else "—",
                f"{size / 1024:,.0f} KiB" if isinstance(size, int) and size else "—",
                str(doc.get("api", "")),
            ]
        )
        table.classes.append({3: cls})
        if detail:
            table.notes.append(f"{doc['backend']} {doc['workload']} {doc.get('path')}: {_one_line(detail)[:600]}")
    return table


def tables(
    usability: list[dict[str, Any]], exports: list[dict[str, Any]], runs: list[Run] | None = None
) -> list[Table]:
    parts: dict[str, list[dict[str, Any]]] = {}
    for doc in usability:
        parts.setdefault(str(doc.get("part")), []).append(doc)
    out = []
    if parts.get("code"):
        out.append(code_table(parts["code"], runs))
    if parts.get("bare"):
        out.append(bare_table(parts["bare"]))
    if parts.get("debugging"):
        out.append(debugging_table(parts["debugging"]))
    if parts.get("shape_error"):
        out.append(shape_table(parts["shape_error"]))
    if exports:
        out.append(export_table(exports))
    return out


def load(store: Store, run_ids: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The runs' usability and export findings (a later run's finding replaces an earlier one's of the same key)."""
    usability: dict[str, dict[str, Any]] = {}
    exports: dict[str, dict[str, Any]] = {}
    for run_id in run_ids:
        usability.update(store.findings(run_id, "usability"))
        exports.update(store.findings(run_id, "export"))
    return list(usability.values()), list(exports.values())


def summary(exports: list[dict[str, Any]]) -> str:
    counts = Counter(str(doc.get("outcome") or doc.get("status")) for doc in exports)
    return "Export paths probed: " + ", ".join(f"{n} {outcome}" for outcome, n in counts.most_common()) + "."


def build(store: Store, runs: list[Run]) -> Section | None:
    own = [run.run_id for run in runs]
    source = list(dict.fromkeys(store.runs_with_findings(own, "usability") + store.runs_with_findings(own, "export")))
    if not source:
        return None
    usability, exports = load(store, source)
    paragraphs = [
        f"From `dlbench usability` run {', '.join(source)}.",
        WHAT_CODE_COUNTS,
        WHAT_DEBUGGING_MEANS,
        WHAT_EXPORT_MEANS,
    ]
    if exports:
        paragraphs.append(summary(exports))
    return Section(
        "usability",
        "Usability: writing, reading, debugging, moving to production",
        paragraphs,
        tables(usability, exports, runs),
        source,
    )
