"""``fleetbench export samples``: one time-series record per stored sample and round.

For dashboards and notebooks: a flat table (CSV, JSON lines or Parquet) with the time
each reply arrived, the round, the run, model and provider, the question and the
sample's figures and scores. Rows are streamed from SQLite in ``created_at`` order (an
index) in batches, so a store of millions of samples never sits in memory at once;
the file is written beside its destination and renamed at the end.

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
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
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


def records(store: Store, since: float | None = None) -> Iterator[dict[str, Any]]:
    """Every sample (of every round) as an export record, oldest first."""
    runs = _runs(store)
    scores = score_columns(store)
    cur = store.conn.execute(
        "SELECT run_id, round, sample_index, sample_id, attempt, error, latency_s, ttft_s, "
        "itl_s, prompt_tokens, completion_tokens, reasoning_tokens, energy_wh, energy_method, "
        "cost_usd, retries, scores_json, COALESCE(received_at, created_at) AS at, "
        "json_extract(input_json, '$.category') AS category FROM samples "
        "WHERE COALESCE(received_at, created_at) >= ? ORDER BY created_at",
        (since if since is not None else float("-inf"),),
    )
    while True:
        batch = cur.fetchmany(BATCH)
        if not batch:
            return
        for s in batch:
            yield _record(s, runs.get(s["run_id"]) or {}, scores)


def _record(s: sqlite3.Row, run: dict[str, Any], scores: list[str]) -> dict[str, Any]:
    latency, tokens = s["latency_s"], s["completion_tokens"]
    record: dict[str, Any] = {
        "timestamp": _iso(s["at"]),
        "round": s["round"],
        "run_id": s["run_id"],
        "model": run.get("model"),
        "provider": run.get("provider"),
        "backend": run.get("backend"),
        "task": run.get("task"),
        "settings_label": run.get("settings_label"),
        "category": s["category"] or "",
        "model_categories": run.get("model_categories", ""),
        "question": s["sample_id"],
        "sample_index": s["sample_index"],
        "latency_sec": latency,
        "ttft_sec": s["ttft_s"],
        "itl_sec": s["itl_s"],
        "throughput_tps": tokens / latency if tokens is not None and latency else None,
        "success": s["error"] is None,
        "error": s["error"] or "",
        "prompt_tokens": s["prompt_tokens"],
        "response_tokens": tokens,
        "reasoning_tokens": s["reasoning_tokens"],
        "energy_wh": s["energy_wh"],
        "energy_method": s["energy_method"],
        "cost_usd": s["cost_usd"],
        "retries": s["retries"],
        "attempt": s["attempt"],
    }
    values = json.loads(s["scores_json"]) if s["scores_json"] else {}
    for key in scores:
        value = values.get(key) if isinstance(values, dict) else None
        record[key] = float(value) if isinstance(value, int | float) else None
    return record


def _iso(ts: float) -> str:
    moment = datetime.fromtimestamp(float(ts), UTC).isoformat(timespec="milliseconds")
    return moment.replace("+00:00", "Z")


def export_samples(store: Store, path: Path, fmt: str, since: float | None = None) -> int:
    """Write the records to ``path`` in ``fmt``; the number of records."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: unknown; valid: {', '.join(FORMATS)}")
    columns = [*RECORD_COLUMNS, *score_columns(store)]
    rows = records(store, since)
    with atomic_path(path) as tmp:
        if fmt == "parquet":
            return _parquet(tmp, columns, rows)
        count = 0
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            if fmt == "csv":
                writer = csv.DictWriter(f, columns, lineterminator="\n")
                writer.writeheader()
                for count, r in enumerate(rows, 1):  # noqa: B007
                    writer.writerow({k: _cell(v) for k, v in r.items()})
            else:
                for count, r in enumerate(rows, 1):  # noqa: B007
                    f.write(json.dumps(r, ensure_ascii=False) + "\n")
        return count


def _cell(value: Any) -> Any:
    """CSV: unknown is empty (never 0); booleans as true/false."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _parquet(path: Path, columns: list[str], rows: Iterator[dict[str, Any]]) -> int:
    try:
        import pyarrow as pa  # type: ignore[import-untyped, import-not-found, unused-ignore]
        import pyarrow.parquet as pq  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError:
        raise ConfigError(f"--format parquet needs pyarrow; run: {PARQUET_HINT}") from None
    kinds = {"int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(), "str": pa.string()}
    # Score columns are numbers; the rest as _TYPES says, else text.
    schema = pa.schema(
        [(c, kinds[_TYPES.get(c, "str" if c in RECORD_COLUMNS else "float")]) for c in columns]
    )
    count = 0
    with pq.ParquetWriter(str(path), schema, compression="zstd") as writer:
        chunk: list[dict[str, Any]] = []
        for r in rows:
            chunk.append(r)
            if len(chunk) >= BATCH:
                writer.write_table(pa.Table.from_pylist(chunk, schema=schema))
                count += len(chunk)
                chunk.clear()
        if chunk or not count:
            writer.write_table(pa.Table.from_pylist(chunk, schema=schema))
            count += len(chunk)
    return count
