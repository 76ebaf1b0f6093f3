"""How often does `dlbench compare` call identical code different, and how often does it catch a real change?

Synthetic runs (tests/synthetic.py: each case in three processes) of 30 cases, shaped as two runs on this
project's shared VM are (benchmarks/results/seed-cpu-2core-cpu.md): run B moves every case ×0.88, each case a
further `scatter` of its own (sd of the log), processes `between` apart. Per scenario, over `--seeds` pairs:
the share of A/A cases called faster/slower (95% per case), the pairs with any case regression (the comparison as a
whole), and the pairs in which one case made ×0.5 slower is caught as a regression.

    .venv/bin/python benchmarks/compare_calibration.py [--seeds 15]

About 2 s per pair. Nothing is timed: the figures are rates.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import synthetic  # noqa: E402
from dlbench.core.cases import Case  # noqa: E402
from dlbench.core.results import Run  # noqa: E402
from dlbench.report.compare import compare_runs  # noqa: E402

PLAN = [Case("lstm", {"seq_len": 4, "batch": 2, "hidden": h}, "numpy", "fp32", m)
        for h in range(8, 68, 4) for m in ("forward", "train")]  # fmt: skip
SCENARIOS = [(0.10, 0.12), (0.10, 0.05), (0.0, 0.05)]  # (scatter, between): as measured here; scatter > between; none


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=15)
    args = parser.parse_args()
    print("| cases scatter (sd) | processes apart (sd) | A/A cases called different | A/A pairs with a regression "
          "| a ×0.5 case caught |\n|---|---|---|---|---|")
    for scatter, between in SCENARIOS:
        called = regressed = caught = 0
        for seed in range(args.seeds):
            rng = np.random.default_rng(seed)
            moved = {c.key: 0.88 * float(np.exp(rng.normal(0, scatter))) for c in PLAN}
            slowed = {**moved, PLAN[3].key: moved[PLAN[3].key] * 0.5}
            with tempfile.TemporaryDirectory() as folder:

                def run(run_id: str, factors: dict[str, float], seed: int = seed, folder: str = folder,
                        between: float = between) -> Run:  # fmt: skip
                    def outcome(case: Case) -> dict[str, Any]:
                        return {"speed": 100.0 * factors.get(case.key, 1.0), "between": between,
                                "seed": sum(map(ord, run_id)) + seed}  # fmt: skip

                    return synthetic.make_run(Path(folder) / "s.sqlite", PLAN, run_id=run_id, outcome=outcome)

                a = run("a", {})
                same = compare_runs(a, run("b", moved))
                called += sum(row.verdict in ("faster", "slower") for row in same.rows)
                regressed += bool(same.regressions)
                slow = compare_runs(a, run("c", slowed))
                caught += any(row.regression and row.key == PLAN[3].key for row in slow.rows)
        rate, n = called / (args.seeds * len(PLAN)), args.seeds
        print(f"| {scatter:.0%} | {between:.0%} | {rate:.1%} | {regressed} of {n} | {caught} of {n} |")


if __name__ == "__main__":
    main()
