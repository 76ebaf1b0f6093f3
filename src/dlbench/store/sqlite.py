"""SQLite store: one file, a schema version, WAL, each result written (and committed) the moment it arrives.

Tables: `meta` (schema version), `runs` (one row per run: its plan, measurement settings, fingerprint),
`results` (one row per case of a run, UNIQUE(run_id, case_key): a resumed run never duplicates a case),
`attempts` (every process that timed a case: each repetition, each re-measurement of a disturbed window — nothing
is discarded; `results` holds the case's figure built from them), `verifications` (one row per backend × workload ×
precision × device checked before timing), `findings` (what is
measured beside speed — the precision probe matrix, the largest batch that fits, compile phases, usability and
export probes — one row per (run, kind, key), so a probe run is a run like any other: fingerprint, settings, resume).

History: v1 runs/results/verifications; v2 adds findings; v3 adds attempts (an older store is upgraded in place on
open: it only lacks tables).
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from dlbench.core.cases import Case
from dlbench.core.errors import UsageError

SCHEMA_VERSION = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id      TEXT PRIMARY KEY,
    created_at  REAL NOT NULL,
    finished_at REAL,
    status      TEXT NOT NULL,          -- running | complete | interrupted
    suite       TEXT NOT NULL,
    plan        TEXT NOT NULL,          -- JSON list of case dicts, in run order
    settings    TEXT NOT NULL,          -- JSON: measurement config, timeout, cpus, isolation, scaled note, argv
    fingerprint TEXT NOT NULL           -- JSON: the machine and software environment
);
CREATE TABLE IF NOT EXISTS results (
    run_id      TEXT NOT NULL REFERENCES runs(run_id),
    case_key    TEXT NOT NULL,
    seq         INTEGER NOT NULL,       -- position in the run's plan
    status      TEXT NOT NULL,
    recorded_at REAL NOT NULL,
    document    TEXT NOT NULL,          -- JSON: the full result (raw samples, stats, memory, settings, ...)
    PRIMARY KEY (run_id, case_key)
);
CREATE TABLE IF NOT EXISTS attempts (
    run_id      TEXT NOT NULL REFERENCES runs(run_id),
    case_key    TEXT NOT NULL,
    repetition  INTEGER NOT NULL,       -- 1..repeat: which independent process slot
    attempt     INTEGER NOT NULL,       -- 1..retries+1: re-measurements of a disturbed window
    status      TEXT NOT NULL,
    recorded_at REAL NOT NULL,
    document    TEXT NOT NULL,          -- JSON: the worker's raw result, its statistics and the window's verdict
    PRIMARY KEY (run_id, case_key, repetition, attempt)
);
CREATE TABLE IF NOT EXISTS verifications (
    run_id      TEXT NOT NULL REFERENCES runs(run_id),
    group_key   TEXT NOT NULL,          -- backend-workload-precision-device
    document    TEXT NOT NULL,          -- JSON: status, errors per tensor, tolerance, passed
    PRIMARY KEY (run_id, group_key)
);
CREATE TABLE IF NOT EXISTS findings (
    run_id      TEXT NOT NULL REFERENCES runs(run_id),
    kind        TEXT NOT NULL,          -- probe | maxbatch | compile | usability | export | ...
    key         TEXT NOT NULL,          -- unique within (run, kind), e.g. torch-cpu-fp16-conv2d
    recorded_at REAL NOT NULL,
    document    TEXT NOT NULL,          -- JSON: the finding, with the evidence it rests on
    PRIMARY KEY (run_id, kind, key)
);
"""


def default_store_path() -> Path:
    """$DLBENCH_STORE, else $XDG_DATA_HOME/dlbench/results.sqlite (~/.local/share/dlbench/results.sqlite)."""
    env = os.environ.get("DLBENCH_STORE")
    if env:
        return Path(env).expanduser()
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "dlbench" / "results.sqlite"


def _dumps(value: Any) -> str:
    # Strict JSON in the store (NaN/inf become null) so any tool can read it.
    return json.dumps(_finite(value), allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


class Store:
    def __init__(self, path: str | Path, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.exists():
            raise UsageError(f"no store at {str(self.path)!r} (run `dlbench run` first, or pass --store PATH)")
        if self.path.is_dir():
            raise UsageError(f"store path {str(self.path)!r} is a directory; expected an SQLite file")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, timeout=30)
            self.db.execute("PRAGMA journal_mode=WAL")
            self._check_schema()
        except sqlite3.DatabaseError as exc:
            raise UsageError(f"cannot read store {str(self.path)!r}: {exc} (expected a dlbench SQLite file)") from None
        except OSError as exc:
            raise UsageError(f"cannot open store {str(self.path)!r}: {exc.strerror or exc}") from None

    def _check_schema(self) -> None:
        tables = {row[0] for row in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if tables and "meta" not in tables:
            raise UsageError(f"{str(self.path)!r} is an SQLite file but not a dlbench store (tables: {sorted(tables)})")
        with self.db:
            self.db.executescript(_SCHEMA)
            row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None:
                self.db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif int(row[0]) < SCHEMA_VERSION:  # older stores only lack tables the script above just created
                self.db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION),))
            elif int(row[0]) > SCHEMA_VERSION:
                raise UsageError(
                    f"store {str(self.path)!r} has schema version {row[0]}, newer than this dlbench's "
                    f"{SCHEMA_VERSION}: upgrade dlbench"
                )

    def close(self) -> None:
        self.db.close()

    # -- runs ---------------------------------------------------------------------------------------------

    def create_run(
        self, run_id: str, suite: str, plan: list[Case], settings: dict[str, Any], fingerprint: dict[str, Any]
    ) -> None:
        with self.db:
            self.db.execute(
                "INSERT INTO runs (run_id, created_at, status, suite, plan, settings, fingerprint) "
                "VALUES (?, ?, 'running', ?, ?, ?, ?)",
                (run_id, time.time(), suite, _dumps([c.to_dict() for c in plan]), _dumps(settings),
                 _dumps(fingerprint)),
            )  # fmt: skip

    def set_run_status(self, run_id: str, status: str) -> None:
        with self.db:
            self.db.execute(
                "UPDATE runs SET status=?, finished_at=? WHERE run_id=?",
                (status, time.time() if status != "running" else None, run_id),
            )

    def run_ids(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT run_id FROM runs ORDER BY created_at, run_id")]

    def get_run(self, run_id: str | None = None) -> dict[str, Any]:
        """A run's row (plan decoded to Cases); when run_id is None, the latest run that holds results (a probe,
        max-batch or compile run holds findings only: `show` and `report` want the latest measured run), else the
        latest run. UsageError if absent."""
        if run_id is None:
            row = self.db.execute(
                "SELECT * FROM runs r ORDER BY EXISTS (SELECT 1 FROM results WHERE run_id = r.run_id) DESC, "
                "created_at DESC, run_id DESC LIMIT 1"
            ).fetchone()
            if row is None:
                raise UsageError(f"store {str(self.path)!r} holds no runs yet (run `dlbench run` first)")
        else:
            row = self.db.execute("SELECT * FROM runs WHERE run_id=?", (run_id,)).fetchone()
            if row is None:
                known = self.run_ids()[-5:]
                hint = f" (latest: {', '.join(known)})" if known else " (the store holds no runs)"
                raise UsageError(f"unknown run {run_id!r} in {str(self.path)!r}{hint}")
        names = [d[0] for d in self.db.execute("SELECT * FROM runs LIMIT 0").description]
        run = dict(zip(names, row, strict=True))
        for key in ("plan", "settings", "fingerprint"):
            run[key] = json.loads(run[key])
        run["plan"] = [Case.from_dict(c) for c in run["plan"]]
        return run

    # -- results ------------------------------------------------------------------------------------------

    def add_result(self, run_id: str, case: Case, seq: int, document: dict[str, Any]) -> bool:
        """Write one result and commit at once. False (and nothing written) if the case already has one."""
        with self.db:
            cursor = self.db.execute(
                "INSERT OR IGNORE INTO results (run_id, case_key, seq, status, recorded_at, document) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, case.key, seq, document["status"], time.time(), _dumps(document)),
            )
        return cursor.rowcount == 1

    def results(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT document FROM results WHERE run_id=? ORDER BY seq", (run_id,))
        return [json.loads(r[0]) for r in rows]

    def add_attempt(self, run_id: str, case: Case, repetition: int, attempt: int, document: dict[str, Any]) -> bool:
        """Write one process's result for a case and commit at once. False if that slot already has one."""
        with self.db:
            cursor = self.db.execute(
                "INSERT OR IGNORE INTO attempts (run_id, case_key, repetition, attempt, status, recorded_at, document) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (run_id, case.key, repetition, attempt, document["status"], time.time(), _dumps(document)),
            )
        return cursor.rowcount == 1

    def attempts(self, run_id: str) -> dict[str, list[dict[str, Any]]]:
        """case key -> its attempts' documents, by repetition then attempt."""
        out: dict[str, list[dict[str, Any]]] = {}
        rows = self.db.execute("SELECT case_key, document FROM attempts WHERE run_id=? "
                               "ORDER BY case_key, repetition, attempt", (run_id,))  # fmt: skip
        for key, doc in rows:
            out.setdefault(key, []).append(json.loads(doc))
        return out

    def add_verification(self, run_id: str, group_key: str, document: dict[str, Any]) -> None:
        with self.db:
            self.db.execute(
                "INSERT OR IGNORE INTO verifications VALUES (?, ?, ?)", (run_id, group_key, _dumps(document))
            )

    def verifications(self, run_id: str) -> dict[str, dict[str, Any]]:
        rows = self.db.execute("SELECT group_key, document FROM verifications WHERE run_id=?", (run_id,))
        return {key: json.loads(doc) for key, doc in rows}

    def done_keys(self, run_id: str) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT case_key FROM results WHERE run_id=?", (run_id,))}

    # -- findings -----------------------------------------------------------------------------------------

    def add_finding(self, run_id: str, kind: str, key: str, document: dict[str, Any]) -> bool:
        """Write one finding and commit at once. False (and nothing written) if (run, kind, key) already has one."""
        with self.db:
            cursor = self.db.execute(
                "INSERT OR IGNORE INTO findings (run_id, kind, key, recorded_at, document) VALUES (?, ?, ?, ?, ?)",
                (run_id, kind, key, time.time(), _dumps(document)),
            )
        return cursor.rowcount == 1

    def findings(self, run_id: str, kind: str) -> dict[str, dict[str, Any]]:
        """A run's findings of one kind, key -> document, in the order they were recorded."""
        rows = self.db.execute(
            "SELECT key, document FROM findings WHERE run_id=? AND kind=? ORDER BY recorded_at, key", (run_id, kind)
        )
        return {key: json.loads(doc) for key, doc in rows}

    def runs_with_findings(self, run_ids: list[str], kind: str) -> list[str]:
        """Of `run_ids`, those holding findings of `kind`; if none does, the newest run in the store that does; else
        none. What a report's section shows: its own runs' findings, else the latest (and it says which run)."""
        own = [run_id for run_id in run_ids if self.findings(run_id, kind)]
        if own:
            return own
        latest = self.latest_run_with(kind)
        return [latest] if latest else []

    def latest_run_with(self, kind: str) -> str | None:
        """The newest run holding findings of this kind (None if there is none): what a report shows by default."""
        row = self.db.execute(
            "SELECT f.run_id FROM findings f JOIN runs r USING (run_id) WHERE f.kind=? "
            "ORDER BY r.created_at DESC, r.run_id DESC LIMIT 1", (kind,)
        ).fetchone()
        return None if row is None else str(row[0])
