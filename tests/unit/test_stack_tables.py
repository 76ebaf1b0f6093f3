"""The run tables of the layer stacks (runs/tables.stack_tables): a table per CNN or transformer workload, a row per
framework × size × precision with both modes' samples/s, memory and FLOP/s; the sizes that vary get columns, the
fixed ones go into the title; a failed case says what happened, in its cell."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dlbench.core.cases import Case  # noqa: E402
from dlbench.runs.tables import seed_tables, stack_tables  # noqa: E402
from synthetic import make_run  # noqa: E402


def test_a_table_per_stack_workload_with_its_varying_sizes(tmp_path: Path) -> None:
    plan = [Case(w, size, b, "fp32", m) for w, sizes in (
                ("googlenet", [{"batch": 2, "image": 64}, {"batch": 4, "image": 64}]),
                ("transformer", [{"batch": 2, "seq_len": 64, "d_model": 64, "heads": 4},
                                 {"batch": 2, "seq_len": 128, "d_model": 64, "heads": 4}]))
            for size in sizes for b in ("torch", "jax") for m in ("forward", "train")]  # fmt: skip
    run = make_run(tmp_path / "s.sqlite", plan,
                   outcome=lambda c: {"status": "oom"} if c.backend == "jax" and c.size["batch"] == 4 else {})
    tables = stack_tables(run)
    assert [t.title.split(":")[0] for t in tables] == ["googlenet (image 64)",
                                                       "transformer (d_model 64, heads 4)"]  # fmt: skip
    googlenet, transformer = tables
    assert googlenet.columns[:3] == ["framework", "precision", "batch size"]
    assert "sequence length" in transformer.columns and "d_model" not in transformer.columns
    assert len(googlenet.rows) == 4 and len(transformer.rows) == 4
    oom = [row for row in googlenet.rows if row[2] == "4" and "JAX" in row[0]]
    assert oom and oom[0][-3] == "out of memory"
    assert all(row[3] not in ("", "—") for row in transformer.rows)  # samples/s in every row
    assert [t.title for t in seed_tables(run)] == [t.title for t in tables]  # no LSTM or VGG-16 results here
