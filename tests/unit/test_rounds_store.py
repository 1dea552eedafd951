"""Rounds in the store: (run, round, index) keys, and the migration of a store written
before rounds existed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from test_store import RUN, sample

from fleetbench.store import SAMPLE_FIELDS, Store
from fleetbench.store.migrations import MIGRATIONS


def test_one_index_per_round(tmp_path: Path) -> None:
    store = Store(tmp_path / "fleetbench.db")
    store.begin_batch("b1", "plan", "test", {}, {}, {})
    store.upsert_run(RUN, "b1", planned_samples=2)
    store.start_attempt("r1", "b1", {}, [1, 2])
    assert store.add_sample(sample(0))
    assert store.add_sample(sample(0, round=2))
    assert not store.add_sample(sample(0, round=2, output_text="again"))  # no duplicate
    assert store.add_sample(sample(1, round=2))
    assert store.done_keys("r1") == {(1, 0), (2, 0), (2, 1)}
    assert store.done_indices("r1", 2) == {0, 1} and store.done_indices("r1") == {0}
    assert store.count_stored("r1", [1, 2], 2) == 3 and store.count_stored("r1", [2], 1) == 1
    assert store.last_round("r1") == 2
    assert [(s["round"], s["sample_index"]) for s in store.samples("r1")] == [
        (1, 0),
        (2, 0),
        (2, 1),
    ]
    assert [s["output_text"] for s in store.samples("r1", round=2)] == ["out0", "out1"]
    assert store.attempts("r1")[0]["rounds"] == "[1, 2]"


def test_migration_of_a_store_without_rounds(tmp_path: Path) -> None:
    """A store as the previous version left it (migrations 001-007, samples keyed by
    (run, index)) opens with its samples as round 1, nothing lost, new rounds addable."""
    db = tmp_path / "fleetbench.db"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at REAL)")
    before = [(n, sql) for n, sql in MIGRATIONS if n < "008"]
    assert len(before) == 7
    for name, sql in before:
        for statement in filter(str.strip, sql.split(";")):
            conn.execute(statement)
        conn.execute("INSERT INTO schema_migrations VALUES (?, 0)", (name,))
    conn.execute("INSERT INTO batches VALUES ('b0','p','s','{}','{}','{}',1,2,'completed')")
    conn.execute(
        "INSERT INTO runs (run_id, seq, batch_id, model_name, model_class, task, "
        "reasoning_state, backend, settings_label, config_json, planned_samples, status, "
        "created_at, updated_at) VALUES ('r1',1,'b0','m','','textgen','','llamacpp','','{}',"
        "2,'completed',1,2)"
    )
    for i in range(2):
        conn.execute(
            "INSERT INTO samples (run_id, sample_index, sample_id, attempt, input_json, "
            "output_text, latency_s, energy_method, created_at, retries, sent_at, received_at,"
            " cost_usd) VALUES ('r1', ?, ?, 1, '{}', ?, 0.5, 'estimate', 3, 2, 1, 1.5, 0.25)",
            (i, str(i), f"old{i}"),
        )
    conn.close()

    store = Store(db)
    assert "008_rounds" in store.schema_version()
    rows = store.samples("r1")
    assert [(r["round"], r["sample_index"], r["output_text"]) for r in rows] == [
        (1, 0, "old0"),
        (1, 1, "old1"),
    ]
    assert (rows[0]["retries"], rows[0]["sent_at"], rows[0]["cost_usd"]) == (2, 1.0, 0.25)
    columns = {r[1] for r in store.conn.execute("PRAGMA table_info(samples)")}
    assert columns == {*SAMPLE_FIELDS, "created_at", "category"}
    pk = [
        r[1]
        for r in sorted(store.conn.execute("PRAGMA table_info(samples)"), key=lambda r: r[5])
        if r[5]
    ]
    assert pk == ["run_id", "round", "sample_index"]
    store.start_attempt("r1", "b0", {}, [2])
    assert store.add_sample(sample(0, round=2))
    assert store.count_stored("r1", [1], 2) == 2 and store.count_stored("r1", [2], 2) == 1
    store.close()
    assert Store(db).schema_version() == [n for n, _ in MIGRATIONS]  # applied once
