"""Blocks of steps between synchronisations (MeasureConfig.block_min_s) through a real worker: the result records
how many steps each sample covers, and the figure agrees with one-step-per-clock-read timing of the same case
(on a CPU, where synchronising costs nothing, the two must agree)."""

from __future__ import annotations

from pathlib import Path

import dlbench

SIZES = {"seq_len": [5], "batch": [4], "hidden": [32]}
MEASURE = {"min_time_s": 0.2, "max_time_s": 1.0, "min_iters": 10, "retries": 0, "repeat": 1}


def test_a_blocked_case_records_its_block_and_agrees_with_single_steps(store_path: Path) -> None:
    options = {"sleep_s": 0.002}  # a step of ~2 ms, dominated by a sleep: the same on every clock read
    single = dlbench.run("lstm", sets=SIZES, backends=["numpy"], modes=["forward"], store=store_path,
                         measure=MEASURE, options=options, verify=False)  # fmt: skip
    blocked = dlbench.run("lstm", sets=SIZES, backends=["numpy"], modes=["forward"], store=store_path,
                          measure={**MEASURE, "block_min_s": 0.02}, options=options, verify=False)  # fmt: skip
    (one,), (many,) = single.results, blocked.results
    assert one.document["block_steps"] == 1 and 5 <= many.document["block_steps"] <= 10
    assert abs(many.stats["median_s"] / one.stats["median_s"] - 1) < 0.25
