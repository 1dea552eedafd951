"""The stored sample category (migration 013): filled by the store on insert from the
sample's input, backfilled for a store written before, and indexed for the dashboard."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from fleetbench.store import SampleRow, Store
from fleetbench.store.migrations import MIGRATIONS

RUN = {"run_id": "r1", "model_name": "m", "model_class": "", "task": "textgen",
       "reasoning_state": "", "backend": "llamacpp", "settings_label": "",
       "config": {}}  # fmt: skip

INPUTS = {
    0: json.dumps({"prompt": "2 + 2?", "category": "math"}),
    1: json.dumps({"messages": [{"role": "user", "content": "hi"}], "category": "chat"}),
    2: json.dumps({"prompt": "no category here, though the word category is"}),
    3: json.dumps({"prompt": "a number", "category": 7}),
    4: json.dumps(["not", "an", "object"]),
    5: "not json at all",
}
EXPECTED = {0: "math", 1: "chat", 2: None, 3: "7", 4: None, 5: None}


def sample(index: int, **extra: Any) -> SampleRow:
    row: dict[str, Any] = dict(
        run_id="r1", sample_index=index, sample_id=str(index), attempt=1, input_json="{}",
        output_text=f"out{index}", prompt_tokens=3, completion_tokens=2, latency_s=0.1,
        ttft_s=0.01, finish_reason="stop", cpu_seconds=None, energy_wh=1e-4,
        energy_method="estimate", scores_json=None, error=None,
    )  # fmt: skip
    return SampleRow(**(row | extra))


def _categories(store: Store) -> dict[int, str | None]:
    rows = store.conn.execute("SELECT sample_index, category FROM samples ORDER BY sample_index")
    return {r[0]: r[1] for r in rows}


def test_the_store_fills_the_category_from_the_input(tmp_path: Path) -> None:
    store = Store(tmp_path / "fleetbench.db")
    store.begin_batch("b1", "plan", "test", {}, {}, {})
    store.upsert_run(RUN, "b1", planned_samples=6)
    store.add_sample(sample(0, input_json=INPUTS[0]))
    store.add_samples(sample(i, input_json=INPUTS[i]) for i in range(1, 6))
    assert _categories(store) == EXPECTED
    # The same row again is still ignored, not stored twice.
    assert store.add_sample(sample(0, input_json=INPUTS[1])) is False
    assert _categories(store)[0] == "math"


def _store_at_012(path: Path) -> None:
    """A results store as fleetbench wrote it before migration 013, with samples."""
    names = [name for name, _ in MIGRATIONS]
    upto = names.index("012_server_timing") + 1
    old = sqlite3.connect(path, isolation_level=None)
    old.execute("CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
    for name, sql in MIGRATIONS[:upto]:
        for statement in filter(str.strip, sql.split(";")):
            old.execute(statement)
        old.execute("INSERT INTO schema_migrations VALUES (?, 0)", (name,))
    old.execute("INSERT INTO batches VALUES ('b1', 'p', 't', '{}', '{}', '{}', 0, NULL, 'done')")
    old.execute(
        "INSERT INTO runs (run_id, seq, batch_id, model_name, model_class, task, "
        "reasoning_state, backend, settings_label, config_json, planned_samples, status, "
        "created_at, updated_at) VALUES ('r1', 1, 'b1', 'm', '', 'textgen', '', 'llamacpp', "
        "'', '{}', 6, 'completed', 0, 0)"
    )
    for i, text in INPUTS.items():
        old.execute(
            "INSERT INTO samples (run_id, round, sample_index, sample_id, attempt, input_json, "
            "output_text, latency_s, energy_method, error, created_at) "
            "VALUES ('r1', 1, ?, ?, 1, ?, ?, ?, 'estimate', ?, ?)",
            (i, str(i), text, f"out{i}", 0.1 * i, "HTTP 503" if i == 2 else None, 100.0 + i),
        )
    old.close()


def _everything(path: Path) -> list[tuple[object, ...]]:
    """Every stored row of every table but the migrations' own, as plain tuples."""
    db = sqlite3.connect(path)
    tables = [
        r[0]
        for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        if r[0] not in ("schema_migrations", "sqlite_sequence")
    ]
    rows: list[tuple[object, ...]] = []
    for table in tables:
        columns = [r[1] for r in db.execute(f"PRAGMA table_info({table})") if r[1] != "category"]
        rows += [(table, *r) for r in db.execute(f"SELECT {', '.join(columns)} FROM {table}")]
    db.close()
    return sorted(rows, key=repr)


def test_an_older_store_upgrades_keeping_every_result(tmp_path: Path) -> None:
    path = tmp_path / "fleetbench.db"
    _store_at_012(path)
    before = _everything(path)

    store = Store(path)
    assert store.schema_version() == [name for name, _ in MIGRATIONS]
    assert _everything(path) == before  # nothing lost or changed, only the column added
    assert _categories(store) == EXPECTED
    indexes = {
        r[0] for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
    }
    assert {"samples_figures", "samples_failed", "samples_category"} <= indexes
    # New samples of the upgraded store get their category too.
    store.add_sample(sample(6, input_json=json.dumps({"prompt": "x", "category": "late"})))
    assert _categories(store)[6] == "late"
    store.close()
    # Opening it again applies nothing twice.
    assert Store(path).schema_version() == [name for name, _ in MIGRATIONS]


@pytest.mark.parametrize("category", ["math", None])
def test_report_categories_read_the_column(tmp_path: Path, category: str | None) -> None:
    """``report.categories`` groups by the stored column: the same figures as its input."""
    from fleetbench.report.categories import by_category

    store = Store(tmp_path / "fleetbench.db")
    store.begin_batch("b1", "plan", "test", {}, {}, {})
    store.upsert_run(RUN, "b1", planned_samples=3)
    inputs = json.dumps({"prompt": "p", "category": category} if category else {"prompt": "p"})
    store.add_samples(
        sample(i, input_json=inputs, scores_json=json.dumps({"correct": i % 2})) for i in range(3)
    )
    found = by_category(store, "r1", 3)
    if category is None:
        assert found == {}
    else:
        assert found["math"]["samples"] == 3
        assert found["math"]["scores"] == {"correct": pytest.approx(1 / 3)}
