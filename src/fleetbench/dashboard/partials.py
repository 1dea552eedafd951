"""Per run, round and category partial sums of a store's samples, kept between requests.

The over-time view adds up every sample: one pass over 1,000,000 samples along the
``samples_figures`` index takes about 1.3 s, and a live batch changes the store every
few seconds, so each refresh paid it again. Samples are only ever inserted (a retried
sample replaces its row, ``--fresh`` deletes a run's), so the partial sums of the groups
(run, round, category) no new row touched stay right: after a change, only the groups
of rows above the highest rowid seen are summed again, unless the count shows that a
row was deleted (then everything is). Filters that select whole groups (model, task,
backend, category, round range) are applied to the partials; a time range is not a
group property and goes to SQL (``queries.rounds``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleetbench.store import Store

# The partial sums of one group, in this order; means are sums over counts, so they add.
PARTIALS_SQL = (
    "COUNT(*), SUM(s.error IS NULL), "
    "SUM(CASE WHEN s.error IS NULL THEN s.latency_s END), "
    "COUNT(CASE WHEN s.error IS NULL THEN s.latency_s END), "
    "SUM(CASE WHEN s.error IS NULL THEN s.ttft_s END), "
    "COUNT(CASE WHEN s.error IS NULL THEN s.ttft_s END), "
    "SUM(CASE WHEN s.error IS NULL THEN s.completion_tokens END), "
    "MIN(s.sent_at), MAX(s.received_at), MIN(s.created_at), SUM(s.energy_wh)"
)
_GROUP = "SELECT s.run_id, s.round, s.category, " + PARTIALS_SQL + " FROM samples s"
Partials = tuple[Any, ...]


@dataclass
class _Cache:
    count: int = -1
    max_rowid: int = 0
    max_created: float | None = None
    # (run id, round) -> category -> partial sums: a new row's groups are found at once
    groups: dict[tuple[str, int], dict[str | None, Partials]] = field(default_factory=dict)


_caches: dict[Path, _Cache] = {}
_lock = threading.Lock()


def groups(store: Store) -> dict[tuple[str, int], dict[str | None, Partials]]:
    """Every (run, round) and, in it, each category's partial sums, as the store is now
    (read in one transaction, so a batch writing meanwhile is seen before or after its
    write). The inner mappings are shared with the cache: read them, never change them."""
    with _lock:  # one refresh at a time; the view's other requests share its result
        cache = _caches.setdefault(store.path, _Cache())
        db = store.conn
        started = not db.in_transaction
        if started:
            db.execute("BEGIN")
        try:
            # Three statements: each is a seek or a count of the smallest index; as one,
            # SQLite scans (2 s on a million samples).
            state = (
                int(db.execute("SELECT COUNT(*) FROM samples").fetchone()[0]),
                int(db.execute("SELECT MAX(rowid) FROM samples").fetchone()[0] or 0),
                db.execute("SELECT MAX(created_at) FROM samples").fetchone()[0],
            )
            if state != (cache.count, cache.max_rowid, cache.max_created):
                _refresh(store, cache, *state)
        finally:
            if started:
                db.execute("COMMIT")
        return dict(cache.groups)


def _only_added(store: Store, cache: _Cache, count: int, max_rowid: int) -> bool:
    """Whether every change since the cache was made is a row above its highest rowid:
    no row was deleted (the count adds up) and none re-inserted below it (SQLite reuses
    the rowids of deleted rows at the top, but such a row is newer than every old one)."""
    if cache.count < 0 or max_rowid <= cache.max_rowid:
        return False
    db = store.conn
    added = db.execute("SELECT COUNT(*) FROM samples WHERE rowid > ?", (cache.max_rowid,))
    if count != cache.count + added.fetchone()[0]:
        return False
    newest_old = db.execute(
        "SELECT MAX(created_at) FROM samples WHERE rowid <= ?", (cache.max_rowid,)
    ).fetchone()[0]
    return bool(newest_old == cache.max_created)


def _refresh(
    store: Store, cache: _Cache, count: int, max_rowid: int, max_created: float | None
) -> None:
    db = store.conn
    if not _only_added(store, cache, count, max_rowid):  # first time, deleted, re-inserted
        cache.groups = {}
        rows = _tuples(store, f"{_GROUP} GROUP BY s.run_id, s.round, s.category", ())
    else:
        touched = db.execute(
            "SELECT DISTINCT run_id, round FROM samples WHERE rowid > ?", (cache.max_rowid,)
        ).fetchall()
        rows = []
        for run_id, number in touched:  # summed again whole: a group's older rows too
            cache.groups.pop((run_id, int(number)), None)
            rows += _tuples(
                store,
                f"{_GROUP} WHERE s.run_id = ? AND s.round = ? GROUP BY s.category",
                (run_id, number),
            )
    for r in rows:
        cache.groups.setdefault((r[0], int(r[1])), {})[r[2]] = tuple(r[3:])
    cache.count, cache.max_rowid, cache.max_created = count, max_rowid, max_created


def _tuples(store: Store, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    cursor = store.conn.execute(sql, params)
    cursor.row_factory = None  # plain tuples: 100,000 groups
    return cursor.fetchall()


def forget(path: Path) -> None:
    """Drop a store's partials (tests; a store replaced on disk)."""
    with _lock:
        _caches.pop(path, None)


def figures(parts: list[Partials]) -> tuple[Any, ...]:
    """Groups' partial sums added up, as ``queries.ROUND_COLUMNS`` after key and round:
    samples, successes, mean latency and TTFT of the successes, completion tokens, first
    send, last reply, first stored, energy (SQL's rules: a sum of nothing known is None)."""
    if len(parts) == 1:  # one group (a run-round of one category): nothing to add up
        n1, ok1, lat1, lat_n1, ttft1, ttft_n1, tokens1, first1, last1, stored1, energy1 = parts[0]
        return (
            n1,
            ok1,
            lat1 / lat_n1 if lat1 is not None and lat_n1 else None,
            ttft1 / ttft_n1 if ttft1 is not None and ttft_n1 else None,
            tokens1,
            first1,
            last1,
            stored1,
            energy1,
        )
    n, ok, lat, lat_n, ttft, ttft_n, tokens, first, last, stored, energy = zip(*parts, strict=True)
    latency_sum, latency_count = _sum(lat), sum(lat_n)
    ttft_sum, ttft_count = _sum(ttft), sum(ttft_n)
    return (
        sum(n),
        _sum(ok),
        latency_sum / latency_count if latency_sum is not None and latency_count else None,
        ttft_sum / ttft_count if ttft_sum is not None and ttft_count else None,
        _sum(tokens),
        _min(first),
        _max(last),
        _min(stored),
        _sum(energy),
    )


def _sum(values: tuple[Any, ...]) -> Any:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _min(values: tuple[Any, ...]) -> Any:
    known = [v for v in values if v is not None]
    return min(known) if known else None


def _max(values: tuple[Any, ...]) -> Any:
    known = [v for v in values if v is not None]
    return max(known) if known else None
