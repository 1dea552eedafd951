"""Exporting after each run re-summarises only what changed, with the same result."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from test_store import RUN, sample

from fleetbench.report import exports
from fleetbench.report.exports import ResultsExporter, export_results
from fleetbench.report.master import MASTER_FILE
from fleetbench.store import COMPLETED, Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "fleetbench.db")
    s.begin_batch("b1", "plan", "test", {}, {}, {})
    for i in range(6):
        run_id = f"r{i}"
        s.upsert_run(RUN | {"run_id": run_id, "config": {"energy": {}}}, "b1", 2)
        a = s.start_attempt(run_id, "b1", {})
        for j in range(2):
            s.add_sample(sample(j, a, run_id=run_id, energy_wh=1e-4 * (i + 1)))
        s.finish_attempt(run_id, a, COMPLETED, None)
    return s


def test_only_the_named_or_changed_runs_are_summarised_again(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summarised: list[str] = []
    real = exports.summarize_run

    def counting(s: Store, row: sqlite3.Row) -> dict[str, Any]:
        summarised.append(row["run_id"])
        return real(s, row)

    monkeypatch.setattr(exports, "summarize_run", counting)
    out = tmp_path / "out"
    exporter = ResultsExporter(store, out)
    first = exporter.export([])
    assert sorted(summarised) == [f"r{i}" for i in range(6)]
    assert [s["energy_stars"] for s in first] == [5, 4, 3, 2, 1, 1]  # six runs, one group

    summarised.clear()
    exporter.export(["r1"])  # a run finished: only it is summarised again
    assert summarised == ["r1"]

    summarised.clear()
    store.set_run_status("r3", "failed", "boom")  # its row changed: summarised again
    again = exporter.export(["r1"])
    assert sorted(summarised) == ["r1", "r3"]
    # Stars are re-rated across the cached summaries: r3 no longer takes part.
    by_id = {s["run_id"]: s for s in again}
    assert by_id["r3"]["energy_stars"] is None
    assert [by_id[f"r{i}"]["energy_stars"] for i in (0, 1, 2, 4, 5)] == [5, 4, 3, 1, 1]

    # Same files as an export from scratch.
    cached_csv = (out / MASTER_FILE).read_text()
    monkeypatch.setattr(exports, "summarize_run", real)
    export_results(store, out, [])
    assert (out / MASTER_FILE).read_text() == cached_csv
