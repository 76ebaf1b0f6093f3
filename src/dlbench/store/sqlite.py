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

import functools
import json
import math
import os
import secrets
import sqlite3
import time
from pathlib import Path
from typing import Any

from dlbench.core.cases import Case
from dlbench.core.errors import UsageError
from dlbench.core.paths import folder_problem

SCHEMA_VERSION = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id      TEXT PRIMARY KEY,
    created_at  REAL NOT NULL,
    finished_at REAL,
    status      TEXT NOT NULL,          -- running | complete | interrupted | failed (a fault ended it)
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


def _tables(db: sqlite3.Connection) -> set[str]:
    return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


@functools.cache
def _expected_columns() -> dict[str, set[str]]:
    """The columns of each table of this schema version, read from _SCHEMA itself (one truth); made once, when a
    store is first opened."""
    memory = sqlite3.connect(":memory:")
    try:
        memory.executescript(_SCHEMA)
        return {table: _columns(memory, table) for table in _tables(memory)}
    finally:
        memory.close()

_REQUIRED = ("meta", "runs", "results")  # every schema version has these; later ones are added on open


class Store:
    """One store file. `readonly` opens it for reading only (the read commands: `show`, `runs`, `report`,
    `compare`): nothing is created, upgraded, switched to WAL or otherwise written, whatever the file holds.
    Otherwise a missing file is created (owner-only, 0600: it holds the host name, argv and environment variables)
    unless `create` is False, and an older store is upgraded in place. Either way a file that is not a dlbench
    store, or is damaged inside, is a UsageError naming it."""

    def __init__(self, path: str | Path, create: bool = True, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        where = str(self.path)[:200]
        try:
            exists = self.path.exists()
            if self.path.is_dir():
                raise UsageError(f"store path {where!r} is a directory; expected an SQLite file")
            if exists and not self.path.is_file() and readonly:
                raise UsageError(f"store path {where!r} is not a regular file; expected an SQLite file")
        except OSError as exc:
            raise UsageError(f"cannot open store {where!r}: {exc.strerror or exc}") from None
        if not exists and (readonly or not create):
            raise UsageError(f"no store at {where!r} (run `dlbench run` first, or pass --store PATH)")
        try:
            if readonly:
                # No -wal file: everything is in the main file, and `immutable` keeps SQLite from creating the
                # -wal/-shm pair a WAL store's reader otherwise makes. With one (a run is writing, or one was
                # killed), read through it: its results are not in the main file yet.
                live = Path(f"{self.path}-wal").exists()
                self.db = sqlite3.connect(f"{self.path.absolute().as_uri()}?mode=ro{'' if live else '&immutable=1'}",
                                          uri=True, timeout=30)  # fmt: skip
            else:
                if not exists:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    try:  # created owner-only before SQLite opens it (SQLite gives its -wal/-shm the same mode)
                        os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
                    except FileExistsError:
                        pass  # another process created it meanwhile: _check_schema copes
                self.db = sqlite3.connect(self.path, timeout=30)
            self.tables = self._check_schema_retrying()
        except sqlite3.DatabaseError as exc:
            raise UsageError(f"cannot read store {where!r}: {exc} (expected a dlbench SQLite file)") from None
        except OSError as exc:
            raise UsageError(f"cannot open store {where!r}: {exc.strerror or exc}") from None
        except BaseException:
            if hasattr(self, "db"):
                self.db.close()
            raise

    @staticmethod
    def check(path: str | Path) -> None:
        """UsageError unless a run could be written at `path`: an existing dlbench store (checked by reading it), or
        no file yet in a folder that exists or can be made and written. Writes nothing: a command calls it before
        it starts any work."""
        path, where = Path(path), str(path)[:200]
        if not str(path).strip():
            raise UsageError("bad store path '': give a file path")
        if len(path.name.encode()) > 255:
            raise UsageError(f"bad store path {where!r}: file name too long")
        try:
            exists = path.exists() or path.is_symlink()
        except OSError as exc:
            raise UsageError(f"cannot create store {where!r}: {exc.strerror or exc}") from None
        if exists:
            Store(path, readonly=True).close()
            return
        problem = folder_problem(path.parent)
        if problem is not None:
            raise UsageError(f"cannot create store {where!r}: {problem}")

    def _check_schema_retrying(self) -> set[str]:
        """_check_schema, again while another process holds the lock: SQLite answers "database is locked" without
        waiting when two connections would deadlock (two creators switching a new file to WAL at once)."""
        deadline = time.monotonic() + 30
        while True:
            try:
                return self._check_schema()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01 + 0.05 * secrets.randbelow(100) / 100)

    def _check_schema(self) -> set[str]:
        """The tables the store has, after checking (and, for writing, creating or upgrading) its schema."""
        where = str(self.path)[:200]
        tables = _tables(self.db)
        if not tables and self.readonly:
            raise UsageError(f"{where!r} holds no dlbench store (an empty SQLite file): run `dlbench run` first")
        if tables and "meta" not in tables:
            raise UsageError(f"{where!r} is an SQLite file but not a dlbench store (tables: {sorted(tables)[:8]})")
        if not self.readonly:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("BEGIN IMMEDIATE")  # one creator at a time; the others then find the schema made
            try:
                tables = _tables(self.db)
                if tables:
                    self._check_version(tables)
                for statement in _SCHEMA.split(";"):  # not executescript(): it would commit the transaction
                    if statement.strip():
                        self.db.execute(statement)
                self.db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                self.db.commit()
            except BaseException:
                self.db.rollback()
                raise
            tables = _tables(self.db)
        else:
            self._check_version(tables)
        expected = _expected_columns()
        for table in tables & set(expected):
            missing = expected[table] - _columns(self.db, table)
            if missing:
                raise UsageError(f"store {where!r} is damaged or not dlbench's: table {table} lacks column(s) "
                                 f"{', '.join(sorted(missing))}")  # fmt: skip
        return tables

    def _check_version(self, tables: set[str]) -> None:
        where = str(self.path)[:200]
        missing = [t for t in _REQUIRED if t not in tables]
        if missing:
            raise UsageError(f"store {where!r} is damaged or not dlbench's: no table {missing[0]}")
        row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        try:
            version = int(row[0]) if row is not None else None
        except (TypeError, ValueError):
            version = None
        if version is None or version < 1:
            shown = "none" if row is None else repr(row[0])[:40]
            raise UsageError(f"store {where!r} is damaged or not dlbench's: schema version {shown} (expected an "
                             f"integer from 1 to {SCHEMA_VERSION})")  # fmt: skip
        if version > SCHEMA_VERSION:
            raise UsageError(f"store {where!r} has schema version {version}, newer than this dlbench's "
                             f"{SCHEMA_VERSION}: upgrade dlbench")  # fmt: skip

    def _loads(self, text: Any, what: str, kind: type = dict) -> Any:
        """A stored JSON value of the expected kind; UsageError naming the store and the row when it is not."""
        try:
            value = json.loads(text)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"store {str(self.path)[:200]!r} is damaged: {what} is not valid JSON ({exc})") from None
        if not isinstance(value, kind):
            raise UsageError(f"store {str(self.path)[:200]!r} is damaged: {what} is not a JSON {kind.__name__}")
        return value

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
            run[key] = self._loads(run[key], f"run {run['run_id']!r}'s {key}", list if key == "plan" else dict)
        try:
            run["plan"] = [Case.from_dict(c) for c in run["plan"]]
        except (AttributeError, KeyError, TypeError, ValueError):
            raise UsageError(f"store {str(self.path)[:200]!r} is damaged: run {run['run_id']!r}'s plan holds a "
                             "malformed case") from None  # fmt: skip
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
        return [self._loads(r[0], f"a result of run {run_id!r}") for r in rows]

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
        if "attempts" not in self.tables:  # an older store, read without upgrading it
            return {}
        out: dict[str, list[dict[str, Any]]] = {}
        rows = self.db.execute("SELECT case_key, document FROM attempts WHERE run_id=? "
                               "ORDER BY case_key, repetition, attempt", (run_id,))  # fmt: skip
        for key, doc in rows:
            out.setdefault(key, []).append(self._loads(doc, f"an attempt of run {run_id!r}"))
        return out

    def add_verification(self, run_id: str, group_key: str, document: dict[str, Any]) -> None:
        with self.db:
            self.db.execute(
                "INSERT OR IGNORE INTO verifications VALUES (?, ?, ?)", (run_id, group_key, _dumps(document))
            )

    def verifications(self, run_id: str) -> dict[str, dict[str, Any]]:
        if "verifications" not in self.tables:  # an older store, read without upgrading it
            return {}
        rows = self.db.execute("SELECT group_key, document FROM verifications WHERE run_id=?", (run_id,))
        return {key: self._loads(doc, f"a verification of run {run_id!r}") for key, doc in rows}

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
        if "findings" not in self.tables:  # an older store, read without upgrading it
            return {}
        rows = self.db.execute(
            "SELECT key, document FROM findings WHERE run_id=? AND kind=? ORDER BY recorded_at, key", (run_id, kind)
        )
        return {key: self._loads(doc, f"a {kind} finding of run {run_id!r}") for key, doc in rows}

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
        if "findings" not in self.tables:  # an older store, read without upgrading it
            return None
        row = self.db.execute(
            "SELECT f.run_id FROM findings f JOIN runs r USING (run_id) WHERE f.kind=? "
            "ORDER BY r.created_at DESC, r.run_id DESC LIMIT 1", (kind,)
        ).fetchone()
        return None if row is None else str(row[0])

    # -- ownership: which process is running a run ---------------------------------------------------------

    def claim_run(self, run_id: str, owner: dict[str, Any], replacing: dict[str, Any] | None = None) -> bool:
        """Record `owner` (a JSON-able identity of the process running the run) in `meta` as `owner:<run_id>`, if
        the run's current owner record is still `replacing` (None: no record): a compare-and-swap in one write
        transaction, so of two processes resuming a run at once only one claims it. False (nothing written) if the
        record changed meanwhile. Whether an owner still lives is the caller's to judge (runner/session.py)."""
        key = f"owner:{run_id}"
        self.db.execute("BEGIN IMMEDIATE")
        try:
            row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
            if (json.loads(row[0]) if row is not None else None) != replacing:
                self.db.rollback()
                return False
            self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, _dumps(owner)))
            self.db.commit()
        except BaseException:
            self.db.rollback()
            raise
        return True

    def owner(self, run_id: str) -> dict[str, Any] | None:
        """The owner record claim_run() wrote for the run; None when no process has claimed it (or it released)."""
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (f"owner:{run_id}",)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def release_run(self, run_id: str) -> None:
        """Forget the run's owner: its session has ended."""
        with self.db:
            self.db.execute("DELETE FROM meta WHERE key=?", (f"owner:{run_id}",))
