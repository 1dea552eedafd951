"""Run summaries for the comparison view, computed in worker processes.

``report.aggregate.summarize_run`` reads all of a run's samples in Python: about 0.02 s
a run of 1,000 samples, many seconds for a store of a million. In a thread of the server
it would hold the GIL, and every other request, whose SQLite calls give the GIL up and
take it back once per row, would wait behind it (a 1 s query took a minute). So the
summaries are computed in spawned worker processes, each over its own read-only
connection, ``CHUNK`` runs per job; the server keeps them, keyed by the run's row and
sample count (a summary is recomputed only when either changed: a new sample, a status
change); a run's summary cached in its folder by the last batch or report
(``report.exports.cached_summary``) is read instead of made. A request waits at most
``WAIT_S`` for fresh ones, then gets those ready so far and a note of the rest: the
comparison fills in job by job instead of all at the end.
"""

from __future__ import annotations

import functools
import multiprocessing
import multiprocessing.pool
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from fleetbench.store import Store

WAIT_S = 0.8  # a request waits this long for fresh summaries, then shows those ready
CHUNK = 25  # runs per job: the view fills in as each job returns (~0.5 s of work each)
Key = tuple[Any, ...]
Summary = dict[str, Any]


def _counts(store: Store, run_ids: list[str] | None = None) -> dict[str, int]:
    """Stored samples per run: every run's, or these runs' (an index range each)."""
    if run_ids is None:
        rows = store.conn.execute("SELECT run_id, COUNT(*) FROM samples GROUP BY run_id")
        return {str(r[0]): int(r[1]) for r in rows}
    count = "SELECT COUNT(*) FROM samples WHERE run_id = ?"
    return {i: int(store.conn.execute(count, (i,)).fetchone()[0]) for i in run_ids}


def _key(row: sqlite3.Row, counts: dict[str, int]) -> Key:
    return (*tuple(row), counts.get(row["run_id"], 0))


def summarize(path: str, run_ids: list[str]) -> list[tuple[str, Key, Summary]]:
    """In a worker: each run's (id, key, summary), read as the store is now."""
    from fleetbench.report.aggregate import summarize_run
    from fleetbench.report.exports import cached_summary

    store = Store.read_only(Path(path))
    output = Path(path).parent  # the results folder: each run's cached summary
    try:
        counts = _counts(store, run_ids)
        return [(r["run_id"], _key(r, counts),
                 cached_summary(store, output, r) or summarize_run(store, r))
                for r in store.runs(run_ids)]  # fmt: skip
    finally:
        store.close()


def processes() -> int:
    """Half the cores, at most 4: the server and the batch being watched keep the rest
    (a 2-core machine: one worker)."""
    return max(1, min(4, (os.cpu_count() or 2) // 2))


class Worker:
    """The worker processes of a dashboard, started on first use."""

    def __init__(self) -> None:
        self._pool: multiprocessing.pool.Pool | None = None
        self._lock = threading.Lock()

    def pool(self) -> multiprocessing.pool.Pool:
        with self._lock:
            if self._pool is None:
                self._pool = multiprocessing.get_context("spawn").Pool(processes())
            return self._pool

    def close(self) -> None:
        """Stop the workers at once (Ctrl-C does not wait for a summary)."""
        with self._lock:
            if self._pool is not None:
                self._pool.terminate()
                self._pool.join()
                self._pool = None


class Summaries:
    """The summaries of one store's runs, computed ``CHUNK`` runs per job."""

    def __init__(self, path: Path, worker: Worker) -> None:
        self.path, self.worker = path, worker
        self._cache: dict[str, tuple[Key, Summary]] = {}
        self._lock = threading.Lock()
        self._queued: set[str] = set()  # runs a job is summarising now
        self._done = threading.Condition(self._lock)  # notified as each job returns
        self._error: BaseException | None = None  # a job's, for the request waiting

    def _store(self, results: list[tuple[str, Key, Summary]]) -> None:
        with self._lock:
            for run_id, key, summary in results:
                self._cache[run_id] = (key, summary)
                self._queued.discard(run_id)
            self._done.notify_all()

    def _failed(self, run_ids: list[str], error: BaseException) -> None:
        with self._lock:  # the waiting request raises it; the next one tries again
            self._queued.difference_update(run_ids)
            self._error = error
            self._done.notify_all()

    def _stale(self, keys: dict[str, Key]) -> list[str]:
        return [i for i, k in keys.items() if self._cache.get(i, (None,))[0] != k]

    def _submit(self, stale: list[str]) -> None:
        """Queue jobs for the stale runs no job is summarising (lock held)."""
        todo = [i for i in stale if i not in self._queued]
        for start in range(0, len(todo), CHUNK):
            chunk = todo[start : start + CHUNK]
            self._queued.update(chunk)
            self.worker.pool().apply_async(
                summarize, (str(self.path), chunk), callback=self._store,
                error_callback=functools.partial(self._failed, chunk),
            )  # fmt: skip

    def get(
        self, store: Store, runs: list[sqlite3.Row], wait: float = WAIT_S
    ) -> tuple[list[Summary], str]:
        """The runs' summaries, each as fresh as its row and sample count, waiting at most
        ``wait`` seconds; after that, those ready so far (a run summarised before it
        last changed: its older summary) and what is still being summarised ("" when
        nothing is)."""
        counts = _counts(store)
        keys = {str(r["run_id"]): _key(r, counts) for r in runs}
        deadline = time.monotonic() + wait
        with self._lock:
            self._error = None
            while True:
                if self._error is not None:
                    raise self._error
                stale = self._stale(keys)
                if not stale:
                    return [self._cache[i][1] for i in keys], ""
                # A run that changed while a job read it comes back stale: queue it again.
                self._submit(stale)
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._done.wait(left)
            ready = [self._cache[i][1] for i in keys if i in self._cache]
        return ready, f"summarising runs: {len(keys) - len(stale)} of {len(keys)} ready"
