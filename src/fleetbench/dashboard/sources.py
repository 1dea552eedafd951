"""The results folders a dashboard serves, each store opened read-only per request.

A connection per request (about a millisecond) keeps the request threads apart without a
lock around SQLite; ``Store.read_only`` opens with ``mode=ro`` and a short busy timeout,
so the dashboard can neither write to a folder nor hold up the batch writing to it (WAL:
readers and the writer do not wait for each other).

Each run's summary is kept between requests (``dashboard.summaries``: computed in
worker processes, recomputed only when the run's row or its sample count changed).
The categories are read afresh each time: a seek per category along their index.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fleetbench.dashboard.filters import Known
from fleetbench.dashboard.summaries import Summaries, Worker
from fleetbench.errors import ConfigError
from fleetbench.store import DB_NAME, Store
from fleetbench.store.migrations import MIGRATIONS

# The distinct categories: the smallest, then the smallest above each one found.
_CATEGORIES = (
    "WITH RECURSIVE c(v) AS (SELECT MIN(category) FROM samples UNION ALL "
    "SELECT (SELECT MIN(category) FROM samples WHERE category > c.v) FROM c "
    "WHERE c.v IS NOT NULL) SELECT v FROM c WHERE v IS NOT NULL"
)


class Source:
    """One results folder."""

    def __init__(self, folder: Path, name: str, worker: Worker) -> None:
        self.folder, self.name = folder, name
        self.path = folder / DB_NAME
        self._summaries = Summaries(self.path, worker)

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
        """Every category a stored sample has: one seek per category along the
        ``samples_category`` index (a skip scan), however many samples there are."""
        rows = store.conn.execute(_CATEGORIES).fetchall()
        return {str(r[0]) for r in rows}

    def summaries(
        self, store: Store, runs: list[sqlite3.Row], wait: float
    ) -> tuple[list[Any], str]:
        """The given runs' summaries ready within ``wait`` (``dashboard.summaries``),
        tagged with the folder, and what is still being summarised ("" when nothing)."""
        ready, pending = self._summaries.get(store, runs, wait)
        return [s | {"folder": self.name} for s in ready], pending


class Sources:
    """Every folder of one dashboard, named by folder name (made unique)."""

    def __init__(self, folders: list[Path]) -> None:
        self.items: list[Source] = []
        self.worker = Worker()
        names: set[str] = set()
        for folder in folders:
            name = folder.name or str(folder)
            while name in names:
                name += "'"
            names.add(name)
            self.items.append(Source(folder, name, self.worker))

    def check(self) -> None:
        for source in self.items:
            source.check()

    def warm(
        self, served: threading.Event, prefetch: Callable[[], None], patience: float = 10.0
    ) -> None:
        """Work ahead of the first requests, in a background thread at start-up, once
        the first view was ``served`` (or after ``patience`` seconds: it would compete
        with the first page for the CPU): queue every run's summary (the comparison) for
        the worker processes, ``prefetch`` the views that aggregate every sample, then
        wait for the summaries. A request that comes first shares the work."""
        served.wait(patience)
        for source in self.items:
            with source.store() as store:
                source.summaries(store, store.runs(), wait=0.0)
        prefetch()
        with contextlib.suppress(ImportError):  # the report's charts, ahead of their views
            import altair  # noqa: F401

        for source in self.items:
            with source.store() as store:
                source.summaries(store, store.runs(), wait=3600.0)

    def close(self) -> None:
        self.worker.close()

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
