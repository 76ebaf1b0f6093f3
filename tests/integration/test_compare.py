"""`dlbench compare` on real runs: the numpy backend in real worker processes, slowed down for real by its
`sleep_s` option (every step sleeps), each case in three independent processes. Two runs of the same suite agree
(the A/A check on real workers: no regression, at most one of six cases called different); a run whose steps
take twice as long in every case is a run-wide shift near ×0.5, beyond what the machine moves a whole run by
(--drift): a regression of the whole run."""

from __future__ import annotations

from pathlib import Path

import pytest

import dlbench
from dlbench.cli import main
from dlbench.report.compare import compare_runs

# Tiny LSTM cases whose step is dominated by the sleep (~0.1 ms of math against 10 or 20 ms of sleep), timed in
# three processes each: the comparison's interval comes from the spread between them.
SUITE = """
description = "compare: sleep-dominated numpy cases"
device = "cpu"
timeout_s = 60
[measure]
min_time_s = 0.15
min_iters = 10
max_time_s = 0.5
warmup_iters = 1
repeat = 3
[[experiments]]
workload = "lstm"
precisions = ["fp32"]
modes = ["forward", "train"]
[experiments.sizes]
seq_len = [4]
batch = [2]
hidden = [8, 16, 32]
"""


@pytest.mark.slow
def test_same_suite_agrees_and_a_twofold_slowdown_is_flagged(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    suite, store = tmp_path / "sleepy.toml", tmp_path / "s.sqlite"
    suite.write_text(SUITE)

    def measure(sleep_s: float) -> dlbench.Run:
        return dlbench.run(str(suite), backends=["numpy"], store=store, options={"sleep_s": sleep_s})

    a, again, slow = measure(0.01), measure(0.01), measure(0.02)
    results = [r for run in (a, again, slow) for r in run.results]
    assert all(r.status == "ok" and min(r.stats["n_per_repetition"]) >= 10 for r in results)

    # A load spike on a busy machine can slow one case of one run for real: allow one such case, no more.
    same = compare_runs(a, again, threshold=0.05)
    verdicts = [row.verdict for row in same.rows]
    assert len(verdicts) == 6 and verdicts.count("no significant difference") >= 4, verdicts
    assert len(same.regressions) <= 1, [(row.key, row.ratio) for row in same.regressions]

    slower = compare_runs(a, slow, threshold=0.05)
    assert slower.shift is not None and 0.4 < slower.shift.value < 0.6 and slower.regressed
    for row in slower.rows:
        assert row.ratio is not None and 0.4 < row.ratio.value < 0.6
        assert row.note.startswith("options differ: sleep_s=0.01 → 0.02")

    args = ["--store", str(store), "--fail-on-regression"]
    assert main(["compare", a.run_id, again.run_id, *args]) == (1 if same.regressed else 0)
    assert main(["compare", a.run_id, slow.run_id, *args]) == 1
    assert "a REGRESSION of every case" in capsys.readouterr().out
