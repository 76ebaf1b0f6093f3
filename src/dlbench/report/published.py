"""The report's section of other published benchmarks beside the report's runs: convnet-benchmarks' CNN table, and
rnn-benchmarks' and DeepBench's LSTM rows beside the LSTM cases of the same batch and hidden size, with today ÷ then
only where a case matches (runs/published.py builds the tables; the figures and their sources are package data)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dlbench.core.tables import Section
from dlbench.report.merge import merge_runs
from dlbench.runs.published import CNN_WORKLOADS, convnet_table, lstm_grid_text, lstm_table

if TYPE_CHECKING:
    from dlbench.core.results import Run
    from dlbench.store import Store

INTRO = ("Figures others published, beside this report's: soumith/convnet-benchmarks (GTX Titan X, Maxwell, 2016), "
         "glample/rnn-benchmarks (the same GPU, 2016) and baidu-research/DeepBench (cuDNN LSTM kernels alone on a "
         "Titan X, Pascal). None was measured here; each table's notes cite the source and say what was timed. A "
         "ratio is shown only where the model, size and precision match and the case ran on a GPU, and even then "
         "it compares two GPU generations as well as two software stacks.")  # fmt: skip


def build(store: Store, runs: list[Run]) -> Section | None:
    run, _ = merge_runs(runs)
    workloads = {r.case.workload for r in run.results}
    if not workloads & {*CNN_WORKLOADS.values(), "lstm"}:
        return None
    tables = [t for t in (convnet_table(run), lstm_table(run)) if t is not None]
    paragraphs = [INTRO]
    if "lstm" in workloads and not any(t.title.startswith("LSTM") for t in tables):
        paragraphs.append("No LSTM case of this report has a published batch and hidden size, so no published LSTM "
                          f"row is set beside it ({lstm_grid_text()}).")  # fmt: skip
    return Section("published", "Beside other published benchmarks", paragraphs, tables, [r.run_id for r in runs])
