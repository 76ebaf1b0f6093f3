"""A case's attempts, and the figure built from them.

A case is timed in `repeat` independent processes (its repetitions, run in rounds across the sweep), and a
repetition whose window was disturbed is timed again later (its attempts, at most `retries` more). Every attempt
is stored as it arrives (the store's `attempts` table); once every repetition of a case is settled, `case_document`
builds the case's result from them:

- each repetition contributes its best clean attempt (the fastest clean one); with none clean, its least disturbed
  one, and the result is `disturbed` (shown with its figure, never ranked, never called significant);
- the figure is the geometric mean of the repetitions' medians; with two or more repetitions its interval comes from the
  spread between them (pyperf's model: independent processes are the honest error bar), with one from the
  iterations inside the window (which cannot see a neighbour spanning it nor between-process variation);
- `flags` say what a reader must know: `disturbed`, `few-iterations` (a repetition with fewer than min_iters timed
  iterations: excluded from significance), `unwatched` (the interpreter could not watch the window);
- a failed attempt (error, oom, timeout, unsupported, failed verification) settles the case with that status.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dlbench.core.cases import Case, MeasureConfig
from dlbench.measure.disturbance import judge
from dlbench.measure.stats import between_interval, summarize
from dlbench.workloads import get_workload

FLAG_TEXT = {"disturbed": "disturbed", "few-iterations": "few iterations", "unwatched": "unwatched"}


def attempt_document(
    case: Case, raw: dict[str, Any], measure: MeasureConfig, timeout_s: float, repetition: int = 1, attempt: int = 1
) -> dict[str, Any]:
    """One process's stored result: the worker's raw document, its statistics and its window's verdict."""
    doc = {"case": case.to_dict(), "case_key": case.key, "repetition": repetition, "attempt": attempt, **raw,
           "measure": measure.to_dict(), "timeout_s": timeout_s}  # fmt: skip
    doc.setdefault("error", None)
    if doc["status"] == "ok":
        doc["stats"] = summarize(doc["samples_s"], case.batch)
        doc["disturbance"] = judge(doc.get("window"), measure.max_outside_share, measure.min_cpu_share)
    return doc


def is_disturbed(doc: dict[str, Any]) -> bool:
    return (doc.get("disturbance") or {}).get("verdict") == "disturbed"


def settled(attempts: list[dict[str, Any]], measure: MeasureConfig) -> bool:
    """Whether one repetition needs no further attempt: it failed, was not disturbed, or used up its retries."""
    last = attempts[-1]
    return last["status"] != "ok" or not is_disturbed(last) or len(attempts) > measure.retries


def _best(attempts: list[dict[str, Any]]) -> dict[str, Any]:
    """A repetition's figure: its fastest undisturbed attempt, else its least disturbed one."""
    ok = [a for a in attempts if a["status"] == "ok" and a.get("samples_s")]
    if not ok:
        return attempts[-1]
    clean = [a for a in ok if not is_disturbed(a)]
    if clean:
        return min(clean, key=lambda a: a["stats"]["median_s"])
    return min(ok, key=lambda a: (a.get("window") or {}).get("outside_share", math.inf))


def _summary(doc: dict[str, Any]) -> dict[str, Any]:
    """What the result keeps of each attempt (its raw samples stay in the attempts table)."""
    window, verdict = doc.get("window") or {}, doc.get("disturbance") or {}
    stats = doc.get("stats") or {}
    return {"repetition": doc.get("repetition", 1), "attempt": doc.get("attempt", 1), "status": doc["status"],
            "pid": doc.get("pid"), "n": stats.get("n"), "median_s": stats.get("median_s"),
            "verdict": verdict.get("verdict"), "reasons": verdict.get("reasons", []),
            "outside_share": window.get("outside_share"), "cpu_share": window.get("cpu_share"),
            "waited_quiet_s": doc.get("waited_quiet_s")}  # fmt: skip


def case_document(case: Case, slots: list[list[dict[str, Any]]], measure: MeasureConfig) -> dict[str, Any]:
    """The case's result from its repetitions' attempts (`slots[r]` = repetition r+1's attempts, in order)."""
    every = [a for slot in slots for a in slot]
    failed = next((a for a in every if a["status"] != "ok"), None)
    chosen = [_best(slot) for slot in slots if slot]
    base = failed if failed is not None else chosen[0]
    doc = {k: v for k, v in base.items() if k not in ("repetition", "attempt", "stats", "disturbance", "window")}
    doc["attempts"] = [_summary(a) for a in every]
    if failed is not None:
        if len(every) > 1:
            doc["error"] = f"repetition {failed.get('repetition', 1)}: {failed.get('error') or failed['status']}"
        return doc
    per_rep = [np.asarray(a["samples_s"], dtype=float) for a in chosen]
    doc["samples_s"] = [float(v) for rep in per_rep for v in rep]  # every figure's raw times, repetition by repetition
    doc["repetitions"] = [{"repetition": a.get("repetition", 1), "attempt": a.get("attempt", 1), "pid": a.get("pid"),
                           "samples_s": a["samples_s"], "window": a.get("window"),
                           "disturbance": a.get("disturbance")} for a in chosen]  # fmt: skip
    stats = summarize(doc["samples_s"], case.batch)
    medians = [float(np.median(x)) for x in per_rep]
    stats["n_per_repetition"] = [len(x) for x in per_rep]
    stats["repetition_medians_s"] = medians
    if len(chosen) >= 2:
        median = float(np.exp(np.mean(np.log(medians))))  # their geometric mean: the centre of the interval
        low, high = between_interval(medians)
        stats.update(median_s=median, ci95_low_s=low, ci95_high_s=high, samples_per_s=case.batch / median,
                     samples_per_s_ci95=[case.batch / high, case.batch / low],
                     rel_ci95_half_width=(high - low) / 2 / median, ci_from="between repetitions",
                     between_rel_spread=(max(medians) - min(medians)) / median)  # fmt: skip
        stats["warnings"] = [w for w in stats["warnings"] if "95% CI" not in w]  # the within-window interval's
        if stats["between_rel_spread"] > 0.10:
            stats["warnings"].append(f"its processes' medians differ by {stats['between_rel_spread']:.0%}: the figure "
                                     "depends on the process; more repetitions (--repeat) narrow its interval")
    else:
        stats["ci_from"] = "iterations of one process"
    flags: list[str] = []
    few = [(a.get("repetition", 1), len(x)) for a, x in zip(chosen, per_rep, strict=True) if len(x) < measure.min_iters]
    if few:
        flags.append("few-iterations")
        where = ", ".join(f"{n} in repetition {r}" if len(chosen) > 1 else str(n) for r, n in few)
        stats["warnings"].insert(0, f"fewer timed iterations than min_iters={measure.min_iters} ({where}): "
                                    "not used for significance")  # fmt: skip
    disturbed = [a for a in chosen if is_disturbed(a)]
    if disturbed:
        flags.append("disturbed")
        reasons = "; ".join(dict.fromkeys(r for a in disturbed for r in a["disturbance"]["reasons"]))
        stats["warnings"].insert(0, f"disturbed in every attempt ({len(every)}): {reasons}: never ranked")
    if any((a.get("disturbance") or {}).get("verdict") == "unwatched" for a in chosen):
        flags.append("unwatched")
    doc["flags"], doc["disturbed"] = flags, bool(disturbed)
    doc["stats"] = stats
    workload = get_workload(case.workload)
    flops = workload.flops_per_sample(workload.size(case.size), case.mode)
    doc["flops_per_sample"] = flops
    doc["achieved_flops_per_s"] = flops * stats["samples_per_s"]
    return doc


__all__ = ["FLAG_TEXT", "attempt_document", "case_document", "is_disturbed", "settled"]
