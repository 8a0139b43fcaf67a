"""The results history: a local SQLite store of every recorded evaluation.

One row per evaluation (run name, training step, checkpoint, kind, settings JSON, inputs JSON,
git commit, times) and one row per metric (value, CI, repeats). Safe for concurrent writers
(two CI jobs on one machine): WAL journal, a busy timeout, every write in one
`BEGIN IMMEDIATE` transaction, and retries with jittered backoff when the database is locked,
so no row is lost or half-written. WAL needs a local file system (not NFS/SMB).

    from ambient_eval.results.history import record, query
    record("runs/step-10000/results.json", db="hist.sqlite", run="ambient", step=10000)
    rows = query("hist.sqlite", metric="fid")
"""
from __future__ import annotations

import json
import logging
import os
import random
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TypeVar

from ambient_eval.errors import AmbientError
from ambient_eval.results.envelope import Results, load_results, now_iso

log = logging.getLogger(__name__)
T = TypeVar("T")

HISTORY_ENV = "AMBIENT_EVAL_HISTORY"
DEFAULT_DB_NAME = "ambient-eval-history.sqlite"
SCHEMA_VERSION = "1"
_AUTO = object()  # sentinel: detect the git commit


@dataclass(frozen=True)
class StoreDefaults:
    """Concurrency settings of the store."""

    busy_timeout_s: float = 30.0   # SQLite waits this long for a lock before raising "locked"
    retries: int = 50              # extra attempts after a "locked"/"busy" error
    backoff_s: float = 0.02        # first retry delay; doubles up to backoff_max_s, with jitter
    backoff_max_s: float = 1.0     # longest delay between retries


DEFAULTS = StoreDefaults()

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS evaluations (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  recorded TEXT NOT NULL,        -- when it was recorded (UTC ISO 8601)
  created TEXT,                  -- when the results were computed
  run TEXT, step INTEGER, checkpoint TEXT,
  kind TEXT NOT NULL,            -- results kind: fid | memorization | reproducibility
  settings TEXT NOT NULL,        -- JSON
  inputs TEXT NOT NULL,          -- JSON
  git_commit TEXT, tool_version TEXT, source TEXT
);
CREATE TABLE IF NOT EXISTS metrics (
  evaluation_id INTEGER NOT NULL REFERENCES evaluations(id) ON DELETE CASCADE,
  name TEXT NOT NULL, value REAL NOT NULL, ci_lo REAL, ci_hi REAL,
  repeats TEXT,                  -- JSON list or NULL
  PRIMARY KEY (evaluation_id, name)
);
CREATE INDEX IF NOT EXISTS evaluations_run_step ON evaluations (run, step);
"""


@dataclass(frozen=True)
class HistoryRow:
    """One metric of one recorded evaluation."""

    evaluation_id: int
    recorded: str
    created: str | None
    run: str | None
    step: int | None
    checkpoint: str | None
    kind: str
    metric: str                   # address: 'fid' or '<kind>.<name>'
    value: float
    ci_lo: float | None
    ci_hi: float | None
    repeats: list[float] | None
    git_commit: str | None
    settings: dict[str, Any]


def default_db_path() -> Path:
    """$AMBIENT_EVAL_HISTORY, else ./ambient-eval-history.sqlite."""
    return Path(os.environ.get(HISTORY_ENV) or DEFAULT_DB_NAME)


def git_commit(cwd: str | os.PathLike | None = None) -> str | None:
    """`git rev-parse HEAD` in cwd, or None outside a repository / without git."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                             timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    sha = out.stdout.strip()
    return sha if out.returncode == 0 and sha else None


def _is_busy(e: sqlite3.OperationalError) -> bool:
    msg = str(e).lower()
    return "locked" in msg or "busy" in msg


def _with_retries(fn: Callable[[], T], what: str) -> T:
    delay = DEFAULTS.backoff_s
    for attempt in range(DEFAULTS.retries + 1):
        try:
            return fn()
        except sqlite3.OperationalError as e:
            if not _is_busy(e) or attempt == DEFAULTS.retries:
                raise
            log.debug("%s: database busy (%s), retry %d", what, e, attempt + 1)
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, DEFAULTS.backoff_max_s)
    raise AssertionError("unreachable")


def _connect(db: Path, *, read_only: bool = False) -> sqlite3.Connection:
    """Open with WAL, busy timeout, foreign keys. Writers create the schema only in a new or empty file;
    readers open the file read-only (uri mode=ro) and create nothing. A foreign database is refused."""
    try:
        if read_only:
            con = sqlite3.connect(db.absolute().as_uri() + "?mode=ro", uri=True,
                                  timeout=DEFAULTS.busy_timeout_s, isolation_level=None)
        else:
            db.parent.mkdir(parents=True, exist_ok=True)
            con = sqlite3.connect(db, timeout=DEFAULTS.busy_timeout_s, isolation_level=None)
    except (OSError, sqlite3.Error) as e:
        raise AmbientError(f"Cannot open the history database '{db}': {e}. Choose another path with "
                           f"--db or ${HISTORY_ENV}.") from None

    def init() -> None:
        con.execute("PRAGMA foreign_keys=ON")
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        if "meta" in tables and con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone():
            return   # ours: no schema transaction (and no fsync)
        if tables or read_only:
            raise AmbientError(
                f"'{db}' is not an ambient-eval history database (" +
                (f"it holds another program's tables: {', '.join(sorted(tables)[:5])}" if tables else "it is empty") +
                "). ambient-eval writes only into a database it created: pass another --db path.")
        mode = con.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            log.warning("History database '%s' is not in WAL mode (%s); concurrent readers may wait.",
                        db, mode)
        con.execute("BEGIN IMMEDIATE")
        try:
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    con.execute(stmt)
            con.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                        (SCHEMA_VERSION,))
            con.execute("COMMIT")
        except BaseException:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise

    try:
        _with_retries(init, f"open {db}")
    except sqlite3.OperationalError as e:
        con.close()
        if read_only and not _is_busy(e):   # e.g. a WAL file in a read-only folder: read it as immutable
            return _connect_immutable(db)
        raise _damaged(db, e) from None
    except sqlite3.DatabaseError as e:
        con.close()
        raise _damaged(db, e) from None
    except BaseException:
        con.close()
        raise
    return con


def _connect_immutable(db: Path) -> sqlite3.Connection:
    """Read an archived (read-only folder) database without the WAL index SQLite would create."""
    try:
        con = sqlite3.connect(db.absolute().as_uri() + "?mode=ro&immutable=1", uri=True, isolation_level=None)
        con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.Error as e:
        raise _damaged(db, e) from None
    return con


def _damaged(db: Path, e: Exception) -> AmbientError:
    return AmbientError(f"'{db}' is not a usable ambient-eval history database ({e}). Pass another "
                        "--db path; move the file away if it is not yours.")


def check_recordable(results: Results, source: str | None) -> None:
    """AmbientError for NaN/infinite metrics, CIs or repeats (and negative distances): never stored."""
    import math

    from ambient_eval.metrics.stats_checks import check_metrics_finite

    where = f"Cannot record '{source or results.kind + ' results'}'"
    for name, value in results.metrics.items():   # a string "9.5" is not silently dropped
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise AmbientError(f"{where}: metric '{name}' is {value!r}, not a number. Every metric in a "
                               "results.json is a number; re-run the evaluation that wrote it.")
    check_metrics_finite(results.metrics, where)
    for field_name, table in (("ci", results.ci), ("repeats", results.repeats)):
        for name, values in (table or {}).items():
            try:
                bad = any(not math.isfinite(float(v)) for v in values)
            except (TypeError, ValueError):
                bad = True
            if bad:
                raise AmbientError(f"{where}: its {field_name} of '{name}' ({values!r}) holds a value that is "
                                   "not a finite number. Re-run the evaluation that wrote it.")


def record(results: Results | str | os.PathLike, db: str | os.PathLike | None = None, *,
           run: str | None = None, step: int | None = None, checkpoint: str | None = None,
           commit: Any = _AUTO, source: str | None = None) -> int:
    """Store one evaluation (all its metrics, CIs, repeats) in one transaction; returns its id.

    `results` is a Results or the path of a results.json (or its directory). `commit` defaults
    to `git rev-parse HEAD` of the working directory (None outside a repository).
    """
    if not isinstance(results, Results):
        source = source or str(results)
        results = load_results(results)
    if step is not None and (isinstance(step, bool) or not isinstance(step, int) or step < 0):
        raise AmbientError(f"Training step must be a non-negative integer, got {step!r}.")
    check_recordable(results, source)
    sha = git_commit() if commit is _AUTO else commit
    path = Path(db) if db is not None else default_db_path()
    ev = (now_iso(), results.created or None, run, step, checkpoint, results.kind,
          json.dumps(results.settings, sort_keys=True, default=str),
          json.dumps(results.inputs, sort_keys=True, default=str), sha, results.tool_version, source)
    rows = []
    for name, value in results.metrics.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue  # only numbers are metrics; anything else stays in the results file
        ci = results.ci.get(name)
        lo, hi = (float(ci[0]), float(ci[1])) if isinstance(ci, (list, tuple)) and len(ci) == 2 else (None, None)
        reps = results.repeats.get(name)
        rows.append((name, float(value), lo, hi, json.dumps([float(x) for x in reps]) if reps else None))

    con = _connect(path)

    def write() -> int:
        con.execute("BEGIN IMMEDIATE")
        try:
            cur = con.execute("INSERT INTO evaluations (recorded, created, run, step, checkpoint, kind, "
                              "settings, inputs, git_commit, tool_version, source) "
                              "VALUES (?,?,?,?,?,?,?,?,?,?,?)", ev)
            eid = int(cur.lastrowid)
            con.executemany("INSERT INTO metrics (evaluation_id, name, value, ci_lo, ci_hi, repeats) "
                            "VALUES (?,?,?,?,?,?)", [(eid, *r) for r in rows])
            con.execute("COMMIT")
            return eid
        except BaseException:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise

    try:
        return _with_retries(write, f"record into {path}")
    except sqlite3.DatabaseError as e:   # damaged pages found while writing
        raise _damaged(path, e) from None
    finally:
        con.close()


def open_existing(db: str | os.PathLike | None) -> Path:
    """The database path for reading; AmbientError when it does not exist (never creates one)."""
    path = Path(db) if db is not None else default_db_path()
    if not path.is_file():
        raise AmbientError(f"No history database at '{path}'. Record evaluations first with "
                           "`ambient-eval history record RESULTS --run NAME --step N` (or "
                           f"`ambient-eval gate --history DB`), or pass --db / set ${HISTORY_ENV}.")
    return path


def query(db: str | os.PathLike | None = None, *, metric: str | None = None,
          run: str | None = None) -> list[HistoryRow]:
    """Recorded metrics, ordered by run, step, id; filtered by metric address and run name."""
    from ambient_eval.gate.catalog import MetricRef, parse_address

    path = open_existing(db)
    where, args = [], []
    if metric:
        ref = parse_address(metric)
        where += ["e.kind = ?", "m.name = ?"]
        args += [ref.kind, ref.name]
    if run:
        where.append("e.run = ?")
        args.append(run)
    sql = ("SELECT e.id, e.recorded, e.created, e.run, e.step, e.checkpoint, e.kind, m.name, m.value, "
           "m.ci_lo, m.ci_hi, m.repeats, e.git_commit, e.settings FROM evaluations e JOIN metrics m "
           "ON m.evaluation_id = e.id" + (" WHERE " + " AND ".join(where) if where else "") +
           " ORDER BY e.run, e.step, e.id, m.name")
    con = _connect(path, read_only=True)
    try:
        fetched = _with_retries(lambda: con.execute(sql, args).fetchall(), f"read {path}")
    except sqlite3.DatabaseError as e:   # damaged pages found while reading
        raise _damaged(path, e) from None
    finally:
        con.close()
    return [HistoryRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], MetricRef(r[6], r[7]).address, r[8],
                       r[9], r[10], json.loads(r[11]) if r[11] else None, r[12], json.loads(r[13]))
            for r in fetched]


def count_evaluations(db: str | os.PathLike) -> int:
    """Number of recorded evaluations (tests, sanity checks)."""
    con = _connect(open_existing(db), read_only=True)
    try:
        return int(con.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0])
    finally:
        con.close()
