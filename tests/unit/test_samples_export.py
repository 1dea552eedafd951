"""``export samples``: csv, jsonl and parquet hold the same records; --since filters;
unknown stays empty; the CLI writes DIR/exports/samples.<ext>. Parquet is read into
Arrow by the ADBC SQLite driver (column types fixed even where a column is NULL for a
whole first batch) or, without it, from Python tuples: the same file either way; each
reads one snapshot while a batch writes."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from conftest import run_cli
from test_store import RUN, sample

from fleetbench.errors import ConfigError
from fleetbench.report import samples_export
from fleetbench.report.samples_export import RECORD_COLUMNS, export_samples
from fleetbench.store import Store

T0 = 1_800_000_000.0


def build(tmp_path: Path) -> Store:
    store = Store(tmp_path / "fleetbench.db")
    store.begin_batch("b1", "plan", "test", {}, {}, {})
    tags = {"tags": ["fast", "api"]}
    run = RUN | {"config": {"backend_options": {"preset": "groq"}, "model": tags}}
    store.upsert_run(run, "b1", planned_samples=2)
    store.start_attempt("r1", "b1", {}, [1, 2])
    for r in (1, 2):
        for i in (0, 1):
            scores = json.dumps({"coverage_score": 0.5 * i, "exact": i == 1, "note": "x"})
            store.add_sample(sample(
                i, round=r, received_at=T0 + 100 * r + i, sent_at=T0 + 100 * r + i - 0.1,
                scores_json=scores, error="HTTP 500" if (r, i) == (2, 1) else None,
                completion_tokens=None if (r, i) == (1, 1) else 2,
                input_json=json.dumps({"prompt": "p", "category": "retail"}),
            ))  # fmt: skip
    return store


def test_formats_round_trip(tmp_path: Path) -> None:
    store = build(tmp_path)
    for fmt in ("csv", "jsonl", "parquet"):
        assert export_samples(store, tmp_path / f"s.{fmt}", fmt) == 4
    jsonl = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    parquet = pq.read_table(tmp_path / "s.parquet").to_pylist()
    assert parquet == jsonl
    with open(tmp_path / "s.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == [*RECORD_COLUMNS, "coverage_score", "exact"]  # numeric scores
    first: dict[str, Any] = jsonl[0]
    assert first["timestamp"] == "2027-01-15T08:01:40.000Z" and first["round"] == 1
    assert (first["provider"], first["model_categories"], first["category"]) == (
        "groq", "fast;api", "retail")  # fmt: skip
    assert first["throughput_tps"] == pytest.approx(2 / 0.1)
    assert [(r["round"], r["question"], r["success"]) for r in jsonl] == [
        (1, "0", True), (1, "1", True), (2, "0", True), (2, "1", False)]  # fmt: skip
    assert jsonl[1]["response_tokens"] is None and rows[1]["response_tokens"] == ""  # unknown
    assert jsonl[1]["throughput_tps"] is None
    assert (jsonl[3]["error"], rows[3]["success"], jsonl[3]["exact"]) == ("HTTP 500", "false", 1.0)
    for got, want in zip(rows, jsonl, strict=True):  # csv says the same, as text
        assert float(got["latency_sec"]) == want["latency_sec"] and got["run_id"] == want["run_id"]
        assert float(got["coverage_score"]) == want["coverage_score"]


def test_since_and_cli(tmp_path: Path) -> None:
    build(tmp_path).close()
    proc = run_cli("export", "samples", "-o", str(tmp_path), "--format", "jsonl",
                   "--since", "2027-01-15T08:03:00Z", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = (tmp_path / "exports" / "samples.jsonl").read_text().splitlines()
    assert [json.loads(x)["round"] for x in lines] == [2, 2] and "2 records" in proc.stdout
    bad = run_cli("export", "samples", "-o", str(tmp_path), "--format", "xlsx", cwd=tmp_path)
    assert bad.returncode == 2 and "valid: csv, jsonl, parquet" in bad.stderr
    missing = run_cli("export", "samples", "-o", str(tmp_path / "nope"), cwd=tmp_path)
    assert missing.returncode == 2 and "no results store" in missing.stderr


def without_adbc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "adbc_driver_sqlite", None)  # import fails


def test_parquet_types_without_adbc_and_null_first_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Columns NULL for whole batches, then set (ints stay ints, reals reals) — the Arrow
    reader types each column from its first batch, so batches of 1 row test it."""
    store = build(tmp_path)
    store.add_sample(sample(
        2, round=3, received_at=T0 + 400, itl_s=0.25, reasoning_tokens=7, cost_usd=3,
        energy_wh=None, scores_json=json.dumps({"late": 2}),
    ))  # fmt: skip
    monkeypatch.setattr(samples_export, "ARROW_BATCH", 1)
    assert export_samples(store, tmp_path / "adbc.parquet", "parquet") == 5
    assert export_samples(store, tmp_path / "s.jsonl", "jsonl") == 5
    without_adbc(monkeypatch)
    assert export_samples(store, tmp_path / "py.parquet", "parquet") == 5
    adbc, py = pq.read_table(tmp_path / "adbc.parquet"), pq.read_table(tmp_path / "py.parquet")
    assert adbc.equals(py) and adbc.schema == py.schema
    jsonl = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert adbc.to_pylist() == jsonl
    last = jsonl[-1]
    assert (last["itl_sec"], last["reasoning_tokens"], last["cost_usd"]) == (0.25, 7, 3.0)
    assert (last["energy_wh"], last["late"], jsonl[0]["late"]) == (None, 2.0, None)
    types = {f.name: str(f.type) for f in adbc.schema}
    assert (types["itl_sec"], types["reasoning_tokens"], types["success"]) == (
        "double", "int64", "bool")  # fmt: skip
    assert (types["late"], types["question"]) == ("double", "string")
    empty = tmp_path / "empty.parquet"
    assert export_samples(store, empty, "parquet", since=T0 + 10_000) == 0
    assert pq.read_table(empty).schema == py.schema


@pytest.mark.parametrize("adbc", [True, False])
def test_parquet_reads_one_snapshot_while_a_batch_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, adbc: bool
) -> None:
    """Samples committed mid-export (after the score columns are found, and after the
    first batch) are not in it: one read transaction from the first query to the last row."""
    if adbc:
        pytest.importorskip("adbc_driver_sqlite")
    else:
        without_adbc(monkeypatch)
    store = build(tmp_path)
    monkeypatch.setattr(samples_export, "ARROW_BATCH", 1)
    monkeypatch.setattr(samples_export, "BATCH", 1)
    writer = Store(tmp_path / "fleetbench.db")
    query = samples_export._query

    def write_then_query(*args: Any, **kwargs: Any) -> Any:
        writer.add_sample(sample(5, round=3, scores_json=json.dumps({"new": 1})))
        return query(*args, **kwargs)

    monkeypatch.setattr(samples_export, "_query", write_then_query)
    with samples_export._arrow_batches(store, None) as (columns, batches):
        seen = len(next(batches))
        writer.add_sample(sample(6, round=3))
        seen += sum(len(b) for b in batches)
    writer.close()
    assert (seen, "new" in columns) == (4, False)
    monkeypatch.setattr(samples_export, "_query", query)
    assert export_samples(store, tmp_path / "after.parquet", "parquet") == 6


def test_parquet_needs_pyarrow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = build(tmp_path)
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(
        ConfigError, match=r"needs pyarrow; run: pip install 'fleetbench\[parquet\]'"
    ):
        export_samples(store, tmp_path / "s.parquet", "parquet")
    assert not (tmp_path / "s.parquet").exists()
