"""Run summaries for the comparison view, computed in a worker process.

``report.aggregate.summarize_run`` reads all of a run's samples in Python: about 0.1 s
a run of 1,000 samples, minutes for a store of a million. In a thread of the server it
would hold the GIL, and every other request, whose SQLite calls give the GIL up and
take it back once per row, would wait behind it (a 1 s query took a minute). So the
summaries are computed in one spawned worker process, over its own read-only
connection; the server keeps them, keyed by the run's row and sample count (a summary
is recomputed only when either changed: a new sample, a status change), and a request
that would wait longer than ``WAIT_S`` answers ``Pending`` while the worker goes on.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.pool
import sqlite3
import threading
from pathlib import Path
from typing import Any

from fleetbench.store import Store

WAIT_S = 0.8  # a request waits this long for fresh summaries, then answers Pending
Key = tuple[Any, ...]


class Pending(Exception):
    """The data of a view is being computed; try again shortly."""


def _counts(store: Store) -> dict[str, int]:
    rows = store.conn.execute("SELECT run_id, COUNT(*) FROM samples GROUP BY run_id")
    return {str(r[0]): int(r[1]) for r in rows}


def _key(row: sqlite3.Row, counts: dict[str, int]) -> Key:
    return (*tuple(row), counts.get(row["run_id"], 0))


def summarize(path: str, run_ids: list[str]) -> list[tuple[str, Key, dict[str, Any]]]:
    """In the worker: each run's (id, key, summary), read as the store is now."""
    from fleetbench.report.aggregate import summarize_run

    store = Store.read_only(Path(path))
    try:
        counts = _counts(store)
        return [(r["run_id"], _key(r, counts), summarize_run(store, r))
                for r in store.runs(run_ids)]  # fmt: skip
    finally:
        store.close()


class Worker:
    """The one worker process of a dashboard, started on first use."""

    def __init__(self) -> None:
        self._pool: multiprocessing.pool.Pool | None = None
        self._lock = threading.Lock()

    def pool(self) -> multiprocessing.pool.Pool:
        with self._lock:
            if self._pool is None:
                self._pool = multiprocessing.get_context("spawn").Pool(1)
            return self._pool

    def close(self) -> None:
        """Stop the worker at once (Ctrl-C does not wait for a summary)."""
        with self._lock:
            if self._pool is not None:
                self._pool.terminate()
                self._pool.join()
                self._pool = None


class Summaries:
    """The summaries of one store's runs."""

    def __init__(self, path: Path, worker: Worker) -> None:
        self.path, self.worker = path, worker
        self._cache: dict[str, tuple[Key, dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._job: multiprocessing.pool.AsyncResult[Any] | None = None

    def _store(self, results: list[tuple[str, Key, dict[str, Any]]]) -> None:
        with self._lock:
            for run_id, key, summary in results:
                self._cache[run_id] = (key, summary)

    def _stale(self, keys: dict[str, Key]) -> list[str]:
        with self._lock:
            return [i for i, k in keys.items() if self._cache.get(i, (None,))[0] != k]

    def get(self, store: Store, runs: list[sqlite3.Row], wait: float = WAIT_S) -> list[Any]:
        """The runs' summaries; ``Pending`` if the worker needs longer than ``wait``."""
        counts = _counts(store)
        keys = {str(r["run_id"]): _key(r, counts) for r in runs}
        for _ in range(2):  # a run may change while the worker reads it: once more
            stale = self._stale(keys)
            if not stale:
                break
            with self._lock:
                job = self._job
                if job is None or job.ready():
                    job = self._job = self.worker.pool().apply_async(
                        summarize, (str(self.path), stale), callback=self._store
                    )
            try:
                job.get(wait)
            except multiprocessing.TimeoutError:
                done = len(keys) - len(stale)
                raise Pending(f"summarising runs: {done} of {len(keys)} ready") from None
        else:
            raise Pending("summarising runs that are changing")
        with self._lock:
            return [self._cache[i][1] for i in keys]
