"""``fleetbench export samples``: one time-series record per stored sample and round.

For dashboards and notebooks: a flat table (CSV, JSON lines or Parquet) with the time
each reply arrived, the round, the run, model and provider, the question and the
sample's figures and scores. Every column is computed by SQLite in one SELECT (each
run's figures in a materialized CTE joined once), rows come in ``created_at`` order (an
index), and the whole export reads one snapshot (one read transaction: a batch may go
on writing). Parquet goes columnar: with ``adbc-driver-sqlite`` (the ``parquet`` extra)
SQLite's values land in Arrow batches without a Python object per value; without it,
tuples are fetched in batches of 20,000 and converted per column. CSV streams tuples;
JSON lines is one ``json.dumps`` per record. Nothing holds the whole store in memory,
and the file is written beside its destination and renamed at the end.

Columns (``RECORD_COLUMNS``, then one column per numeric score key found in the store,
e.g. ``coverage_score``, ``exact_match``):

* ``timestamp``: when the reply arrived (``received_at``, else when it was stored), UTC
  ISO 8601 with milliseconds and ``Z``;
* ``provider``: the backend's preset or provider (``groq``, ``anthropic``), else the
  backend; ``category``: the sample's category (prompt/question files), else empty;
  ``model_categories``: the catalogue entry's categories, ``;``-joined;
* ``throughput_tps``: the sample's completion tokens ÷ its latency (one request's
  delivery rate; empty when either is unknown); ``success``: no error.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fleetbench.errors import ConfigError
from fleetbench.fsutil import atomic_path
from fleetbench.store import Store

FORMATS = ("csv", "jsonl", "parquet")
EXPORTS_DIR = "exports"  # OUTPUT/exports/samples.<format> by default
PARQUET_HINT = "pip install 'fleetbench[parquet]'"
BATCH = 20_000  # rows per fetch through Python's sqlite3
ARROW_BATCH = 100_000  # rows per Arrow batch (and Parquet row group)

RECORD_COLUMNS: list[str] = [
    "timestamp", "round", "run_id", "model", "provider", "backend", "task", "settings_label",
    "category", "model_categories", "question", "sample_index", "latency_sec", "ttft_sec",
    "itl_sec", "throughput_tps", "success", "error", "prompt_tokens", "response_tokens",
    "reasoning_tokens", "energy_wh", "energy_method", "cost_usd", "retries", "attempt",
]  # fmt: skip
_NUMERIC_JSON = ("integer", "real", "true", "false")
_TYPES = {
    "round": "int", "sample_index": "int", "prompt_tokens": "int", "response_tokens": "int",
    "reasoning_tokens": "int", "retries": "int", "attempt": "int", "success": "bool",
    "latency_sec": "float", "ttft_sec": "float", "itl_sec": "float", "throughput_tps": "float",
    "energy_wh": "float", "cost_usd": "float",
}  # fmt: skip


_SCORE_KEYS = (
    "SELECT DISTINCT j.key FROM samples, json_each(samples.scores_json) AS j "
    f"WHERE samples.scores_json IS NOT NULL AND j.type IN ({','.join('?' * 4)})"
)


def score_columns(store: Store) -> list[str]:
    """Numeric score keys of every stored sample, sorted (found in SQL, not Python)."""
    return _score_names(r[0] for r in store.conn.execute(_SCORE_KEYS, _NUMERIC_JSON))


def _score_names(keys: Iterable[Any]) -> list[str]:
    return sorted(str(k) for k in keys if str(k) not in RECORD_COLUMNS)


_SELECT = {
    "timestamp": "strftime('%Y-%m-%dT%H:%M:%fZ', COALESCE(s.received_at, s.created_at), "
    "'unixepoch')",
    "round": "s.round", "run_id": "s.run_id", "model": "r.model", "provider": "r.provider",
    "backend": "r.backend", "task": "r.task", "settings_label": "r.settings_label",
    "category": "COALESCE(json_extract(s.input_json, '$.category'), '')",
    "model_categories": "r.model_categories", "question": "s.sample_id",
    "sample_index": "s.sample_index", "latency_sec": "s.latency_s", "ttft_sec": "s.ttft_s",
    "itl_sec": "s.itl_s",
    "throughput_tps": "CASE WHEN s.completion_tokens IS NOT NULL AND s.latency_s > 0 "
    "THEN s.completion_tokens * 1.0 / s.latency_s END",
    "success": "s.error IS NULL", "error": "COALESCE(s.error, '')",
    "prompt_tokens": "s.prompt_tokens", "response_tokens": "s.completion_tokens",
    "reasoning_tokens": "s.reasoning_tokens", "energy_wh": "s.energy_wh",
    "energy_method": "s.energy_method", "cost_usd": "s.cost_usd", "retries": "s.retries",
    "attempt": "s.attempt",
}  # fmt: skip
# Each run's figures, computed once per run (MATERIALIZED) and joined to its samples.
_RUNS_CTE = (
    "WITH r AS MATERIALIZED (SELECT run_id, model_name AS model, "
    "COALESCE(json_extract(config_json, '$.backend_options.preset'), "
    "json_extract(config_json, '$.backend_options.provider'), backend) AS provider, "
    "backend, task, settings_label, COALESCE((SELECT group_concat(value, ';') FROM "
    "(SELECT value FROM json_each(config_json, '$.model.tags') ORDER BY key)), '') "
    "AS model_categories FROM runs) "
)
_RUN_COLUMNS = ("model", "provider", "backend", "task", "settings_label", "model_categories")
_NUMERIC = "('integer', 'real', 'true', 'false')"
# The first row of the typed query (Arrow reader): one value of each column's type.
_SENTINEL = {"int": "0", "float": "0.0", "bool": "0", "str": "''"}


def _kind(column: str) -> str:
    """Score columns are numbers; the rest as ``_TYPES`` says, else text."""
    return _TYPES.get(column, "str" if column in RECORD_COLUMNS else "float")


def _query(scores: list[str], since: float | None, typed: bool) -> tuple[str, tuple[Any, ...]]:
    """The export's one SELECT (``RECORD_COLUMNS`` then ``scores``) and its parameters.

    ``typed``: for the Arrow reader, which takes each column's type from the values of
    its first batch (a column that is NULL there would be read as integers and a later
    real would fail): a first row of typed placeholders, sorted first (an order key of
    -inf, the last column), that the reader drops. It leaves out the run's columns
    (``_RUN_COLUMNS``), which ``_with_runs`` joins in Arrow."""
    names = [*RECORD_COLUMNS, *scores]
    exprs = [
        *_SELECT.values(),
        *(
            f"CASE WHEN json_type(s.scores_json, ?) IN {_NUMERIC} "
            "THEN json_extract(s.scores_json, ?) * 1.0 END"
            for _ in scores
        ),
    ]
    params: list[Any] = [p for key in scores for p in (_path(key), _path(key))]
    where = ""
    if since is not None:
        where = "WHERE COALESCE(s.received_at, s.created_at) >= ? "
        params.append(since)
    if not typed:
        columns = ", ".join(f"{e} AS {_ident(n)}" for e, n in zip(exprs, names, strict=True))
        body = f"FROM samples AS s LEFT JOIN r ON r.run_id = s.run_id {where}"
        return f"{_RUNS_CTE}SELECT {columns} {body}ORDER BY s.created_at", tuple(params)
    kept = [(e, n) for e, n in zip(exprs, names, strict=True) if n not in _RUN_COLUMNS]
    first = ", ".join(f"{_SENTINEL[_kind(n)]} AS {_ident(n)}" for _, n in kept)
    rest = ", ".join(e for e, _ in kept)
    sql = (
        f"SELECT {first}, -9e999 AS _fleetbench_order "
        f"UNION ALL SELECT {rest}, s.created_at FROM samples AS s {where}ORDER BY _fleetbench_order"
    )
    return sql, tuple(params)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _rows(store: Store, scores: list[str], since: float | None) -> Iterator[list[tuple[Any, ...]]]:
    """Batches of record tuples (``RECORD_COLUMNS`` then ``scores``), computed in SQL,
    read by the caller inside one read transaction (see ``_snapshot``)."""
    sql, params = _query(scores, since, typed=False)
    cur = store.conn.execute(sql, params)
    try:
        while batch := cur.fetchmany(BATCH):
            yield [tuple(row) for row in batch]
    finally:
        cur.close()


@contextmanager
def _snapshot(store: Store) -> Iterator[None]:
    """One read transaction: the score columns and every row come from the same state
    of the store, even while a batch is adding samples (WAL: the writer never waits)."""
    db = store.conn
    if db.in_transaction:
        yield
        return
    db.execute("BEGIN")
    try:
        yield
    finally:
        db.execute("ROLLBACK")  # nothing was written


def _path(key: str) -> str:
    return '$."' + key.replace('"', '""') + '"'


def records(store: Store, since: float | None = None) -> Iterator[dict[str, Any]]:
    """Every sample (of every round) as an export record, oldest first."""
    with _snapshot(store):
        scores = score_columns(store)
        columns = [*RECORD_COLUMNS, *scores]
        success = columns.index("success")
        for batch in _rows(store, scores, since):
            for row in batch:
                record = dict(zip(columns, row, strict=True))
                record["success"] = bool(row[success])
                yield record


def export_samples(store: Store, path: Path, fmt: str, since: float | None = None) -> int:
    """Write the records to ``path`` in ``fmt``; the number of records."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: unknown; valid: {', '.join(FORMATS)}")
    with atomic_path(path) as tmp:
        if fmt == "parquet":
            return _parquet(store, tmp, since)
        count = 0
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            if fmt == "csv":
                with _snapshot(store):
                    scores = score_columns(store)
                    columns = [*RECORD_COLUMNS, *scores]
                    success = columns.index("success")
                    writer = csv.writer(f, lineterminator="\n")  # None is written empty
                    writer.writerow(columns)
                    for batch in _rows(store, scores, since):
                        writer.writerows(
                            (*row[:success], "true" if row[success] else "false",
                             *row[success + 1 :])
                            for row in batch
                        )  # fmt: skip
                        count += len(batch)
            else:
                for record in records(store, since):
                    f.write(json.dumps(record, ensure_ascii=False) + "\n")
                    count += 1
        return count


def _parquet(store: Store, path: Path, since: float | None) -> int:
    """Columnar, one row group per batch, zstd level 1 (the fastest level; the file is
    about a fifth of its uncompressed size). With ``adbc-driver-sqlite`` the rows go
    from SQLite straight into Arrow batches (no Python object per value: ~3x faster
    on a million samples); without it, Python tuples are converted per column."""
    try:
        import pyarrow as pa  # type: ignore[import-untyped, import-not-found, unused-ignore]
        import pyarrow.parquet as pq  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError:
        raise ConfigError(f"--format parquet needs pyarrow; run: {PARQUET_HINT}") from None
    kinds = {"int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(), "str": pa.string()}
    count = 0
    with _arrow_batches(store, since) as (columns, batches):
        types = [kinds[_kind(c)] for c in columns]
        schema = pa.schema(list(zip(columns, types, strict=True)))
        with pq.ParquetWriter(str(path), schema, compression="zstd", compression_level=1) as writer:
            for batch in batches:
                # Arrow batches: cast each column (0/1 to bool; ints a REAL column held
                # are already doubles); tuples: build each column from Python values.
                arrays = (
                    [batch.column(c).cast(t) for c, t in zip(columns, types, strict=True)]
                    if isinstance(batch, pa.RecordBatch)
                    else [
                        pa.array(col, type=pa.int8()).cast(t)
                        if t == pa.bool_()
                        else pa.array(col, type=t)
                        for col, t in zip(zip(*batch, strict=True), types, strict=True)
                    ]
                )
                writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=schema))
                count += len(batch)
            if not count:
                writer.write_table(schema.empty_table())
    return count


@contextmanager
def _arrow_batches(store: Store, since: float | None) -> Iterator[tuple[list[str], Iterator[Any]]]:
    """The columns and their batches, read in one transaction: Arrow record batches
    from the ADBC SQLite driver (its own read-only connection) where it is installed,
    else lists of tuples from the store's connection."""
    try:
        from adbc_driver_sqlite import dbapi  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError:
        with _snapshot(store):
            scores = score_columns(store)
            yield [*RECORD_COLUMNS, *scores], _rows(store, scores, since)
        return
    # autocommit off: the driver opens a (deferred) transaction, so every query below
    # reads one snapshot; closing the connection ends it.
    uri = f"{store.path.resolve().as_uri()}?mode=ro"
    with dbapi.connect(uri) as conn, conn.cursor() as cur:
        cur.execute("PRAGMA busy_timeout=60000")
        cur.execute(_SCORE_KEYS, _NUMERIC_JSON)
        scores = _score_names(r[0] for r in cur.fetchall())
        # The runs in one batch (types are inferred from all of them), as text.
        cur.execute("SELECT count(*) FROM runs")
        (count,) = cur.fetchone() or (0,)
        cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(count + 1)})
        cur.execute(f"{_RUNS_CTE}SELECT run_id, {', '.join(_RUN_COLUMNS)} FROM r")
        runs = cur.fetch_arrow_table()
        sql, params = _query(scores, since, typed=True)
        cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(ARROW_BATCH)})
        cur.execute(sql, params)
        yield [*RECORD_COLUMNS, *scores], _with_runs(cur.fetch_record_batch(), runs)


def _with_runs(reader: Any, runs: Any) -> Iterator[Any]:
    """The typed query's batches without its placeholder row (``_query``), each with
    its run's columns looked up by ``run_id`` (a LEFT JOIN: unknown runs are null)."""
    import pyarrow as pa  # type: ignore[import-untyped, import-not-found, unused-ignore]
    import pyarrow.compute as pc  # type: ignore[import-untyped, import-not-found, unused-ignore]

    ids = runs.column("run_id").combine_chunks().cast(pa.string())
    values = [runs.column(c).combine_chunks().cast(pa.string()) for c in _RUN_COLUMNS]
    first = True
    for batch in reader:
        if first:
            batch, first = batch.slice(1), False
        if not batch.num_rows:
            continue
        index = pc.index_in(batch.column("run_id"), value_set=ids)
        yield pa.RecordBatch.from_arrays(
            [*batch.columns, *(v.take(index) for v in values)],
            names=[*batch.schema.names, *_RUN_COLUMNS],
        )
