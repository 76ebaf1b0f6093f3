"""First-step phases and cold vs warm starts, with real frameworks on the CPU at a tiny LSTM.

- JAX (in this process): jit's stages are timed apart, fit inside the first step, and the timed steps run the
  executable the first step compiled (nothing compiles again).
- `dlbench compile` end to end (real spawned workers, a real store): PyTensor's warm start, finding the C
  modules its cold start compiled, is many times faster; so is JAX's with its persistent cache; the numpy
  harness backend says it has no persistent cache. PyTensor's cold start compiles C for ~30 s on 2 cores.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from dlbench.cli import main
from dlbench.compile.api import KIND
from dlbench.core.cases import Case, MeasureConfig
from dlbench.store import Store

SIZE = {"seq_len": 5, "batch": 2, "hidden": 8}
HAS_JAX = importlib.util.find_spec("jax") is not None
HAS_PYTENSOR = importlib.util.find_spec("pytensor") is not None


@pytest.mark.skipif(not HAS_JAX, reason="jax is not installed")
def test_jax_times_its_stages_within_the_first_step_and_compiles_once() -> None:
    import jax

    from dlbench.backends.jax.backend import JaxBackend
    from dlbench.runner.worker import run_case
    from dlbench.workloads import get_workload

    result = run_case(Case("lstm", SIZE, "jax", "fp32", "train"), MeasureConfig(0.0, 3, 5.0, warmup_iters=1))
    assert result["status"] == "ok", result.get("error")
    phases = result["first_step_phases"]
    assert list(phases) == ["trace_s", "lower_s", "compile_s", "first_execute_s"]
    assert all(seconds > 0 for seconds in phases.values()), phases
    assert sum(phases.values()) <= result["first_step_s"]
    assert result["compile_cache"] == {}  # JAX's persistent cache is off unless asked for

    # The steps after the first run what the first compiled: JAX reports every backend compile it does.
    compiles: list[float] = []

    def listen(name: str, seconds: float, **_: Any) -> None:
        if name == "/jax/core/compile/backend_compile_duration":
            compiles.append(seconds)

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        workload = get_workload("lstm")
        size = workload.size(SIZE)
        backend = JaxBackend("cpu")
        step = backend.prepare(Case("lstm", size, "jax", "fp32", "forward"), workload, workload.make_weights(size),
                               workload.make_inputs(size))  # fmt: skip
        backend.synchronize(step())
        assert len(compiles) == 1 and backend.first_step_phases()["compile_s"] >= compiles[0]
        for _ in range(3):
            backend.synchronize(step())
        backend.settings()  # reads the compiled HLO back through jit's cache
        assert len(compiles) == 1
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)


def _compile(argv: list[str], capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    assert main(["compile", *argv, "--format", "json"]) == 0
    return list(json.loads(capsys.readouterr().out))


@pytest.mark.skipif(not (HAS_JAX and HAS_PYTENSOR), reason="needs jax and pytensor")
def test_warm_starts_reuse_what_cold_starts_compiled(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "s.sqlite"
    sets = [arg for key, value in SIZE.items() for arg in ("--set", f"{key}={value}")]
    findings = _compile(["lstm", *sets, "--backends", "pytensor,jax,numpy", "--modes", "forward", "--store",
                         str(store), "--cache-root", str(tmp_path / "caches")], capsys)  # fmt: skip
    by_backend = {f["case"]["backend"]: f for f in findings}
    assert set(by_backend) == {"pytensor", "jax", "numpy"}
    for backend in ("pytensor", "jax"):
        finding = by_backend[backend]
        cold, warm = finding["cold"], finding["warm"]
        assert cold["status"] == warm["status"] == "ok", (cold.get("error"), warm.get("error"))
        assert cold["pid"] != warm["pid"]  # two fresh processes
        assert finding["cache"]["files_after_cold"] > 0, finding["cache"]
        assert str(tmp_path / "caches") in finding["cache"]["dir"]
    pytensor_cold, pytensor_warm = by_backend["pytensor"]["cold"], by_backend["pytensor"]["warm"]
    assert set(pytensor_cold["first_step_phases"]) == {"prepare_graph_s", "rewrite_s", "link_s", "first_execute_s"}
    # Measured ~30 s cold vs ~1 s warm on 2 cores: the C modules are compiled once, then loaded.
    assert pytensor_warm["first_step_phases"]["link_s"] * 5 < pytensor_cold["first_step_phases"]["link_s"]
    assert pytensor_warm["first_step_s"] * 3 < pytensor_cold["first_step_s"]
    jax_cold, jax_warm = (by_backend["jax"][start]["first_step_phases"] for start in ("cold", "warm"))
    assert jax_warm["compile_s"] * 2 < jax_cold["compile_s"]  # loaded from the persistent cache
    numpy = by_backend["numpy"]
    assert numpy["cache"] == {} and numpy["warm"]["status"] == "ok"  # no persistent cache: a second cold start
    assert not list((tmp_path / "caches").iterdir())  # the cache folders are removed afterwards

    db = Store(store, create=False)
    (run_id,) = db.run_ids()
    assert set(db.findings(run_id, KIND)) == {f["case_key"] for f in findings}
    assert db.get_run(run_id)["status"] == "complete"
    db.close()
    assert main(["report", "--store", str(store), "--format", "markdown", "--out", "-"]) == 0
    assert "Compile and first step, cold vs warm" in capsys.readouterr().out
