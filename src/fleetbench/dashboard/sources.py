"""The results folders a dashboard serves, each store opened read-only per request.

A connection per request (about a millisecond) keeps the request threads apart without a
lock around SQLite; ``Store.read_only`` opens with ``mode=ro`` and a short busy timeout,
so the dashboard can neither write to a folder nor hold up the batch writing to it (WAL:
readers and the writer do not wait for each other).

Two things are kept between requests, both keyed so that they can never go stale:
the categories seen so far (read incrementally, from the samples stored since) and each
run's summary (``report.aggregate.summarize_run`` reads all of a run's samples; it is
recomputed only when the run's row or its sample count changed).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fleetbench.dashboard.filters import CATEGORY_SQL, Known
from fleetbench.errors import ConfigError
from fleetbench.store import DB_NAME, RUNNING, Store
from fleetbench.store.migrations import MIGRATIONS


class Source:
    """One results folder."""

    def __init__(self, folder: Path, name: str) -> None:
        self.folder, self.name = folder, name
        self.path = folder / DB_NAME
        self._lock = threading.Lock()
        self._summarising = threading.Lock()
        self._categories: set[str] = set()
        self._category_rowid = 0
        self._summaries: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {}

    @contextmanager
    def store(self) -> Iterator[Store]:
        store = Store.read_only(self.path)
        try:
            yield store
        finally:
            store.close()

    def check(self) -> None:
        """One clear line unless the folder holds a store of this fleetbench's schema
        (a read-only reader cannot migrate an older one)."""
        if not self.path.is_file():
            raise ConfigError(
                f"{self.folder}: no results store ({DB_NAME}); run `fleetbench run` there "
                "first or pass the results folder with -o"
            )
        try:
            with self.store() as store:
                applied = {r[0] for r in store.conn.execute("SELECT name FROM schema_migrations")}
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"{self.path}: cannot read the results store: {exc}") from None
        known = {name for name, _ in MIGRATIONS}
        if applied - known:
            raise ConfigError(f"{self.path}: written by a newer fleetbench; upgrade fleetbench")
        if known - applied:
            raise ConfigError(
                f"{self.path}: written by an older fleetbench; run `fleetbench report -o "
                f"{self.folder}` once to upgrade its store"
            )

    def version(self, store: Store) -> list[Any]:
        """What changes whenever anything a view shows does: the newest sample (rowid
        only grows), the runs' rows and the attempts' heartbeats. Index look-ups only."""
        db = store.conn
        samples = db.execute("SELECT MAX(rowid) FROM samples").fetchone()[0]
        runs = db.execute("SELECT COUNT(*), MAX(updated_at) FROM runs").fetchone()
        attempts = db.execute("SELECT COUNT(*), MAX(last_seen_at) FROM attempts").fetchone()
        return [samples or 0, *runs, *attempts]

    def categories(self, store: Store) -> set[str]:
        with self._lock:
            start = self._category_rowid
        rows = store.conn.execute(
            f"SELECT MAX(s.rowid), {CATEGORY_SQL} FROM samples s WHERE s.rowid > ? "
            f"AND {CATEGORY_SQL} IS NOT NULL GROUP BY 2",
            (start,),
        ).fetchall()
        last = store.conn.execute("SELECT MAX(rowid) FROM samples").fetchone()[0] or 0
        with self._lock:
            self._categories |= {str(r[1]) for r in rows}
            self._category_rowid = max(self._category_rowid, last)
            return set(self._categories)

    def summaries(self, store: Store, runs: list[sqlite3.Row]) -> list[dict[str, Any]]:
        """Every given run's summary, from the cache where its row and sample count
        are unchanged. One caller at a time: two requests never summarise a run twice."""
        with self._summarising:
            return self._summaries_of(store, runs)

    def _summaries_of(self, store: Store, runs: list[sqlite3.Row]) -> list[dict[str, Any]]:
        from fleetbench.report.aggregate import summarize_run

        counts = dict(
            store.conn.execute("SELECT run_id, COUNT(*) FROM samples GROUP BY run_id").fetchall()
        )
        out = []
        for row in runs:
            key = (*tuple(row), counts.get(row["run_id"], 0))
            with self._lock:
                cached = self._summaries.get(row["run_id"])
            if cached is None or cached[0] != key or row["status"] == RUNNING:
                cached = (key, summarize_run(store, row) | {"folder": self.name})
                with self._lock:
                    self._summaries[row["run_id"]] = cached
            out.append(cached[1])
        return out


class Sources:
    """Every folder of one dashboard, named by folder name (made unique)."""

    def __init__(self, folders: list[Path]) -> None:
        self.items: list[Source] = []
        names: set[str] = set()
        for folder in folders:
            name = folder.name or str(folder)
            while name in names:
                name += "'"
            names.add(name)
            self.items.append(Source(folder, name))

    def check(self) -> None:
        for source in self.items:
            source.check()

    def warm(self) -> None:
        """Read what the first requests would otherwise wait for: the categories (a
        scan of every sample) and every run's summary (the comparison). Run in a
        background thread at start-up; a request that comes first computes the same,
        under the same locks."""
        for source in self.items:
            with source.store() as store:
                source.categories(store)
        for source in self.items:
            with source.store() as store:
                source.summaries(store, store.runs())

    def version(self) -> str:
        parts = []
        for source in self.items:
            with source.store() as store:
                parts.append(":".join(str(v) for v in source.version(store)))
        return "|".join(parts)

    def known(self) -> Known:
        models: set[str] = set()
        tasks: set[str] = set()
        backends: set[str] = set()
        categories: set[str] = set()
        for source in self.items:
            with source.store() as store:
                for r in store.conn.execute("SELECT DISTINCT model_name, task, backend FROM runs"):
                    models.add(r[0])
                    tasks.add(r[1])
                    backends.add(r[2])
                categories |= source.categories(store)
        return Known(
            frozenset(models), frozenset(tasks), frozenset(backends), frozenset(categories)
        )
