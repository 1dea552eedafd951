"""Where a worker records its results: the store itself, or a stream to the coordinator.

On this machine a worker writes each sample to the SQLite store as soon as it is
generated. A worker on another node of a Ray cluster cannot reach that file, so it
sends the same writes as ``store`` events on its stdout; the coordinator applies them
to the store (``apply``), one transaction per sample as before, and nothing else ever
writes the store.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Protocol

from fleetbench.runner.job import RunJob
from fleetbench.store import SampleRow, Store
from fleetbench.store.rows import SAMPLE_FIELDS

STORE_EVENT = "store"
_UPDATABLE = {
    "load_time_s", "startup_s", "details_json", "peak_rss_mb", "energy_json", "last_seen_at"
}  # fmt: skip


class Recorder(Protocol):
    def done_keys(self, run_id: str) -> set[tuple[int, int]]: ...

    def add_sample(self, row: SampleRow) -> bool: ...

    def update_attempt(self, run_id: str, attempt: int, **fields: Any) -> None: ...

    def close(self) -> None: ...


class StreamRecorder:
    """Sends every write to the coordinator as a JSON line; knows what was done from
    the job (the coordinator read it from the store when the attempt started)."""

    def __init__(self, job: RunJob) -> None:
        self._done = {(r, i) for r, i in job.done_keys or []}

    def done_keys(self, run_id: str) -> set[tuple[int, int]]:
        return set(self._done)

    def add_sample(self, row: SampleRow) -> bool:
        _send("add_sample", row=row.values())  # the round travels with the row
        self._done.add((row.round, row.sample_index))
        return True

    def update_attempt(self, run_id: str, attempt: int, **fields: Any) -> None:
        _send("update_attempt", fields=fields)

    def close(self) -> None:
        pass


def open_recorder(job: RunJob) -> Recorder:
    return StreamRecorder(job) if job.stream_results else Store(job.db_path)


def apply(store: Store, job: RunJob, event: dict[str, Any]) -> None:
    """Apply one ``store`` event of ``job``'s worker (coordinator side). The run and
    attempt come from the job, never from the event; a round the job does not measure
    is refused."""
    op = event.get("op")
    if op == "add_sample":
        values = {k: v for k, v in (event.get("row") or {}).items() if k in SAMPLE_FIELDS}
        values.update(run_id=job.spec.run_id, attempt=job.attempt)
        if values.get("round", 1) not in job.rounds:
            raise ValueError(f"worker sent round {values.get('round')}; job rounds {job.rounds}")
        store.add_sample(SampleRow(**values))
    elif op == "update_attempt":
        fields = {k: v for k, v in (event.get("fields") or {}).items() if k in _UPDATABLE}
        if fields:
            store.update_attempt(job.spec.run_id, job.attempt, **fields)


def _send(op: str, **data: Any) -> None:
    sys.stdout.write(json.dumps({"event": STORE_EVENT, "op": op, **data}) + "\n")
    sys.stdout.flush()
