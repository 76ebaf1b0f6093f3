"""One report over several runs: their results pooled (a case measured twice keeps the later run's result, unless
the two ran different versions of its framework: then both stay, as rows labelled with their versions), their
environments kept apart, and a warning when they come from different machines."""

from __future__ import annotations

from dlbench.core.results import Run
from dlbench.runs.tables import row_identities


def machine_differences(runs: list[Run]) -> list[str]:
    """Where runs' machines differ in what decides the figures (CPU model, GPUs)."""
    out = []
    for what, get in (("CPU model", lambda r: (r.fingerprint.get("cpu") or {}).get("model")),
                      ("GPUs", lambda r: [g.get("name") for g in r.fingerprint.get("gpus") or []])):  # fmt: skip
        values = {str(get(r)) for r in runs}
        if len(values) > 1:
            out.append(f"{what}: " + " vs ".join(sorted(values)))
    return out


def merge_runs(runs: list[Run]) -> tuple[Run, list[str]]:
    """A run holding every run's results (in run order), and notes on what the merge did."""
    if len(runs) == 1:
        return runs[0], []
    latest = {}
    for run in runs:
        identity = row_identities(run.results)  # per run: a result without a version takes its run's
        for result in run.results:
            latest[(result.case.key, identity[id(result)][1])] = result
    results = list(latest.values())
    replaced = sum(len(run.results) for run in runs) - len(results)
    notes = [f"{len(runs)} runs pooled: {', '.join(r.run_id for r in runs)}"]
    if replaced:
        notes.append(f"{replaced} case(s) measured in more than one run: the later run's result is shown")
    versions: dict[str, set[str]] = {}
    for (_, version), result in latest.items():
        versions.setdefault(result.case.backend_spec, set()).add(version)
    several = sorted(f"{spec} ({', '.join(sorted(v))})" for spec, v in versions.items() if len(v - {""}) > 1)
    if several:
        notes.append("different versions of one backend are kept apart, each row labelled with its version: "
                     + "; ".join(several))  # fmt: skip
    differences = machine_differences(runs)
    if differences:
        notes.append("the runs come from different machines (" + "; ".join(differences) + "): figures across "
                     "them compare the machines too")  # fmt: skip
    plan = list({c.key: c for run in runs for c in run.plan}.values())
    run_notes = list(dict.fromkeys(str(r.settings.get("note")) for r in runs if r.settings.get("note")))
    merged = Run(
        run_id=" + ".join(r.run_id for r in runs), suite=" + ".join(dict.fromkeys(r.suite for r in runs)),
        status=", ".join(dict.fromkeys(r.status for r in runs)), plan=plan, results=results,
        settings={"note": " ".join(run_notes)} if run_notes else {}, fingerprint=runs[0].fingerprint,
        store_path=runs[0].store_path,
    )  # fmt: skip
    return merged, notes
