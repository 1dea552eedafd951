"""Schedules and their ticks in the store: what makes a schedule survive restarts.

A schedule is keyed by its plan and cadence, so the same ``fleetbench schedule``
command started again finds it, with its original start (ticks stay on the grid
measured from it). Every tick the scheduler has dealt with has a row, in tick order:

* ``running``: its round is being measured (or its scheduler died; the next one
  resumes the same round, so no round is lost or duplicated);
* ``done`` / ``failed``: its round ran (failed: some run of it did not complete);
* ``missed``: it came due while no scheduler was running;
* ``skipped``: it came due while the previous round was still running (``reason``).

Rounds are numbered per output folder: a tick's round is one more than every round
stored or claimed so far, claimed in the same transaction as the tick's row.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from fleetbench.store.sqlite import Store

ACTIVE, FINISHED = "active", "finished"
TICK_RUNNING, TICK_DONE, TICK_FAILED, TICK_MISSED, TICK_SKIPPED = (
    "running",
    "done",
    "failed",
    "missed",
    "skipped",
)
RAN = (TICK_DONE, TICK_FAILED)


@dataclass(frozen=True)
class ScheduleRow:
    schedule_id: str
    plan_source: str
    cadence: str
    spec: dict[str, Any]
    start_at: float
    status: str

    @classmethod
    def from_db(cls, row: sqlite3.Row) -> ScheduleRow:
        return cls(
            schedule_id=row["schedule_id"],
            plan_source=row["plan_source"],
            cadence=row["cadence"],
            spec=json.loads(row["spec_json"]),
            start_at=float(row["start_at"]),
            status=row["status"],
        )


def open_schedule(
    store: Store, schedule_id: str, plan_source: str, cadence: str, spec: dict[str, Any],
    start_at: float,
) -> tuple[ScheduleRow, bool]:  # fmt: skip
    """The stored schedule (its spec refreshed to the latest command's) or a new one
    starting at ``start_at``; True when it already existed."""
    now = time.time()
    with store.transaction() as db:
        row = db.execute("SELECT * FROM schedules WHERE schedule_id = ?", (schedule_id,)).fetchone()
        if row is None:
            db.execute(
                "INSERT INTO schedules VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (schedule_id, plan_source, cadence, json.dumps(spec), start_at, now, now, ACTIVE),
            )
        else:
            db.execute(
                "UPDATE schedules SET spec_json = ?, updated_at = ?, status = ? "
                "WHERE schedule_id = ?",
                (json.dumps(spec), now, ACTIVE, schedule_id),
            )
        fresh = db.execute(
            "SELECT * FROM schedules WHERE schedule_id = ?", (schedule_id,)
        ).fetchone()
    return ScheduleRow.from_db(fresh), row is not None


def schedules(store: Store) -> list[ScheduleRow]:
    rows = store.conn.execute("SELECT * FROM schedules ORDER BY created_at").fetchall()
    return [ScheduleRow.from_db(r) for r in rows]


def finish_schedule(store: Store, schedule_id: str) -> None:
    with store.transaction() as db:
        db.execute(
            "UPDATE schedules SET status = ?, updated_at = ? WHERE schedule_id = ?",
            (FINISHED, time.time(), schedule_id),
        )


def ticks(store: Store, schedule_id: str) -> list[sqlite3.Row]:
    return store.conn.execute(
        "SELECT * FROM schedule_ticks WHERE schedule_id = ? ORDER BY tick", (schedule_id,)
    ).fetchall()


def next_tick(store: Store, schedule_id: str) -> int:
    """The first tick without a row (ticks are recorded in order)."""
    row = store.conn.execute(
        "SELECT COALESCE(MAX(tick) + 1, 0) FROM schedule_ticks WHERE schedule_id = ?",
        (schedule_id,),
    ).fetchone()
    return int(row[0])


def record_ticks(
    store: Store, schedule_id: str, due: list[tuple[int, float]], status: str, reason: str
) -> None:
    """Record ticks that did not run (missed or skipped) with why."""
    if not due:
        return
    with store.transaction() as db:
        db.executemany(
            "INSERT OR IGNORE INTO schedule_ticks (schedule_id, tick, due_at, status, reason) "
            "VALUES (?, ?, ?, ?, ?)",
            [(schedule_id, tick, at, status, reason) for tick, at in due],
        )


def claim_tick(store: Store, schedule_id: str, tick: int, due_at: float) -> int:
    """Record ``tick`` as running and give it the output folder's next round."""
    with store.transaction() as db:
        stored = db.execute("SELECT COALESCE(MAX(round), 0) FROM samples").fetchone()[0]
        claimed = db.execute("SELECT COALESCE(MAX(round), 0) FROM schedule_ticks").fetchone()[0]
        round_no = max(int(stored), int(claimed)) + 1
        db.execute(
            "INSERT INTO schedule_ticks (schedule_id, tick, due_at, status, round, started_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (schedule_id, tick, due_at, TICK_RUNNING, round_no, time.time()),
        )
    return round_no


def running_tick(store: Store, schedule_id: str) -> sqlite3.Row | None:
    """A tick whose round was started and never finished (its scheduler died)."""
    row: sqlite3.Row | None = store.conn.execute(
        "SELECT * FROM schedule_ticks WHERE schedule_id = ? AND status = ? ORDER BY tick",
        (schedule_id, TICK_RUNNING),
    ).fetchone()
    return row


def finish_tick(store: Store, schedule_id: str, tick: int, status: str, reason: str | None) -> None:
    with store.transaction() as db:
        db.execute(
            "UPDATE schedule_ticks SET status = ?, reason = ?, finished_at = ? "
            "WHERE schedule_id = ? AND tick = ?",
            (status, reason, time.time(), schedule_id, tick),
        )
