"""The SQLite store: migrations, no duplicates, atomic forgetting."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from fleetbench.errors import StoreError
from fleetbench.store import COMPLETED, SAMPLE_FIELDS, SampleRow, Store
from fleetbench.store.migrations import MIGRATIONS

RUN = {
    "run_id": "r1",
    "model_name": "m",
    "model_class": "",
    "task": "textgen",
    "reasoning_state": "",
    "backend": "llamacpp",
    "settings_label": "",
    "config": {},
}


def sample(index: int, attempt: int = 1, **extra: Any) -> SampleRow:
    row: dict[str, Any] = {
        "run_id": "r1",
        "sample_index": index,
        "sample_id": str(index),
        "attempt": attempt,
        "input_json": "{}",
        "output_text": f"out{index}",
        "prompt_tokens": 3,
        "completion_tokens": 2,
        "latency_s": 0.1,
        "ttft_s": 0.01,
        "finish_reason": "stop",
        "cpu_seconds": 0.2,
        "energy_wh": 1e-4,
        "energy_method": "estimate",
        "scores_json": None,
        "error": None,
    }
    return SampleRow(**(row | extra))


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "fleetbench.db")
    s.begin_batch("b1", "plan", "test", {}, {}, {})
    s.upsert_run(RUN, "b1", planned_samples=3)
    return s


def test_migrations_apply_once(tmp_path: Path, store: Store) -> None:
    assert store.schema_version() == [name for name, _ in MIGRATIONS]
    store.close()
    again = Store(tmp_path / "fleetbench.db")  # reopening applies nothing twice
    assert again.schema_version() == [name for name, _ in MIGRATIONS]
    assert again.get_run("r1")["planned_samples"] == 3  # type: ignore[index]


def test_store_from_newer_version_is_refused(tmp_path: Path, store: Store) -> None:
    store.conn.execute("INSERT INTO schema_migrations VALUES ('999_future', 0)")
    store.close()
    with pytest.raises(StoreError, match="newer fleetbench"):
        Store(tmp_path / "fleetbench.db")


def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "fleetbench.db"
    path.write_text("this is not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot open results store"):
        Store(path)


def test_a_sample_is_never_stored_twice(store: Store) -> None:
    attempt = store.start_attempt("r1", "b1", {})
    assert store.add_sample(sample(0, attempt))
    assert not store.add_sample(sample(0, attempt, output_text="different"))
    rows = store.samples("r1")
    assert len(rows) == 1 and rows[0]["output_text"] == "out0"
    assert store.done_indices("r1") == {0}


def test_attempts_and_forgetting(store: Store) -> None:
    a1 = store.start_attempt("r1", "b1", {"host": "x"})
    store.add_sample(sample(0, a1))
    store.finish_attempt("r1", a1, COMPLETED, None)
    a2 = store.start_attempt("r1", "b1", {})
    assert (a1, a2) == (1, 2)
    assert store.get_run("r1")["status"] == "running"  # type: ignore[index]
    store.delete_results(["r1"])
    assert store.samples("r1") == [] and store.attempts("r1") == []
    assert store.get_run("r1")["status"] == "pending"  # type: ignore[index]


def test_upsert_keeps_history(store: Store) -> None:
    a = store.start_attempt("r1", "b1", {})
    store.add_sample(sample(0, a))
    store.begin_batch("b2", "plan", "test", {}, {}, {})
    store.upsert_run(RUN, "b2", planned_samples=5)
    run = store.get_run("r1")
    assert run is not None and (run["batch_id"], run["planned_samples"], run["seq"]) == ("b2", 5, 1)
    assert len(store.samples("r1")) == 1
    assert len(store.samples("r1", below=0)) == 0


def test_wal_mode(store: Store) -> None:
    conn = sqlite3.connect(store.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_store_of_the_first_schema_migrates(tmp_path: Path) -> None:
    """A results folder written before 002_reasoning opens, keeps its samples, and
    takes the new columns."""
    path = tmp_path / "fleetbench.db"
    old = sqlite3.connect(path)
    name, sql = MIGRATIONS[0]
    assert name == "001_initial"
    old.executescript(sql)
    old.execute("CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
    old.execute("INSERT INTO schema_migrations VALUES ('001_initial', 0)")
    old.execute("INSERT INTO batches VALUES ('b1', 'p', 't', '{}', '{}', '{}', 0, NULL, 'done')")
    old.execute(
        "INSERT INTO runs VALUES ('r1', 1, 'b1', 'm', '', 'textgen', '', 'llamacpp', '', "
        "'{}', 3, 'completed', NULL, 0, 0)"
    )
    old.execute(
        "INSERT INTO samples VALUES ('r1', 0, '0', 1, '{}', 'old', 3, 2, 0.1, 0.01, 'stop', "
        "0.2, 1e-4, 'estimate', NULL, NULL, 0)"
    )
    old.commit()
    old.close()

    store = Store(path)
    assert store.schema_version() == [name for name, _ in MIGRATIONS]
    columns = {r["name"] for r in store.conn.execute("PRAGMA table_info(samples)")}
    assert {"answer_text", "reasoning_text", "reasoning_tokens"} <= columns
    (before,) = store.samples("r1")
    assert before["output_text"] == "old" and before["reasoning_tokens"] is None
    store.add_sample(sample(1, answer_text="4", reasoning_text="2 + 2 = 4.", reasoning_tokens=7))
    after = store.samples("r1")[1]
    assert (after["answer_text"], after["reasoning_text"], after["reasoning_tokens"]) == (
        "4",
        "2 + 2 = 4.",
        7,
    )


def test_a_sample_missing_a_required_field_is_refused() -> None:
    row = dataclasses.asdict(sample(0))
    del row["output_text"]
    with pytest.raises(TypeError, match="output_text"):
        SampleRow(**row)


def test_sample_row_matches_the_migrated_schema(store: Store) -> None:
    """One field per column (the store stamps ``created_at`` and derives ``category``),
    so a migration that adds a column without the field, or the reverse, fails here."""
    columns = [r["name"] for r in store.conn.execute("PRAGMA table_info(samples)")]
    stamped = {"created_at", "category"}  # the store's own: the time, input_json's category
    assert sorted(SAMPLE_FIELDS) == sorted(c for c in columns if c not in stamped)
    assert "created_at" in columns
    # NOT NULL columns without a default are fields every writer must state.
    required = {
        r["name"]
        for r in store.conn.execute("PRAGMA table_info(samples)")
        if r["notnull"] and r["dflt_value"] is None and r["name"] != "created_at"
    }
    no_default = {
        f.name
        for f in dataclasses.fields(SampleRow)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    assert required <= no_default


def test_a_stored_sample_reads_back_as_the_same_row(store: Store) -> None:
    a = store.start_attempt("r1", "b1", {})
    row = sample(0, a, answer_text="4", itl_s=0.02, token_source="usage", retries=1)
    store.add_sample(row)
    (stored,) = store.samples("r1")
    assert SampleRow.from_db(stored) == row


def test_upsert_refreshes_the_stored_config(store: Store) -> None:
    """Settings outside a run's identity (energy) follow the latest plan that selects it."""
    store.upsert_run(RUN | {"config": {"energy": {"carbon_region": "FR"}}}, "b1", 3)
    run = store.get_run("r1")
    assert run is not None and json.loads(run["config_json"])["energy"]["carbon_region"] == "FR"
    first = run["settings_at"]
    assert store.set_run_energy("r1", {"carbon_region": "DE"})
    assert not store.set_run_energy("absent", {})
    run = store.get_run("r1")
    assert run is not None and json.loads(run["config_json"])["energy"] == {"carbon_region": "DE"}
    assert run["settings_at"] >= first


def test_dead_attempts_and_batches_are_marked_interrupted(store: Store) -> None:
    a = store.start_attempt("r1", "b1", {})
    store.add_sample(sample(0, a))
    store.update_attempt("r1", a, last_seen_at=store.attempts("r1")[0]["started_at"] + 7.0)
    # kill -9: nothing else happens; the next batch, holding the lock, cleans up
    assert store.interrupt_dead() == 1
    (attempt,) = store.attempts("r1")
    assert attempt["status"] == "interrupted"
    assert attempt["finished_at"] == attempt["last_seen_at"]  # ends at its last heartbeat
    assert attempt["finished_at"] - attempt["started_at"] == pytest.approx(7.0)
    assert "last seen 20" in attempt["error_message"]
    run = store.get_run("r1")
    assert run is not None and run["status"] == "interrupted"
    assert run["error_message"].endswith("re-run to resume")
    (batch,) = store.conn.execute("SELECT * FROM batches").fetchall()
    assert (batch["status"], batch["finished_at"]) == ("interrupted", attempt["last_seen_at"])
    assert store.interrupt_dead() == 0  # nothing left running


def test_interrupt_running_ends_only_this_batchs_rows(store: Store) -> None:
    a = store.start_attempt("r1", "b1", {})
    store.interrupt_running("b2", "interrupted by the user")
    assert store.attempts("r1")[0]["status"] == "running"
    store.interrupt_running("b1", "interrupted by the user")
    (attempt,) = store.attempts("r1")
    assert (attempt["attempt"], attempt["status"]) == (a, "interrupted")
    assert attempt["finished_at"] is not None
    run = store.get_run("r1")
    assert run is not None and run["status"] == "interrupted"
