"""Named batches: their default names, the listing, and finding one to resume.

A batch's name and the ids of the runs it selected are kept in its stored options
(``batches.options_json``), so naming needs no schema change and a batch stored by an
older fleetbench still lists (its runs are then the ones its attempts touched).
``--batch-dir`` writes a batch's own folder, ``OUTPUT/batches/<name>/``, with the
master CSV of just its runs and ``batch.json``; the store stays one per output folder.
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fleetbench.errors import ConfigError
from fleetbench.fsutil import atomic_write_text
from fleetbench.store import COMPLETED, DB_NAME, Store

BATCHES_DIR = "batches"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
FAILED_STATUSES = ("failed", "completed_with_errors", "interrupted")


def default_name(now: datetime | None = None) -> str:
    """``batch_YYYYMMDD_HHMMSS`` in local time."""
    return (now or datetime.now()).strftime("batch_%Y%m%d_%H%M%S")


def check_name(name: str) -> str:
    """A batch name becomes a folder name (``--batch-dir``): letters, digits, ``._-``."""
    if not _NAME.match(name):
        raise ConfigError(
            f"--name {name!r}: use letters, digits, '.', '_' or '-' (at most 100, "
            "starting with a letter or digit)"
        )
    return name


@dataclass
class BatchInfo:
    batch_id: str
    name: str
    plan_name: str
    plan_source: str
    started_at: float
    finished_at: float | None
    status: str
    run_ids: list[str]
    options: dict[str, Any]
    done: int = 0
    failed: int = 0

    def row(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "name": self.name,
            "plan": self.plan_source,
            "started": _iso(self.started_at),
            "finished": _iso(self.finished_at) if self.finished_at else None,
            "status": self.status,
            "runs": len(self.run_ids),
            "done": self.done,
            "failed": self.failed,
        }


def list_batches(output: Path) -> list[BatchInfo]:
    """Every batch of the output folder's store, oldest first."""
    db = output / DB_NAME
    if not db.is_file():
        raise ConfigError(f"{output}: no results store here ({DB_NAME}); run a batch first")
    store = Store(db)
    try:
        return [_info(store, row) for row in store.batches()]
    finally:
        store.close()


def find_batch(output: Path, ref: str) -> BatchInfo:
    """The batch whose id is ``ref``, else the latest one named ``ref``."""
    batches = list_batches(output)
    found = [b for b in batches if b.batch_id == ref] or [b for b in batches if b.name == ref]
    if not found:
        known = ", ".join(f"{b.batch_id} ({b.name})" for b in batches[-5:]) or "none"
        raise ConfigError(f"--resume {ref!r}: no such batch in {output}; latest: {known}")
    return found[-1]


def plan_of(info: BatchInfo) -> Path | None:
    """The plan file a batch ran (None: the built-in demo plan)."""
    stored = info.options.get("plan_file")
    if stored is None and info.plan_source.startswith("built-in "):
        return None
    path = Path(stored or info.plan_source)
    if not path.is_file():
        raise ConfigError(
            f"--resume {info.batch_id}: its plan file {path} is gone; give the plan: "
            f"fleetbench run PLAN --resume {info.batch_id}"
        )
    return path


def write_batch_dir(output: Path, info: BatchInfo, summaries: list[dict[str, Any]]) -> Path:
    """``OUTPUT/batches/<name>/``: this batch's master CSV and ``batch.json``."""
    folder = output / BATCHES_DIR / info.name
    folder.mkdir(parents=True, exist_ok=True)
    mine = [s for s in summaries if s.get("run_id") in set(info.run_ids)]
    from fleetbench.report.master import write_master_csv  # at a batch's end only

    write_master_csv(folder, mine)
    document = {**info.row(), "batch_id": info.batch_id, "run_ids": info.run_ids}
    atomic_write_text(folder / "batch.json", json.dumps(document, indent=2) + "\n")
    return folder


def batch_info(store: Store, batch_id: str) -> BatchInfo:
    return _info(store, next(r for r in store.batches() if r["batch_id"] == batch_id))


def _info(store: Store, row: sqlite3.Row) -> BatchInfo:
    options = json.loads(row["options_json"])
    run_ids = options.get("run_ids")
    if not isinstance(run_ids, list):  # stored before batches were named
        run_ids = store.batch_run_ids(row["batch_id"])
    statuses = [r["status"] for r in store.runs(run_ids)]
    return BatchInfo(
        batch_id=row["batch_id"],
        name=str(options.get("name") or row["batch_id"]),
        plan_name=row["plan_name"],
        plan_source=row["plan_source"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        status=row["status"],
        run_ids=list(run_ids),
        options=options,
        done=statuses.count(COMPLETED),
        failed=sum(statuses.count(s) for s in FAILED_STATUSES),
    )


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")
