"""`dlbench.plan(...)`: a run's typed plan, validated before anything is written, the same cases as plan_cases and
the settings document a run has always stored; and `plan(resume=...)`, which reads a stored run's settings back,
typed, with only its missing cases left to measure."""

from __future__ import annotations

from pathlib import Path

import pytest

import dlbench
from dlbench.core.cases import MeasureConfig
from dlbench.runner.session import Placement
from dlbench.runs.api import RunSettings
from dlbench.store import Store

# The keys of a run's stored settings (runs written before this API have them too).
SETTINGS_KEYS = {"measure", "timeout_s", "cpus", "isolation", "verify", "note", "description", "argv",
                 "memory_limit_bytes", "interpreters", "device_memory_bytes", "emulate"}  # fmt: skip


def test_a_plan_holds_the_cases_and_the_settings_a_run_stores(tmp_path: Path) -> None:
    plan = dlbench.plan("quick", backends=["numpy"], isolation="spawn", memory_limit="1GiB", store=tmp_path / "s")
    _, cases = dlbench.plan_cases("quick", backends=["numpy"])
    assert plan.cases == cases and plan.remaining == cases and plan.resume is None
    assert isinstance(plan.settings.measure, MeasureConfig) and plan.settings.placement.isolation == "spawn"
    assert plan.settings.placement.memory_limit == 2**30
    assert set(plan.settings.to_dict()) == SETTINGS_KEYS
    assert not (tmp_path / "s").exists()  # planning writes nothing


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"isolation": "thread"}, "unknown isolation 'thread'"),
    ({"memory_limit": "4 parsecs"}, "bad --memory-limit"),
    ({"timeout_s": 0}, "bad timeout 0"),
    ({"measure": {"min_time_s": 2, "max_time_s": 1}}, "max_time_s=1 < min_time_s=2"),
])  # fmt: skip
def test_plan_refuses_mistakes_before_anything_starts(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(dlbench.UsageError, match=message):
        dlbench.plan("quick", backends=["numpy"], **kwargs)  # type: ignore[arg-type]


def test_settings_read_back_typed_and_old_stores_get_the_old_defaults() -> None:
    settings = RunSettings(MeasureConfig(min_time_s=0.1), 30.0, False, Placement([0], "spawn", 2**20, {}), "n", "d")
    assert RunSettings.from_dict(settings.to_dict()) == settings
    old = RunSettings.from_dict({"measure": MeasureConfig().to_dict(), "timeout_s": 60})  # before isolation, verify
    assert old.verify is True and old.placement == Placement() and old.note == ""


def test_resume_plans_only_the_missing_cases_with_the_stored_settings(tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite"
    first = dlbench.plan("quick", backends=["numpy"], timeout_s=42, store=store)
    db = Store(store)
    db.create_run("r1", first.suite, first.cases, first.settings.to_dict(), {})
    db.add_result("r1", first.cases[0], 0, {"status": "ok"})
    db.close()
    resumed = dlbench.plan(resume="r1", store=store, timeout_s=7)
    assert resumed.resume == "r1" and resumed.cases == first.cases and resumed.remaining == first.cases[1:]
    assert resumed.settings.timeout_s == 7  # what --resume may change; the rest as stored
    assert resumed.settings.measure == first.settings.measure
    with pytest.raises(dlbench.UsageError, match="drop --backends"):
        dlbench.plan(resume="r1", store=store, backends=["torch"])
