"""``fleetbench export samples``: one time-series record per stored sample and round.

For dashboards and notebooks: a flat table (CSV, JSON lines or Parquet) with the time
each reply arrived, the round, the run, model and provider, the question and the
sample's figures and scores. Every column is computed by SQLite (the run's figures
from a temporary table joined once), and rows are streamed in ``created_at`` order (an
index) in batches of 20,000 — columnar into Parquet — so a store of millions of
samples never sits in memory at once and no Python loop builds a record per sample
(except for JSON lines, which are one ``json.dumps`` each). The file is written beside
its destination and renamed at the end.

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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fleetbench.errors import ConfigError
from fleetbench.fsutil import atomic_path
from fleetbench.store import Store

FORMATS = ("csv", "jsonl", "parquet")
EXPORTS_DIR = "exports"  # OUTPUT/exports/samples.<format> by default
PARQUET_HINT = "pip install 'fleetbench[parquet]'"
BATCH = 20_000

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


def score_columns(store: Store) -> list[str]:
    """Numeric score keys of every stored sample, sorted (found in SQL, not Python)."""
    rows = store.conn.execute(
        "SELECT DISTINCT j.key FROM samples, json_each(samples.scores_json) AS j "
        f"WHERE samples.scores_json IS NOT NULL AND j.type IN ({','.join('?' * 4)})",
        _NUMERIC_JSON,
    )
    return sorted(str(r[0]) for r in rows if str(r[0]) not in RECORD_COLUMNS)


def _runs(store: Store) -> dict[str, dict[str, Any]]:
    rows = store.conn.execute(
        "SELECT run_id, model_name, backend, task, settings_label, "
        "COALESCE(json_extract(config_json, '$.backend_options.preset'), "
        "json_extract(config_json, '$.backend_options.provider'), backend) AS provider, "
        "json_extract(config_json, '$.model.tags') AS tags FROM runs"
    )
    return {
        r["run_id"]: {
            "model": r["model_name"],
            "provider": r["provider"],
            "backend": r["backend"],
            "task": r["task"],
            "settings_label": r["settings_label"],
            "model_categories": ";".join(json.loads(r["tags"])) if r["tags"] else "",
        }
        for r in rows
    }


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


def _rows(store: Store, scores: list[str], since: float | None) -> Iterator[list[tuple[Any, ...]]]:
    """Batches of record tuples (``RECORD_COLUMNS`` then ``scores``), computed in SQL:
    the run's figures come from a temporary table joined once, not per sample."""
    db = store.conn
    db.execute("DROP TABLE IF EXISTS temp.export_runs")
    db.execute(
        "CREATE TEMP TABLE export_runs (run_id TEXT PRIMARY KEY, model TEXT, provider TEXT, "
        "backend TEXT, task TEXT, settings_label TEXT, model_categories TEXT)"
    )
    db.executemany(
        "INSERT INTO temp.export_runs VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(k, v["model"], v["provider"], v["backend"], v["task"], v["settings_label"],
          v["model_categories"]) for k, v in _runs(store).items()],
    )  # fmt: skip
    numeric = "('integer', 'real', 'true', 'false')"
    score_sql = [
        f"CASE WHEN json_type(s.scores_json, ?) IN {numeric} "
        "THEN json_extract(s.scores_json, ?) * 1.0 END"
        for _ in scores
    ]
    paths = [p for key in scores for p in (_path(key), _path(key))]
    cur = db.execute(
        f"SELECT {', '.join([*_SELECT.values(), *score_sql])} FROM samples AS s "
        "LEFT JOIN temp.export_runs AS r ON r.run_id = s.run_id "
        "WHERE COALESCE(s.received_at, s.created_at) >= ? ORDER BY s.created_at",
        (*paths, since if since is not None else float("-inf")),
    )
    try:
        while batch := cur.fetchmany(BATCH):
            yield [tuple(row) for row in batch]
    finally:
        cur.close()
        db.execute("DROP TABLE IF EXISTS temp.export_runs")


def _path(key: str) -> str:
    return '$."' + key.replace('"', '""') + '"'


def records(store: Store, since: float | None = None) -> Iterator[dict[str, Any]]:
    """Every sample (of every round) as an export record, oldest first."""
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
    scores = score_columns(store)
    columns = [*RECORD_COLUMNS, *scores]
    with atomic_path(path) as tmp:
        if fmt == "parquet":
            return _parquet(tmp, columns, _rows(store, scores, since))
        count = 0
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            if fmt == "csv":
                success = columns.index("success")
                writer = csv.writer(f, lineterminator="\n")  # None is written empty
                writer.writerow(columns)
                for batch in _rows(store, scores, since):
                    writer.writerows(
                        (*row[:success], "true" if row[success] else "false", *row[success + 1 :])
                        for row in batch
                    )
                    count += len(batch)
            else:
                for record in records(store, since):
                    f.write(json.dumps(record, ensure_ascii=False) + "\n")
                    count += 1
        return count


def _cell(value: Any) -> Any:
    """CSV: unknown is empty (never 0); booleans as true/false."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _parquet(path: Path, columns: list[str], batches: Iterator[list[tuple[Any, ...]]]) -> int:
    try:
        import pyarrow as pa  # type: ignore[import-untyped, import-not-found, unused-ignore]
        import pyarrow.parquet as pq  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError:
        raise ConfigError(f"--format parquet needs pyarrow; run: {PARQUET_HINT}") from None
    kinds = {"int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(), "str": pa.string()}
    # Score columns are numbers; the rest as _TYPES says, else text.
    types = [kinds[_TYPES.get(c, "str" if c in RECORD_COLUMNS else "float")] for c in columns]
    schema = pa.schema(list(zip(columns, types, strict=True)))
    count = 0
    with pq.ParquetWriter(str(path), schema, compression="zstd") as writer:
        for batch in batches:
            arrays = [
                pa.array(col, type=pa.int8()).cast(t) if t == pa.bool_() else pa.array(col, type=t)
                for col, t in zip(zip(*batch, strict=True), types, strict=True)
            ]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
            count += len(batch)
        if not count:
            writer.write_table(schema.empty_table())
    return count
