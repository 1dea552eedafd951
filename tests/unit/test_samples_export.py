"""``export samples``: csv, jsonl and parquet hold the same records; --since filters;
unknown stays empty; the CLI writes DIR/exports/samples.<ext>."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from conftest import run_cli
from test_store import RUN, sample

from fleetbench.report.samples_export import RECORD_COLUMNS, export_samples
from fleetbench.store import Store

T0 = 1_800_000_000.0


def build(tmp_path: Path) -> Store:
    store = Store(tmp_path / "fleetbench.db")
    store.begin_batch("b1", "plan", "test", {}, {}, {})
    run = RUN | {"config": {"backend_options": {"preset": "groq"}, "model": {"tags": ["fast"]}}}
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
        "groq", "fast", "retail")  # fmt: skip
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
