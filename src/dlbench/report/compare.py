"""`dlbench compare RUN_A RUN_B`: per matching case, B's samples/s ÷ A's with a 95% CI and a verdict.

Cases match on their key (workload, size, backend, precision, mode, device). Backend options (the numpy
harness's sleep_s, say) and env tags (`torch@old`) are part of a case's key, but a comparison of A against B is
often exactly a change of option or environment; so a case with no exact partner is matched on its key without
them, when that is unambiguous in both runs, and the row says what differs.

`RUN_ID:BACKEND` compares one backend spec of a run, so two envs of one run compare too (`RUN:torch@old RUN:torch`).

Two separate runs are not interleaved: what changed between them (the machine's state, a neighbour that came and
went, a slower host under the same virtual CPU) moves every case of one run alike. Measured on this project's
shared 2-core VM: two back-to-back quiet runs of seed-cpu, three processes per figure, moved ×0.88 as a whole, and
judged case by case against 1 they called 6 of 57 identical cases regressions
(benchmarks/results/seed-cpu-2core-cpu.md). So between two runs (not two backends of one run, which are
interleaved) each case is judged against the *run-wide shift* — the median B ÷ A over the testable cases — and
the shift itself is reported, and called a regression only beyond `drift` (MACHINE_DRIFT, `--drift`): within it,
two separate runs cannot tell a change common to every case from the machine. A change common to every case is
measured by putting both sides in one run (`--backends torch,torch@old`, then `compare RUN:torch@old RUN:torch`).

Runs whose machines differ in what decides the figures (the CPU model; the GPU model, when a GPU case is
compared) are refused unless forced: the ratio would measure the machines, not the change. Different versions
of a compared backend's framework are a supported comparison ("PyTorch 2.5 vs 2.13" on one machine): the
header says which versions changed, so the ratio is read as the version change. Other differences (hostname,
Python, kernel, thread settings, ...) are listed as warnings.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field, replace
from typing import Any

from dlbench.core.errors import UsageError
from dlbench.core.results import Result, Run
from dlbench.core.text import printable
from dlbench.measure.stats import t95, t_quantile
from dlbench.report.statistics import NOISE_FLOOR, Ratio, Timed, throughput_ratio
from dlbench.runs.tables import STATUS_TEXT

MACHINE_DRIFT = 0.15  # a whole run may move this much from one run to the next on one machine (see above)
MIN_SHIFT_CASES = 5  # fewer testable cases than this: no run-wide shift, no moderation (each case as it is)
# From three processes a case's variance is a guess on 2 degrees of freedom: by chance some cases' processes agree
# closely and their intervals come out far too narrow (those were the A/A false alarms above). Each case's variance
# is therefore moderated towards the median variance of the comparison's cases, weighted as PRIOR_DF degrees of
# freedom (limma's moderated t, Smyth 2004, with a fixed prior weight): on the A/A pair above it leaves 0 of 57
# cases significant (5 without it).
PRIOR_DF = 4.0

_WARN_FIELDS = ("hostname", "os", "python", "dlbench", "ram_bytes", "cpu.logical_cores", "cpu.allowed_cpus", "env")
_WARN_SETTINGS = ("measure", "cpus", "isolation", "verify", "timeout_s")


def parse_threshold(text: str, option: str = "--threshold", zero: bool = False) -> float:
    """`5%` or `5` → 0.05. UsageError on anything else (0% only where `zero`)."""
    raw = text.strip().removesuffix("%").strip()
    try:
        value = float(raw) / 100
    except ValueError:
        value = -1.0
    if not (0 <= value < 1 if zero else 0 < value < 1):  # nan fails both
        low = "0 (included)" if zero else "0"
        raise UsageError(f"bad {option} {text!r}: expected a percentage between {low} and 100, like 5%")
    return value


def base_key(result: Result) -> str:
    """The case key without backend options and env tag."""
    case = result.case
    size = ",".join(f"{k}={v}" for k, v in case.size.items())
    return f"{case.workload}-{size}-{case.backend}-{case.precision}-{case.mode}-{case.device}"


@dataclass
class CaseComparison:
    key: str
    a: Result | None
    b: Result | None
    ratio: Ratio | None = None  # B ÷ A samples/s
    verdict: str = ""
    regression: bool = False
    note: str = ""


@dataclass(frozen=True)
class Shift:
    """What moved every case of run B against run A alike: the median B ÷ A over `cases` testable cases."""

    value: float
    cases: int
    drift: float  # within 1 ± drift, the machine may account for it
    regression: bool  # below 1 - max(drift, threshold)
    scatter: float = 0.0  # sd of the cases' log B ÷ A about the shift beyond their processes' spread (robust)
    machines: str = ""  # two machines of one cluster run (their labels, "A vs B"): the shift is their difference

    def text(self) -> str:
        if self.machines:
            return (f"two machines of one cluster run ({self.machines}): B ran the cases at ×{self.value:.3f} A's "
                    f"speed (the median B ÷ A of {self.cases} cases); each case is judged against ×1, since the "
                    "machines' difference is what is compared, and no case is called a regression for it.")
        within = abs(math.log(self.value)) <= -math.log(1 - self.drift)
        scatter = (f"; the cases scatter about it by a further ±{self.scatter:.0%} (one sd) that their processes "
                   "do not show (the machine's state moves some cases more than others): each case's interval "
                   "includes it" if self.scatter >= 0.005 else "")  # fmt: skip
        return (f"the whole run moved ×{self.value:.3f} (the median B ÷ A of {self.cases} cases){scatter}; each "
                "case is judged against that, not against ×1. " + (
                    f"Within ±{self.drift:.0%} (--drift), two separate runs on one machine cannot tell a change "
                    "common to every case from the machine's state; to measure one, put both sides in one run "
                    "(--backends torch,torch@old; compare RUN:torch@old RUN:torch)." if within else
                    f"That is beyond the ±{self.drift:.0%} (--drift) the machine's state explains between two runs"
                    + (": a REGRESSION of every case." if self.regression else ".")))  # fmt: skip


@dataclass
class Comparison:
    run_a: str
    run_b: str
    threshold: float
    rows: list[CaseComparison]
    noise: float = NOISE_FLOOR
    refused_fields: list[str] = field(default_factory=list)  # differences that matter (compared under --force)
    other_differences: list[str] = field(default_factory=list)
    version_changes: list[str] = field(default_factory=list)  # what the comparison measures besides the change
    shift: Shift | None = None  # two separate runs: what moved every case alike (None: one run, or too few cases)

    @property
    def regressions(self) -> list[CaseComparison]:
        return [r for r in self.rows if r.regression]

    @property
    def regressed(self) -> bool:
        """Any case regressed, or the whole run did."""
        return bool(self.regressions) or bool(self.shift and self.shift.regression)

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.rows:
            counts[row.verdict] = counts.get(row.verdict, 0) + 1
        return counts


def _get(document: dict[str, Any], dotted: str) -> Any:
    value: Any = document
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def version_changes(a: Run, b: Run, rows: list[CaseComparison]) -> list[str]:
    """`torch 2.5.1 → 2.13.0 (backend torch)` for each package whose version differs between a compared pair."""
    changes: dict[str, None] = {}
    for row in rows:
        if row.a is None or row.b is None:
            continue
        va = {k: str(v) for k, v in (row.a.document.get("versions") or {}).items()}
        vb = {k: str(v) for k, v in (row.b.document.get("versions") or {}).items()}
        for package in sorted(set(va) & set(vb)):
            if va[package] != vb[package]:
                spec = row.a.case.backend_spec if row.a.case.backend_spec == row.b.case.backend_spec else \
                    f"{row.a.case.backend_spec} → {row.b.case.backend_spec}"
                changes[f"{package} {va[package]} → {vb[package]} (backend {spec})"] = None
    return list(changes)


def environment_differences(a: Run, b: Run, rows: list[CaseComparison]) -> tuple[list[str], list[str]]:
    """(differences that matter, other differences), each as `field ('A value' vs 'B value')`. Framework
    versions are neither: see version_changes."""
    def show(field_name: str, x: Any, y: Any) -> str:
        return f"{field_name} ({x!r} vs {y!r})"

    matter: list[str] = []
    fa, fb = a.fingerprint, b.fingerprint
    if _get(fa, "cpu.model") != _get(fb, "cpu.model"):
        matter.append(show("cpu.model", _get(fa, "cpu.model"), _get(fb, "cpu.model")))
    compared = [r for r in rows if r.a is not None and r.b is not None]
    if any(r.a is not None and r.a.case.device != "cpu" for r in compared):
        gpus_a = [g.get("name") for g in fa.get("gpus") or []]
        gpus_b = [g.get("name") for g in fb.get("gpus") or []]
        if gpus_a != gpus_b:
            matter.append(show("gpus", gpus_a, gpus_b))
    other = [show(f, _get(fa, f), _get(fb, f)) for f in _WARN_FIELDS if _get(fa, f) != _get(fb, f)]
    other += [show(f"settings.{s}", a.settings.get(s), b.settings.get(s)) for s in _WARN_SETTINGS
              if a.settings.get(s) != b.settings.get(s)]  # fmt: skip
    return matter, other


def _pair(a: Run, b: Run) -> list[CaseComparison]:
    by_key_b = {r.case.key: r for r in b.results}
    rows: list[CaseComparison] = []
    left_a = [r for r in a.results if r.case.key not in by_key_b]
    matched_b = set()
    for r in a.results:
        if r.case.key in by_key_b:
            rows.append(CaseComparison(r.case.key, r, by_key_b[r.case.key]))
            matched_b.add(r.case.key)
    left_b = [r for r in b.results if r.case.key not in matched_b]

    def unique(results: list[Result]) -> dict[str, Result]:  # by key without options and env tag
        seen: dict[str, list[Result]] = {}
        for r in results:
            seen.setdefault(base_key(r), []).append(r)
        return {k: v[0] for k, v in seen.items() if len(v) == 1}

    ua, ub = unique(left_a), unique(left_b)
    for key in [k for k in ua if k in ub]:
        ra, rb = ua[key], ub[key]
        opts = sorted(o for o in set(ra.case.options) | set(rb.case.options)
                      if ra.case.options.get(o) != rb.case.options.get(o))  # fmt: skip
        notes = ["options differ: " + ", ".join(
            f"{o}={ra.case.options.get(o, '—')} → {rb.case.options.get(o, '—')}" for o in opts)] if opts else []
        if ra.case.env != rb.case.env:
            notes.append(f"backend {ra.case.backend_spec} → {rb.case.backend_spec}")
        rows.append(CaseComparison(key, ra, rb, note="; ".join(notes)))  # fmt: skip
    paired_a = {id(r.a) for r in rows}
    paired_b = {id(r.b) for r in rows}
    rows += [CaseComparison(r.case.key, r, None) for r in a.results if id(r) not in paired_a]
    rows += [CaseComparison(r.case.key, None, r) for r in b.results if id(r) not in paired_b]
    return rows


def _measured(result: Result) -> bool:
    return result.status == "ok" and bool(result.samples_s)


def _judge(row: CaseComparison, threshold: float, shift: float = 1.0, prior: float | None = None, tests: int = 1,
           scatter: float = 0.0) -> None:  # fmt: skip
    """The row's verdict: its ratio against `shift` (1, or the run-wide shift of two separate runs), its
    interval's variance moderated towards `prior` (the median variance of the comparison's cases; None: as is).
    Faster / slower at 95% for the case; a regression at 95% for the whole comparison of `tests` cases
    (Bonferroni: its interval at 1 - 0.05 / tests lies wholly below 1 - threshold). `scatter`: a variance of
    the log ratio that every case has besides its processes' (Shift.scatter)."""
    a, b = row.a, row.b
    if a is None or b is None:
        row.verdict = "only in A" if b is None else "only in B"
        return
    a_ok, b_ok = _measured(a), _measured(b)
    if a_ok and b_ok:
        assert row.ratio is not None  # compare_runs gave every measured pair its ratio first
        ratio = row.ratio
        relative = replace(ratio, value=ratio.value / shift, low=ratio.low / shift, high=ratio.high / shift)
        family = relative
        if ratio.testable and ratio.variance > 0 and math.isfinite(ratio.df):
            variance, df = ratio.variance, ratio.df
            if prior is not None:
                moderated = (PRIOR_DF * prior + df * variance) / (PRIOR_DF + df)
                if t95(PRIOR_DF + df) ** 2 * moderated > t95(df) ** 2 * variance:  # moderation only widens
                    variance, df = moderated, PRIOR_DF + df
            variance += scatter
            centre = math.log(relative.value)

            def interval(level: float) -> Ratio:
                half = t_quantile(1 - (1 - level) / 2, max(df, 1.0)) * math.sqrt(variance)
                return replace(relative, low=math.exp(centre - half), high=math.exp(centre + half))

            relative, family = interval(0.95), interval(1 - 0.05 / max(tests, 1))
        row.verdict = relative.verdict
        row.regression = family.significant and family.high < 1 - threshold
        if (shift != 1.0 or prior is not None) and relative.significant:
            against = f" against the run-wide ×{shift:.3f}" if shift != 1.0 else " (moderated)"
            row.note = "; ".join(filter(None, [row.note, f"{relative.text()}{against}"]))
    elif a_ok:
        row.verdict, row.regression = f"now fails ({STATUS_TEXT.get(b.status, b.status)})", True
    elif b_ok:
        row.verdict = f"now runs (was {STATUS_TEXT.get(a.status, a.status)})"
    else:
        row.verdict = "not measured in either"


def split_run_arg(text: str) -> tuple[str, str]:
    """`RUN_ID` or `RUN_ID:BACKEND` (e.g. `20261124-235238-1c2b:torch@old`) → (run id, backend spec or "")."""
    run_id, colon, spec = text.partition(":")
    if not run_id.strip() or (colon and not spec.strip()):
        raise UsageError(f"bad run {text!r}: expected RUN_ID or RUN_ID:BACKEND (e.g. 20261124-235238-1c2b:torch)")
    return run_id, spec


def select_backend(run: Run, spec: str) -> Run:
    """The run with only the results of one backend spec (`torch`, `torch@old`): how two envs of one run, or one
    backend of two runs, are compared. UsageError naming the specs the run holds."""
    held = list(dict.fromkeys(r.case.backend_spec for r in run.results))
    if spec not in held:
        raise UsageError(f"unknown backend {spec!r} in run {run.run_id} (allowed: {', '.join(held) or 'none'})")
    results = [r for r in run.results if r.case.backend_spec == spec]
    return replace(run, run_id=f"{run.run_id}:{spec}", results=results,
                   plan=[c for c in run.plan if c.backend_spec == spec])  # fmt: skip


def cluster_machines(a: Run, b: Run) -> str:
    """"A vs B" when the two runs are two machines of one `run --cluster --on-every-node` (same group, different
    nodes); "" otherwise."""
    ca, cb = a.settings.get("cluster") or {}, b.settings.get("cluster") or {}
    na, nb = ca.get("node") or {}, cb.get("node") or {}
    if not ca.get("group") or ca.get("group") != cb.get("group") or not na or na.get("node_id") == nb.get("node_id"):
        return ""
    return f"{na.get('address')} ({str(na.get('node_id'))[:8]}) vs {nb.get('address')} ({str(nb.get('node_id'))[:8]})"


def same_run(a: Run, b: Run) -> bool:
    """Both sides from one run (RUN:torch@old against RUN:torch): interleaved, so no run-wide shift between them."""
    return a.run_id.partition(":")[0] == b.run_id.partition(":")[0]


def compare_runs(
    a: Run, b: Run, threshold: float = 0.05, force: bool = False, noise: float = NOISE_FLOOR,
    drift: float = MACHINE_DRIFT,
) -> Comparison:  # fmt: skip
    """Compare two runs case by case. UsageError if no case matches, or (unless `force`) if the environments
    differ in a way that matters.

    Verdict (_judge): faster / slower when the whole 95% CI of B ÷ A, divided by the run-wide shift (two separate
    runs with at least MIN_SHIFT_CASES testable cases; else 1) and widened by moderation and the cases' scatter,
    lies beyond 1 ± `noise` (see statistics.NOISE_FLOOR), else no significant difference. Regression: a slowdown
    whose Bonferroni interval lies wholly below 1 − `threshold`, or a case that ran in A and fails in B; and the
    run as a whole when its shift is below 1 − max(`drift`, `threshold`)."""
    rows = _pair(a, b)
    if not any(r.a is not None and r.b is not None for r in rows):
        raise UsageError(f"runs {a.run_id} and {b.run_id} have no case in common: nothing to compare")
    matter, other = environment_differences(a, b, rows)
    machines = cluster_machines(a, b)
    if machines:  # the hardware is what a cluster run's machines are compared for
        other, matter = matter + other, []
    if matter and not force:
        raise UsageError(f"runs {a.run_id} and {b.run_id} differ in {', '.join(matter)}: the ratios would measure "
                         "that difference; pass --force to compare anyway")  # fmt: skip
    for row in rows:
        if row.a is not None and row.b is not None and _measured(row.a) and _measured(row.b):
            row.ratio = throughput_ratio([Timed.of(row.b, "B:")], [Timed.of(row.a, "A:")], noise)
    # A regression holds for the whole comparison: Bonferroni over its tested cases.
    tested = [r.ratio for r in rows if r.ratio is not None and r.ratio.testable and r.ratio.value > 0]
    shift, value, prior, scatter = None, 1.0, None, 0.0
    if len(tested) >= MIN_SHIFT_CASES:
        if not same_run(a, b):
            value = math.exp(statistics.median(math.log(r.value) for r in tested))
            shift = Shift(value, len(tested), drift, value < 1 - max(drift, threshold) and not machines,
                          machines=machines)  # fmt: skip
        prior = statistics.median(r.variance for r in tested if math.isfinite(r.variance))
        if shift is not None:  # what moves cases apart between two runs beyond their processes' spread
            residuals = [math.log(r.value / value) for r in tested]
            spread = 1.4826 * statistics.median(abs(x) for x in residuals)  # robust: a few real changes barely count
            scatter = max(0.0, spread**2 - prior)
            shift = replace(shift, scatter=math.sqrt(scatter))
    if machines:  # judged against ×1; the cases' scatter about the machines' ratio is real, not noise
        value, scatter = 1.0, 0.0
    for row in rows:
        _judge(row, threshold, value, prior, len(tested), scatter)
    order = {"only in A": 2, "only in B": 2}
    rows.sort(key=lambda r: (order.get(r.verdict, 0) if r.a and r.b else 2, not r.regression))
    return Comparison(a.run_id, b.run_id, threshold, rows, noise, matter, other, version_changes(a, b, rows), shift)


def _sps(result: Result | None) -> str:
    if result is None:
        return "—"
    if result.status != "ok" or not result.samples_per_s:
        return STATUS_TEXT.get(result.status, result.status)
    value = result.samples_per_s
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


COLUMNS = ["case", "A samples/s", "B samples/s", "B ÷ A (95% CI)", "verdict", "regression"]


def rows_text(comparison: Comparison) -> list[list[str]]:
    out = []
    for row in comparison.rows:
        ratio = row.ratio.text() if row.ratio and row.ratio.testable else (
            f"×{row.ratio.value:.3f}" if row.ratio else "—")  # fmt: skip
        verdict = row.verdict + (f"; {row.note}" if row.note else "")
        out.append([row.key, _sps(row.a), _sps(row.b), ratio, verdict,
                    f"REGRESSION (> {comparison.threshold:.0%})" if row.regression else ""])  # fmt: skip
    return out


def summary_lines(comparison: Comparison) -> list[str]:
    lines = [f"A = run {comparison.run_a}, B = run {comparison.run_b}; ratio > 1: B is faster. Verdicts: "
             + ", ".join(f"{n} {v}" for v, n in comparison.counts().items()) + ".",
             f"A difference is significant when its whole 95% CI (from the spread between each run's independent "
             f"processes, --repeat) lies beyond ±{comparison.noise:.0%}, the noise floor; a case measured in one "
             "process, disturbed, or with fewer than min_iters iterations is not tested."]
    if comparison.version_changes:
        lines.append("Versions differ, so B ÷ A measures the version change: " + ", ".join(comparison.version_changes))
    if comparison.refused_fields:
        lines.append("COMPARED UNDER --force although the runs differ in: " + ", ".join(comparison.refused_fields))
    if comparison.other_differences:
        lines.append("Other differences: " + ", ".join(comparison.other_differences))
    if comparison.shift is not None:
        text = comparison.shift.text()
        lines.append(text[:1].upper() + text[1:])
    n = len(comparison.regressions)
    lines.append(f"{n} regression(s) beyond {comparison.threshold:.0%}" if n else
                 f"no case regressed beyond {comparison.threshold:.0%}")  # fmt: skip
    return lines


def to_markdown(comparison: Comparison) -> str:
    def esc(text: str) -> str:  # a store's text: one line, no escape sequence (core/text.py), no cell break
        return printable(text).replace("|", "\\|")

    out = [f"## dlbench compare {esc(comparison.run_a)} → {esc(comparison.run_b)}", ""]
    out += [f"- {esc(line)}" for line in summary_lines(comparison)]
    out += ["", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    out += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows_text(comparison)]
    return "\n".join(out) + "\n"


def to_json(comparison: Comparison) -> str:
    def ratio(row: CaseComparison) -> dict[str, Any] | None:
        r = row.ratio
        if r is None:
            return None
        return {"value": r.value, "ci95": [r.low, r.high] if r.testable else None,
                "significant": row.verdict in ("faster", "slower")}  # fmt: skip

    shift = comparison.shift

    return json.dumps({
        "run_a": comparison.run_a, "run_b": comparison.run_b, "threshold": comparison.threshold,
        "refused_fields": comparison.refused_fields, "other_differences": comparison.other_differences,
        "version_changes": comparison.version_changes,
        "shift": None if shift is None else {"value": shift.value, "cases": shift.cases, "drift": shift.drift,
                                             "regression": shift.regression},
        "regressed": comparison.regressed,
        "cases": [{"key": row.key, "a_samples_per_s": row.a.samples_per_s if row.a else None,
                   "b_samples_per_s": row.b.samples_per_s if row.b else None, "ratio": ratio(row),
                   "verdict": row.verdict, "regression": row.regression, "note": row.note} for row in comparison.rows],
    }, indent=1)  # fmt: skip
