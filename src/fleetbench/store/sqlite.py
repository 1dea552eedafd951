"""The SQLite results store: batches, runs, attempts and one row per sample.

Durability: WAL mode and one transaction per sample, so a ``kill -9`` of any process
at any moment loses no committed sample; ``(run_id, round, sample_index)`` is the
primary key, so a sample can never be stored twice. A round is one measurement of the
run's samples: ``--repeat K`` stores rounds 1..K, a schedule adds one per tick.
Several processes (the batch and its run workers) write to the same file; SQLite's
locking and ``busy_timeout`` serialise them.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fleetbench.errors import StoreError
from fleetbench.store.migrations import MIGRATIONS
from fleetbench.store.rows import SAMPLE_FIELDS, SampleRow

DB_NAME = "fleetbench.db"

# Statuses of runs, attempts and batches.
#
# * pending: registered, not started; running: in progress (or, with no batch holding
#   the output lock, left by a killed process until the next batch marks it
#   interrupted).
# * completed: every planned sample is stored and the failed share is within the plan's
#   ``max_failed_share``; completed_with_errors: every sample is stored but more failed
#   than that; failed: every sample failed, or the attempt did not get through them
#   (worker error, timeout). A run's status follows from its stored samples once all
#   are stored (runner/outcome.py).
# * interrupted: stopped by Ctrl-C/SIGTERM, or found ``running`` by a later batch after
#   a ``kill -9``; re-running the plan resumes it.
PENDING, RUNNING, COMPLETED, COMPLETED_WITH_ERRORS, FAILED, INTERRUPTED = (
    "pending",
    "running",
    "completed",
    "completed_with_errors",
    "failed",
    "interrupted",
)


# Every column a sample row names, plus the time the store stamps on it.
_SAMPLE_COLUMNS = (*SAMPLE_FIELDS, "created_at")
# Columns the store derives from a row (no writer states them): the category its input
# names (migration 013; NULL when it names none or is not a JSON object).
_DERIVED = {
    "category": "CASE WHEN json_valid(:input_json) THEN json_extract(:input_json, '$.category') END"
}
_INSERT_SAMPLE = (
    f"INSERT OR IGNORE INTO samples ({', '.join((*_SAMPLE_COLUMNS, *_DERIVED))}) "
    f"VALUES ({', '.join([*(':' + c for c in _SAMPLE_COLUMNS), *_DERIVED.values()])})"
)


def _now() -> float:
    return time.time()


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(path, timeout=60.0, isolation_level=None)
            self.conn.row_factory = sqlite3.Row
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path}: cannot open results store: {exc}") from None

    @classmethod
    def in_dir(cls, output: Path) -> Store:
        return cls(output / DB_NAME)

    @classmethod
    def read_only(cls, path: Path, timeout: float = 0.5) -> Store:
        """A reader that can never write (the dashboard): ``mode=ro``, no migration,
        a short busy timeout. In WAL mode it neither blocks nor waits for a writer;
        a store that needs a migration is read as it is (columns a query names that a
        newer schema added are then missing, and that query fails as it would anyway)."""
        store = cls.__new__(cls)
        store.path = path
        try:
            conn = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=timeout,
                isolation_level=None, check_same_thread=False,
            )  # fmt: skip
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA query_only=ON")
            conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path}: cannot open results store: {exc}") from None
        store.conn = conn
        return store

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # -- schema -----------------------------------------------------------------------
    def _migrate(self) -> None:
        with self.transaction() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(name TEXT PRIMARY KEY, applied_at REAL NOT NULL)"
            )
            applied = {r[0] for r in db.execute("SELECT name FROM schema_migrations")}
            known = {name for name, _ in MIGRATIONS}
            unknown = applied - known
            if unknown:
                raise StoreError(
                    f"{self.path}: written by a newer fleetbench (migrations "
                    f"{', '.join(sorted(unknown))}); upgrade fleetbench or use another --output"
                )
            for name, sql in MIGRATIONS:
                if name in applied:
                    continue
                for statement in filter(str.strip, sql.split(";")):
                    db.execute(statement)
                db.execute("INSERT INTO schema_migrations VALUES (?, ?)", (name, _now()))

    def schema_version(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT name FROM schema_migrations ORDER BY name")]

    # -- batches ----------------------------------------------------------------------
    def begin_batch(
        self, batch_id: str, plan_name: str, source: str, plan: Any, options: Any, host: Any
    ) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO batches VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?)",
                (
                    batch_id,
                    plan_name,
                    source,
                    _dumps(plan),
                    _dumps(options),
                    _dumps(host),
                    _now(),
                    RUNNING,
                ),
            )

    def finish_batch(self, batch_id: str, status: str) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE batches SET finished_at = ?, status = ? WHERE batch_id = ?",
                (_now(), status, batch_id),
            )

    def batches(self) -> list[sqlite3.Row]:
        """Every batch, oldest first."""
        return self.conn.execute("SELECT * FROM batches ORDER BY started_at, rowid").fetchall()

    def batch_run_ids(self, batch_id: str) -> list[str]:
        """The runs a batch registered or attempted (for batches stored before their
        options listed them)."""
        rows = self.conn.execute(
            "SELECT run_id FROM runs WHERE batch_id = ? UNION "
            "SELECT run_id FROM attempts WHERE batch_id = ?",
            (batch_id, batch_id),
        )
        return sorted(r[0] for r in rows)

    # -- runs -------------------------------------------------------------------------
    def upsert_run(self, run: dict[str, Any], batch_id: str, planned_samples: int) -> None:
        """Register a run of this batch; an existing run keeps its samples and history.

        The stored config is refreshed every time: settings that do not change the run's
        identity (energy: carbon region and intensity, stars reference) take the values
        of the latest plan that selected the run, so its outputs show the current ones.
        """
        now = _now()
        with self.transaction() as db:
            row = db.execute(
                "SELECT status FROM runs WHERE run_id = ?", (run["run_id"],)
            ).fetchone()
            if row is None:
                seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM runs").fetchone()[0]
                db.execute(
                    "INSERT INTO runs (run_id, seq, batch_id, model_name, model_class, task, "
                    "reasoning_state, backend, settings_label, config_json, planned_samples, "
                    "status, error_message, created_at, updated_at, settings_at) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,NULL,?,?,?)",
                    (
                        run["run_id"],
                        seq,
                        batch_id,
                        run["model_name"],
                        run["model_class"],
                        run["task"],
                        run["reasoning_state"],
                        run["backend"],
                        run["settings_label"],
                        _dumps(run["config"]),
                        planned_samples,
                        PENDING,
                        now,
                        now,
                        now,
                    ),
                )
            else:
                db.execute(
                    "UPDATE runs SET batch_id = ?, planned_samples = ?, config_json = ?, "
                    "settings_at = ?, updated_at = ? WHERE run_id = ?",
                    (batch_id, planned_samples, _dumps(run["config"]), now, now, run["run_id"]),
                )

    def set_run_energy(self, run_id: str, energy: dict[str, Any]) -> bool:
        """Replace a stored run's energy settings (``fleetbench report --plan``); False if
        the run is not stored. Its timestamp (``updated_at``) is left alone."""
        with self.transaction() as db:
            row = db.execute("SELECT config_json FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is None:
                return False
            config = json.loads(row[0])
            config["energy"] = energy
            db.execute(
                "UPDATE runs SET config_json = ?, settings_at = ? WHERE run_id = ?",
                (_dumps(config), _now(), run_id),
            )
        return True

    def set_run_status(self, run_id: str, status: str, error: str | None = None) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET status = ?, error_message = ?, updated_at = ? WHERE run_id = ?",
                (status, error, _now(), run_id),
            )

    def get_run(self, run_id: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.conn.execute(
            "SELECT * FROM runs WHERE run_id = ?", (run_id,)
        ).fetchone()
        return row

    def runs(self, run_ids: Iterable[str] | None = None) -> list[sqlite3.Row]:
        rows = self.conn.execute("SELECT * FROM runs ORDER BY seq").fetchall()
        if run_ids is None:
            return rows
        wanted = set(run_ids)
        return [r for r in rows if r["run_id"] in wanted]

    def done_indices(self, run_id: str, round: int = 1) -> set[int]:
        """The indices of the run's samples stored in ``round``."""
        rows = self.conn.execute(
            "SELECT sample_index FROM samples WHERE run_id = ? AND round = ?", (run_id, round)
        )
        return {r[0] for r in rows}

    def done_keys(self, run_id: str) -> set[tuple[int, int]]:
        """(round, sample index) of every stored sample of the run."""
        rows = self.conn.execute(
            "SELECT round, sample_index FROM samples WHERE run_id = ?", (run_id,)
        )
        return {(r[0], r[1]) for r in rows}

    def count_stored(self, run_id: str, rounds: Iterable[int], below: int) -> int:
        """Stored samples of the run in these rounds with an index below ``below``."""
        wanted = sorted(set(rounds))
        marks = ", ".join("?" * len(wanted))
        return int(
            self.conn.execute(
                f"SELECT COUNT(*) FROM samples WHERE run_id = ? AND sample_index < ? "
                f"AND round IN ({marks})",
                (run_id, below, *wanted),
            ).fetchone()[0]
        )

    def last_round(self, run_id: str) -> int | None:
        """The run's highest stored round (None: nothing stored)."""
        row = self.conn.execute(
            "SELECT MAX(round) FROM samples WHERE run_id = ?", (run_id,)
        ).fetchone()
        return None if row[0] is None else int(row[0])

    def sample_errors(self, run_id: str, below: int) -> list[str | None]:
        """The ``error`` of each stored sample of the current plan, every round (None: it
        succeeded): a run's status covers all its rounds."""
        rows = self.conn.execute(
            "SELECT error FROM samples WHERE run_id = ? AND sample_index < ?", (run_id, below)
        )
        return [r[0] for r in rows]

    def delete_results(self, run_ids: Iterable[str]) -> None:
        """``--fresh``: forget earlier samples and attempts of these runs, atomically."""
        with self.transaction() as db:
            for run_id in run_ids:
                db.execute("DELETE FROM samples WHERE run_id = ?", (run_id,))
                db.execute("DELETE FROM attempts WHERE run_id = ?", (run_id,))
                db.execute(
                    "UPDATE runs SET status = ?, error_message = NULL, updated_at = ? "
                    "WHERE run_id = ?",
                    (PENDING, _now(), run_id),
                )

    # -- attempts ---------------------------------------------------------------------
    def start_attempt(
        self, run_id: str, batch_id: str, host: Any, rounds: list[int] | None = None
    ) -> int:
        """Record a new attempt at the run (measuring ``rounds``, default [1])."""
        now = _now()
        with self.transaction() as db:
            attempt = db.execute(
                "SELECT COALESCE(MAX(attempt), 0) + 1 FROM attempts WHERE run_id = ?", (run_id,)
            ).fetchone()[0]
            db.execute(
                "INSERT INTO attempts (run_id, attempt, batch_id, started_at, last_seen_at, "
                "status, host_json, rounds) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, attempt, batch_id, now, now, RUNNING, _dumps(host), _dumps(rounds or [1])),
            )
            db.execute(
                "UPDATE runs SET status = ?, error_message = NULL, updated_at = ? WHERE run_id = ?",
                (RUNNING, now, run_id),
            )
        return int(attempt)

    def update_attempt(self, run_id: str, attempt: int, **fields: Any) -> None:
        allowed = {
            "load_time_s",
            "peak_rss_mb",
            "details_json",
            "last_seen_at",
            "startup_s",
            "energy_json",
            "slot",
            "cuda_visible_devices",
            "shared_device",
        }
        if not fields.keys() <= allowed:
            raise ValueError(f"cannot update {sorted(fields.keys() - allowed)}")
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self.transaction() as db:
            db.execute(
                f"UPDATE attempts SET {sets} WHERE run_id = ? AND attempt = ?",
                (*fields.values(), run_id, attempt),
            )

    def finish_attempt(self, run_id: str, attempt: int, status: str, error: str | None) -> None:
        now = _now()
        with self.transaction() as db:
            db.execute(
                "UPDATE attempts SET finished_at = ?, last_seen_at = ?, status = ?, "
                "error_message = ? WHERE run_id = ? AND attempt = ?",
                (now, now, status, error, run_id, attempt),
            )
            db.execute(
                "UPDATE runs SET status = ?, error_message = ?, updated_at = ? WHERE run_id = ?",
                (status, error, now, run_id),
            )

    def interrupt_running(self, batch_id: str, reason: str) -> None:
        """Ctrl-C/SIGTERM: this batch's attempts and runs still ``running`` end now."""
        now = _now()
        with self.transaction() as db:
            db.execute(
                "UPDATE attempts SET status = ?, finished_at = ?, last_seen_at = ?, "
                "error_message = ? WHERE batch_id = ? AND status = ?",
                (INTERRUPTED, now, now, reason, batch_id, RUNNING),
            )
            db.execute(
                "UPDATE runs SET status = ?, error_message = ?, updated_at = ? "
                "WHERE batch_id = ? AND status = ?",
                (INTERRUPTED, reason, now, batch_id, RUNNING),
            )

    def interrupt_dead(self) -> int:
        """Mark what a killed batch left ``running`` as ``interrupted``; the number of
        attempts so marked.

        Call it only while holding the output lock: then no batch is alive here, and
        every worker died with its batch, so nothing ``running`` is. A dead attempt ends
        at its last heartbeat (``last_seen_at``), its batch at its last attempt's.
        """
        now = _now()
        with self.transaction() as db:
            dead = db.execute(
                "SELECT run_id, attempt, last_seen_at FROM attempts WHERE status = ?", (RUNNING,)
            ).fetchall()
            for a in dead:
                db.execute(
                    "UPDATE attempts SET status = ?, finished_at = last_seen_at, "
                    "error_message = ? WHERE run_id = ? AND attempt = ?",
                    (INTERRUPTED, _gone(a["last_seen_at"]), a["run_id"], a["attempt"]),
                )
            for r in db.execute(
                "SELECT run_id, (SELECT MAX(last_seen_at) FROM attempts a "
                "WHERE a.run_id = runs.run_id) AS seen FROM runs WHERE status = ?",
                (RUNNING,),
            ).fetchall():
                db.execute(
                    "UPDATE runs SET status = ?, error_message = ?, updated_at = ? "
                    "WHERE run_id = ?",
                    (INTERRUPTED, _gone(r["seen"]) + "; re-run to resume", now, r["run_id"]),
                )
            db.execute(
                "UPDATE batches SET status = ?, finished_at = COALESCE((SELECT "
                "MAX(last_seen_at) FROM attempts a WHERE a.batch_id = batches.batch_id), "
                "started_at) WHERE status = ?",
                (INTERRUPTED, RUNNING),
            )
        return len(dead)

    def attempts(self, run_id: str) -> list[sqlite3.Row]:
        return self.conn.execute(
            "SELECT * FROM attempts WHERE run_id = ? ORDER BY attempt", (run_id,)
        ).fetchall()

    def attempt_outcomes(self, run_id: str) -> list[sqlite3.Row]:
        """``attempts`` but only each one's number, status, start and error: a run of 100
        rounds has 100 attempts, each with its host, load and energy records (the
        report page's run details: 0.18-0.26 s at 1,000 runs, 0.07 s so)."""
        return self.conn.execute(
            "SELECT attempt, status, started_at, error_message FROM attempts WHERE run_id = ? "
            "ORDER BY attempt",
            (run_id,),
        ).fetchall()

    # -- samples ----------------------------------------------------------------------
    def add_sample(self, row: SampleRow) -> bool:
        """Store one sample and mark its attempt alive, in one transaction.

        Returns False (and stores nothing) if the sample is already stored.
        """
        now = _now()
        with self.transaction() as db:
            cur = db.execute(_INSERT_SAMPLE, {**row.values(), "created_at": now})
            db.execute(
                "UPDATE attempts SET last_seen_at = ? WHERE run_id = ? AND attempt = ?",
                (now, row.run_id, row.attempt),
            )
        return cur.rowcount == 1

    def add_samples(self, rows: Iterable[SampleRow]) -> int:
        """Store many samples in one transaction (ensembles, imports, synthetic stores);
        those already stored are kept. The number stored."""
        now = _now()
        with self.transaction() as db:
            cur = db.executemany(
                _INSERT_SAMPLE, ({**row.values(), "created_at": now} for row in rows)
            )
        return int(cur.rowcount)

    def samples(
        self,
        run_id: str,
        below: int | None = None,
        round: int | None = None,
        limit: int | None = None,
    ) -> list[sqlite3.Row]:
        """The run's samples in (round, index) order; ``below`` keeps those of the current
        plan, ``round`` those of one round (None: every round), ``limit`` the first ones."""
        end = below if below is not None else 2**62
        rows = -1 if limit is None else limit
        if round is None:
            return self.conn.execute(
                "SELECT * FROM samples WHERE run_id = ? AND sample_index < ? "
                "ORDER BY round, sample_index LIMIT ?",
                (run_id, end, rows),
            ).fetchall()
        return self.conn.execute(
            "SELECT * FROM samples WHERE run_id = ? AND round = ? AND sample_index < ? "
            "ORDER BY sample_index LIMIT ?",
            (run_id, round, end, rows),
        ).fetchall()


def _gone(last_seen: float | None) -> str:
    when = "never" if last_seen is None else _iso(last_seen)
    return f"interrupted: its batch ended without finishing it (last seen {when})"


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
