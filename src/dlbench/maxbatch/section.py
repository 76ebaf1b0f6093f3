"""The report's "Largest batch that fits" section, from `dlbench maxbatch` findings (kind "maxbatch").

One row per search (backend × precision × mode × size × device): the largest batch that ran, the memory it
peaked at, the smallest batch that did not fit, the limit that stood for the device, and a linear fit of peak
memory against batch over the probes that ran (what one more sample costs). Then one sentence per backend on
the seed's question — does fp16 fit a larger batch than fp32? — answered from the two searches, and where the
answer is no, the fitted per-sample memory of each, which is the reason measured rather than guessed.
`dlbench maxbatch` prints the same table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dlbench.backends import BACKENDS
from dlbench.core.tables import Section, Table
from dlbench.core.units import format_size

if TYPE_CHECKING:
    from dlbench.core.results import Run
    from dlbench.store import Store

KIND = "maxbatch"
COLUMNS = ["backend", "precision", "mode", "size", "max batch", "memory there", "first failing batch",
           "memory per sample (fit)", "limit", "device", "probes"]  # fmt: skip
_FIGURE_TEXT = {
    "rss_peak_bytes": "peak RSS of the whole worker process (framework import included): the larger of its own "
    "high-water mark over the steps and the highest sample the --memory-limit watcher took",
}


def _size_text(size: dict[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in size.items()) or "—"


def per_sample_fit(document: dict[str, Any]) -> tuple[float, float] | None:
    """(bytes per sample, fixed bytes): least squares of peak memory on batch over the probes that ran;
    None with fewer than two distinct batches."""
    points = [(p["batch"], p["memory_bytes"]) for p in document.get("probes", [])
              if p.get("status") == "ok" and isinstance(p.get("memory_bytes"), int)]  # fmt: skip
    if len({b for b, _ in points}) < 2:
        return None
    n = len(points)
    mean_b, mean_m = sum(b for b, _ in points) / n, sum(m for _, m in points) / n
    slope = sum((b - mean_b) * (m - mean_m) for b, m in points) / sum((b - mean_b) ** 2 for b, _ in points)
    return slope, mean_m - slope * mean_b


def _max_cell(doc: dict[str, Any], notes: list[str]) -> tuple[str, str]:
    verdict, ok = doc.get("verdict"), doc.get("largest_ok")
    if verdict == "found":
        return str(ok), "good"
    if verdict == "none fits":
        return "none: batch 1 does not fit", "bad"
    if verdict == "max batch fits":
        return f"≥ {ok} (the --max-batch fits)", "info"
    stopped = doc.get("stopped") or {}
    where = f" at batch {stopped['batch']}" if stopped.get("batch") else ""
    notes.append(f"[{len(notes) + 1}] {doc['backend']} {doc['precision']} {doc['mode']}: search stopped by "
                 f"{stopped.get('status')}{where}: {stopped.get('error') or 'no message'}")  # fmt: skip
    lower = f"≥ {ok}, " if ok else ""
    return f"{lower}stopped: {stopped.get('status')}{where} [{len(notes)}]", "warn"


def findings_table(findings: list[dict[str, Any]], title: str = "Largest batch that fits") -> Table:
    table = Table(title, list(COLUMNS))
    notes: list[str] = []
    figures: set[str] = set()
    for doc in findings:
        max_cell, max_class = _max_cell(doc, notes)
        memory = doc.get("memory_at_largest") or {}
        if memory.get("figure"):
            figures.add(memory["figure"])
        fit = per_sample_fit(doc)
        limit = doc.get("memory_limit_bytes")
        row = [
            doc["backend"], doc["precision"], doc["mode"], _size_text(doc.get("size") or {}), max_cell,
            format_size(memory.get("bytes")) if memory.get("bytes") else "—",
            str(doc["smallest_oom"]) if doc.get("smallest_oom") else "—",
            format_size(fit[0]) if fit and fit[0] > 0 else "—",
            format_size(limit) if limit else str(doc.get("memory_limit_source") or "device memory"),
            doc["device"], str(len(doc.get("probes", []))),
        ]  # fmt: skip
        table.rows.append(row)
        table.classes.append({COLUMNS.index("max batch"): max_class})
    oom_errors = sorted({d["oom_error"] for d in findings if d.get("oom_error")})
    if oom_errors:
        notes.append("how the first failing batch failed: " + " | ".join(oom_errors[:4]))
    for figure in sorted(figures):
        notes.append(f"memory there: {_FIGURE_TEXT.get(figure, figure + ' (the framework allocator’s peak)')}")
    searches = sorted({(d.get("steps"), d.get("within")) for d in findings}, key=str)
    notes.append("search: " + "; ".join(
        f"{steps or '?'} step(s) per probe, bisection "
        + ("exact" if not within else f"to within {within:.0%}") for steps, within in searches))  # fmt: skip
    notes.append("memory per sample (fit): slope of a least-squares line through the peak memory of every probe "
                 "that ran, against its batch")  # fmt: skip
    table.notes = notes
    return table


def _label(backend: str) -> str:
    info = BACKENDS.get(backend)
    return f"{info.label} ({backend})" if info else backend


def fp16_sentences(findings: list[dict[str, Any]]) -> list[str]:
    """Per backend × mode × size × device searched in both fp32 and fp16: does fp16 fit a larger batch?"""
    groups: dict[tuple[str, str, str, str], dict[str, dict[str, Any]]] = {}
    for doc in findings:
        key = (doc["backend"], doc["mode"], _size_text(doc.get("size") or {}), doc["device"])
        groups.setdefault(key, {})[doc["precision"]] = doc
    lines = []
    for (backend, mode, size, device), by_precision in groups.items():
        if "fp32" not in by_precision or "fp16" not in by_precision:
            continue
        lines.append(f"{_label(backend)}, {mode}, {size}, {device}: "
                     + _compare(by_precision["fp32"], by_precision["fp16"]))  # fmt: skip
    return lines


def _step_ratio(fp32: dict[str, Any], fp16: dict[str, Any]) -> str:
    """At the largest batch both ran: each one's step time and peak memory."""
    def ran(doc: dict[str, Any]) -> dict[int, dict[str, Any]]:
        return {p["batch"]: p for p in doc.get("probes", []) if p.get("status") == "ok" and p.get("step_s")}

    a, b = ran(fp32), ran(fp16)
    common = sorted(set(a) & set(b))
    if not common:
        return ""
    n = common[-1]
    text = (f"; at batch {n} an fp16 step took {b[n]['step_s']:.3g} s against {a[n]['step_s']:.3g} s in fp32 "
            f"(×{b[n]['step_s'] / a[n]['step_s']:.3g})")  # fmt: skip
    if a[n].get("memory_bytes") and b[n].get("memory_bytes"):
        text += (f" and peaked at {format_size(b[n]['memory_bytes'])} against "
                 f"{format_size(a[n]['memory_bytes'])}")  # fmt: skip
    return text


def _compare(fp32: dict[str, Any], fp16: dict[str, Any]) -> str:
    for name, doc in (("fp16", fp16), ("fp32", fp32)):
        if doc.get("verdict") == "stopped":
            stopped = doc.get("stopped") or {}
            fits = [(n, per_sample_fit(d)) for n, d in (("fp16", fp16), ("fp32", fp32))]
            growth = "; ".join(f"{n} peak memory grew by {format_size(f[0])} per sample" for n, f in fits
                               if f and f[0] > 0)  # fmt: skip
            if fits[0][1] and fits[1][1] and fits[0][1][0] >= fits[1][1][0] > 0:
                growth += " (in the probes that ran, fp16 needed no less memory per sample than fp32)"
            ran = (f"largest batch that ran: {fp16.get('largest_ok') or 'none'} in fp16, "
                   f"{fp32.get('largest_ok') or 'none'} in fp32")  # fmt: skip
            return (f"no answer: the {name} search stopped with {stopped.get('status')}"
                    + (f" at batch {stopped['batch']}" if stopped.get("batch") else "")
                    + f" ({(stopped.get('error') or 'no message')[:200]}); {ran}"
                    + _step_ratio(fp32, fp16) + (f"; {growth}" if growth else "") + ".")  # fmt: skip
    a, b = fp32.get("largest_ok") or 0, fp16.get("largest_ok") or 0
    bound = {"max batch fits": "at least "}
    text_a, text_b = bound.get(fp32["verdict"], "") + str(a), bound.get(fp16["verdict"], "") + str(b)
    fit_a, fit_b = per_sample_fit(fp32), per_sample_fit(fp16)
    why = ""
    if fit_a and fit_b and fit_a[0] > 0 and fit_b[0] > 0:
        why = (f"; peak memory grows by {format_size(fit_b[0])} per sample in fp16 against {format_size(fit_a[0])} "
               f"in fp32 (×{fit_b[0] / fit_a[0]:.2f})")  # fmt: skip
    if fp32["verdict"] == "max batch fits" and fp16["verdict"] == "max batch fits":
        return f"both fit the --max-batch ({text_a}): no answer without a larger --max-batch{why}."
    if b > a:
        return f"yes, fp16 fits a larger batch: {text_b} against {text_a} in fp32 (×{b / max(a, 1):.2f}){why}."
    if fp32["verdict"] == "max batch fits":
        return f"no answer: fp32 fits the --max-batch ({text_a}) and fp16 fits {text_b}{why}."
    if b == a:
        return f"no, fp16 fits the same batch as fp32 ({text_a}){why}."
    return f"no, fp16 fits a smaller batch than fp32: {text_b} against {text_a}{why}."


def build(store: Store, runs: list[Run]) -> Section | None:
    run_ids = store.runs_with_findings([run.run_id for run in runs], KIND)
    findings = [doc for run_id in run_ids for doc in store.findings(run_id, KIND).values()]
    if not findings:
        return None
    paragraphs = [
        "For each backend, precision and mode: the largest batch that runs, found by doubling from a start batch "
        "until one does not fit, then bisecting until the batch that ran and the first failing batch are as close "
        "as the search was asked (adjacent when exact). Each probe is one case in a fresh process, running one or "
        "two steps (see the notes). On a GPU, not fitting is the framework's own "
        "out-of-memory error; on the CPU a --memory-limit stands for a smaller device: the runner kills a probe "
        "whose resident memory (its whole process, framework included, the same rule for every framework) "
        "reaches it, and records that as out of memory.",
        *fp16_sentences(findings),
        "Findings of run(s) " + ", ".join(run_ids) + " (`dlbench maxbatch`).",
    ]  # fmt: skip
    return Section("maxbatch", "Largest batch that fits", paragraphs, [findings_table(findings)], run_ids)
