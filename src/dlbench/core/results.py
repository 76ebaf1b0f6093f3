"""What a run returns: `Run` and its `Result`s — plain objects a notebook turns into a pandas DataFrame."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dlbench.core.cases import Case


@dataclass(frozen=True)
class Result:
    """One case's outcome. `document` is the full stored record (raw samples, stats, memory, settings, ...)."""

    case: Case
    status: str
    document: dict[str, Any] = field(repr=False)

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> Result:
        return cls(Case.from_dict(document["case"]), document["status"], document)

    @property
    def error(self) -> str | None:
        return self.document.get("error")

    @property
    def samples_s(self) -> list[float]:
        """Every timed iteration, in seconds, in the order measured."""
        return list(self.document.get("samples_s") or [])

    @property
    def stats(self) -> dict[str, Any]:
        return dict(self.document.get("stats") or {})

    @property
    def samples_per_s(self) -> float | None:
        return self.stats.get("samples_per_s")

    @property
    def first_step_s(self) -> float | None:
        return self.document.get("first_step_s")

    @property
    def memory(self) -> dict[str, Any]:
        return dict(self.document.get("memory") or {})

    @property
    def flags(self) -> list[str]:
        """What a reader must know of the figure: `disturbed`, `few-iterations`, `unwatched` (runner/attempts.py)."""
        return list(self.document.get("flags") or [])

    @property
    def repetitions(self) -> list[list[float]]:
        """Each independent process's timed iterations (one list for a result from a single process)."""
        reps = self.document.get("repetitions")
        if reps:
            return [list(r.get("samples_s") or []) for r in reps]
        return [self.samples_s] if self.samples_s else []

    @property
    def rankable(self) -> bool:
        """Measured, and not disturbed: a figure that may be ranked."""
        return self.status == "ok" and bool(self.samples_s) and "disturbed" not in self.flags

    def untestable_reason(self) -> str:
        """Why this figure may not back a significance claim ("" when it may): it must be rankable, come from two
        or more independent processes, each with at least the run's min_iters timed iterations."""
        if not self.rankable:
            return "disturbed" if "disturbed" in self.flags else "not measured"
        if "few-iterations" in self.flags:
            return "fewer timed iterations than min_iters"
        if len(self.repetitions) < 2:
            return "one process per case (run with --repeat 2 or more to test)"
        return ""

    def to_record(self) -> dict[str, Any]:
        """A flat row: case fields, status, the main statistics and memory figures."""
        stats, memory = self.stats, self.memory
        record: dict[str, Any] = {
            "workload": self.case.workload, **self.case.size, "backend": self.case.backend, "env": self.case.env,
            "precision": self.case.precision, "mode": self.case.mode, "device": self.case.device,
            "status": self.status, "error": self.error,
        }  # fmt: skip
        for key in ("samples_per_s", "median_s", "iqr_s", "mean_s", "stdev_s", "ci95_low_s", "ci95_high_s", "n"):
            record[key] = stats.get(key)
        record["repetitions"], record["flags"] = len(self.repetitions), ",".join(self.flags)
        record["first_step_s"] = self.first_step_s
        for key, value in memory.items():
            if key.endswith("_bytes") or isinstance(value, int):
                record[f"memory.{key}"] = value
        record["framework_version"] = next(iter((self.document.get("versions") or {}).values()), None)
        return record


@dataclass
class Run:
    run_id: str
    suite: str
    status: str  # running | complete | interrupted | failed (a fault of the store or the workers ended it)
    plan: list[Case]
    results: list[Result]
    settings: dict[str, Any]
    fingerprint: dict[str, Any]
    store_path: str

    @property
    def missing(self) -> list[Case]:
        """Planned cases with no result yet (an interrupted run): `dlbench run --resume` measures these."""
        done = {r.case.key for r in self.results}
        return [c for c in self.plan if c.key not in done]

    def to_records(self) -> list[dict[str, Any]]:
        return [{"run_id": self.run_id, **r.to_record()} for r in self.results]

    def to_dataframe(self) -> Any:
        """The results as a pandas DataFrame (pandas is optional: `pip install 'dlbench[pandas]'`)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("to_dataframe() needs pandas: pip install 'dlbench[pandas]'") from None
        return pd.DataFrame.from_records(self.to_records())
