"""Does dlbench stay honest on a machine that is not quiet? The same small grid quiet and under injected load.

For each load pattern, the grid is run through dlbench (its default disturbance rules, `--repeat 2`), while
competing processes run beside it; then each case's figure is set against the quiet run's:

- quiet       nothing injected (the reference; run first, and again last to show how much quiet runs differ)
- steady      one busy process (one core of load), left to the scheduler
- bursty      every core busy for 0.4 s, then idle for 1.2 s, over and over
- steady-pinned  the steady load, with dlbench's workers pinned to one CPU (`--cpus`): what the README advises

Per case: the ratio of its figure to the quiet one (a pinned pattern against a quiet run pinned alike: one CPU
means one thread), and whether dlbench flagged it `disturbed`. "quiet again" is the yardstick: how far two quiet
runs of the same grid already differ on this machine. Per pattern: how
many figures shown as clean lie within 10% of the quiet figure (the claim: all of them), how many were flagged, and
whether the ranking agrees with the quiet run: per case, the order of the backends where both figures are clean,
and every lead the recommendation calls significant (none may contradict the quiet run).

    .venv/bin/python benchmarks/noise.py [--backends torch,jax] [--patterns quiet,steady,bursty] [--out FILE.md]

On 2 cores a pattern takes about a minute. Ratios only: nothing here is an absolute threshold.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dlbench
from dlbench.core.results import Run
from dlbench.measure.disturbance import allowed_cpus
from dlbench.report.recommend import regimes

SIZES = {"seq_len": [30], "batch": [8, 32], "hidden": [64, 256]}
MEASURE = {"min_time_s": 0.2, "min_iters": 5, "max_time_s": 10.0, "target_rel_ci": 0.5, "warmup_iters": 0,
           "repeat": 2}  # fmt: skip
PATTERNS = ("quiet", "steady", "bursty", "steady-pinned")
SPIN = "while True: pass"
BURST = "import time\nwhile True:\n    end = time.perf_counter() + 0.4\n    while time.perf_counter() < end: pass\n" \
        "    time.sleep(1.2)"


@contextmanager
def load(pattern: str) -> Iterator[None]:
    """Competing processes for the pattern, killed on exit. They are this script's children, never the case's."""
    count = len(allowed_cpus()) if pattern == "bursty" else (1 if pattern.startswith("steady") else 0)
    code = BURST if pattern == "bursty" else SPIN
    processes = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(count)]
    try:
        time.sleep(0.5 if processes else 0)
        yield
    finally:
        for p in processes:
            p.kill()
            p.wait()


def measure(pattern: str, backends: list[str], store: Path) -> Run:
    cpus = [allowed_cpus()[-1]] if pattern.endswith("pinned") else None
    with load(pattern):
        return dlbench.run("lstm", sets=SIZES, backends=backends, precisions=["fp32"], store=store, measure=MEASURE,
                           cpus=cpus, verify=False)  # fmt: skip


def figures(run: Run) -> dict[str, tuple[float, bool]]:
    """case key (without backend options) -> (samples/s, flagged disturbed)."""
    return {r.case.key: (r.samples_per_s or math.nan, "disturbed" in r.flags) for r in run.results if r.status == "ok"}


def order_agreement(quiet: Run, loaded: Run) -> tuple[int, int]:
    """(pairs in the same order, pairs compared): per size and mode, every pair of backends clean in both runs."""
    def key(r: dlbench.Result) -> tuple[str, str, str]:
        return str(sorted(r.case.size.items())), r.case.mode, r.case.backend

    clean_q = {key(r): r.samples_per_s for r in quiet.results if r.rankable}
    clean_l = {key(r): r.samples_per_s for r in loaded.results if r.rankable}
    same = total = 0
    groups = {(k[0], k[1]) for k in clean_q}
    for size, mode in groups:
        backends = sorted(b for (s, m, b) in clean_q if (s, m) == (size, mode) and (s, m, b) in clean_l)
        for x, y in itertools.combinations(backends, 2):
            q = clean_q[(size, mode, x)] > clean_q[(size, mode, y)]  # type: ignore[operator]
            ld = clean_l[(size, mode, x)] > clean_l[(size, mode, y)]  # type: ignore[operator]
            same, total = same + (q == ld), total + 1
    return same, total


def contradictions(quiet: Run, loaded: Run) -> list[str]:
    """Leads the loaded run calls significant whose winner the quiet run does not put first."""
    winners = {g.name: g.winner for g in regimes(quiet)}
    return [f"{g.name}: loaded says {g.winner}, quiet {winners.get(g.name)}" for g in regimes(loaded)
            if g.significant and winners.get(g.name) not in (None, g.winner)]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="torch,jax")
    parser.add_argument("--patterns", default=",".join(PATTERNS))
    parser.add_argument("--out", help="also write the Markdown here")
    args = parser.parse_args()
    backends, patterns = args.backends.split(","), [p for p in args.patterns.split(",") if p != "quiet"]
    lines = [f"# dlbench under injected load ({os.cpu_count()} CPUs, backends {', '.join(backends)}, "
             f"LSTM seq 30 × batch {{8, 32}} × hidden {{64, 256}}, repeat 2)", ""]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        started = time.monotonic()
        quiet = measure("quiet", backends, Path(tmp) / "quiet.sqlite")
        pinned = measure("quiet-pinned", backends, Path(tmp) / "quiet-pinned.sqlite") \
            if any(p.endswith("pinned") for p in patterns) else None
        runs = {p: measure(p, backends, Path(tmp) / f"{p}.sqlite") for p in patterns}
        runs["quiet again"] = measure("quiet", backends, Path(tmp) / "quiet2.sqlite")

        def quiet_of(name: str) -> Run:
            return pinned if name.endswith("pinned") and pinned is not None else quiet

        reference = figures(quiet)
        summary = ["| pattern | figures | flagged disturbed | clean within 10% of quiet | worst clean ratio | "
                   "backend order agrees | significant leads contradicting quiet |", "|---|---|---|---|---|---|---|"]
        detail = ["| case | " + " | ".join(runs) + " |", "|---|" + "---|" * len(runs)]
        for key, (_, quiet_flag) in reference.items():
            cells = []
            for name, run in runs.items():
                value, flagged = figures(run).get(key, (math.nan, False))
                base = figures(quiet_of(name)).get(key, (math.nan, False))[0]
                cells.append(f"×{value / base:.2f}" + (" disturbed" if flagged else ""))
            detail.append(f"| {key}{' (quiet run disturbed)' if quiet_flag else ''} | " + " | ".join(cells) + " |")
        for name, run in runs.items():
            mine, base = figures(run), figures(quiet_of(name))
            ratios = [(mine[k][0] / base[k][0], mine[k][1]) for k in base if k in mine and not base[k][1]]
            clean = [r for r, flagged in ratios if not flagged]
            within = sum(abs(r - 1) <= 0.10 for r in clean)
            worst = max(clean, key=lambda r: abs(r - 1)) if clean else math.nan
            same, total = order_agreement(quiet_of(name), run)
            bad = contradictions(quiet_of(name), run)
            summary.append(f"| {name} | {len(ratios)} | {sum(f for _, f in ratios)} | {within} of {len(clean)} | "
                           f"×{worst:.2f} | {same} of {total} | {len(bad)}{': ' + '; '.join(bad) if bad else ''} |")
        lines += summary + ["", "Each loaded figure ÷ the quiet figure of the same case:", ""] + detail
        lines += ["", f"took {time.monotonic() - started:.0f} s; reproduce: .venv/bin/python benchmarks/noise.py "
                  f"--backends {args.backends} --patterns {args.patterns}"]
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
