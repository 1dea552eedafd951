"""Exporting after each run re-summarises only what changed, with the same result."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from test_store import RUN, sample

from fleetbench.report import exports
from fleetbench.report.exports import ResultsExporter, export_results
from fleetbench.report.master import MASTER_FILE
from fleetbench.store import COMPLETED, Store


def record_calls(
    monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, which: Callable[..., str]
) -> list[str]:
    """Wrap ``owner.name`` so that each call is listed (``which`` of its arguments, in
    the list returned), then made as before."""
    calls: list[str] = []
    real = getattr(owner, name)

    def recording(*args: Any) -> Any:
        calls.append(which(*args))
        return real(*args)

    monkeypatch.setattr(owner, name, recording)
    return calls


def _count_summaries(monkeypatch: pytest.MonkeyPatch, module: ModuleType) -> list[str]:
    """Each run ``module.summarize_run`` summarises, listed (``record_calls``)."""
    return record_calls(monkeypatch, module, "summarize_run", lambda _, row: row["run_id"])


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
    summarised = _count_summaries(monkeypatch, exports)
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
    monkeypatch.undo()  # the real summarize_run again
    export_results(store, out, [])
    assert (out / MASTER_FILE).read_text() == cached_csv


def test_an_export_after_a_run_reads_only_that_runs_samples(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch exports after each run: the runs neither named nor changed since the
    exporter summarised them cost no query of their samples (their stamps were 0.3 ms
    each, 0.3 s an export of a 1,000-run fleet)."""
    stamped = record_calls(monkeypatch, exports, "samples_stamp", lambda _, row: row["run_id"])
    exporter = ResultsExporter(store, tmp_path / "out")
    exporter.export([])
    assert sorted(stamped) == [f"r{i}" for i in range(6)]
    stamped.clear()
    exporter.export(["r2"])
    assert stamped == ["r2"]
    stamped.clear()
    store.set_run_status("r4", "failed", "boom")  # changed: its cached summary is checked
    exporter.export(["r2"])
    assert sorted(stamped) == ["r2", "r4"]


def _inodes(out: Path) -> dict[str, tuple[int, int]]:
    """Each file's inode and size: replaced, or appended to (new rounds), it changes."""
    return {
        str(p.relative_to(out)): (p.stat().st_ino, p.stat().st_size)
        for p in sorted((out / "runs").rglob("*"))
        if p.is_file()
    }


def test_unchanged_runs_files_are_not_rewritten(store: Store, tmp_path: Path) -> None:
    """A report rewrites a run's sample files only when its samples changed (or a
    file is gone); a fresh export still reads the same."""
    out = tmp_path / "out"
    export_results(store, out, [])
    before = _inodes(out)
    assert "runs/r2/results.jsonl" in before and "runs/r2/.samples-stamp.json" in before
    export_results(store, out, [])
    assert _inodes(out) == before  # nothing changed: nothing replaced

    # r2 gains a round; r4's samples.csv is deleted; r5's results.jsonl is cut short
    a = store.start_attempt("r2", "b1", {}, [2])
    store.add_samples([sample(j, a, run_id="r2", round=2) for j in range(2)])
    store.finish_attempt("r2", a, COMPLETED, None)
    (out / "runs/r4/samples.csv").unlink()
    with open(out / "runs/r5/results.jsonl", "a", encoding="utf-8") as f:
        f.write("\n")
    export_results(store, out, [])
    after = _inodes(out)
    changed = {k for k in before if after.get(k) != before[k]}
    assert {"runs/r2/results.jsonl", "runs/r2/samples.csv", "runs/r2/summary.json"} <= changed
    assert "runs/r4/samples.csv" in changed and "runs/r5/results.jsonl" in changed
    assert not {k for k in changed if k.startswith(("runs/r0/", "runs/r1/", "runs/r3/"))}
    lines = (out / "runs/r2/results.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["round"] for line in lines] == [1, 1, 2, 2]

    # what the skipped files hold is what a report from scratch writes
    fresh = tmp_path / "fresh"
    export_results(store, fresh, [])
    for name in after:
        if not name.endswith(".samples-stamp.json"):
            assert (out / name).read_bytes() == (fresh / name).read_bytes(), name


def test_fresh_run_rewrites_its_files(store: Store, tmp_path: Path) -> None:
    """``--fresh`` deletes a run's samples; the same number stored again is newer."""
    out = tmp_path / "out"
    export_results(store, out, [])
    store.delete_results(["r1"])
    a = store.start_attempt("r1", "b1", {})
    for j in range(2):
        store.add_sample(sample(j, a, run_id="r1", output_text=f"again{j}"))
    store.finish_attempt("r1", a, COMPLETED, None)
    export_results(store, out, [])
    assert "again1" in (out / "runs/r1/results.jsonl").read_text(encoding="utf-8")


def test_the_next_report_reuses_each_unchanged_runs_summary(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new exporter (the next ``fleetbench report``) reads an unchanged run's summary
    from its folder's cache instead of summarising its samples again; a run whose
    samples or row changed, or whose cache is torn, is summarised again."""
    summarised = _count_summaries(monkeypatch, exports)
    out = tmp_path / "out"
    first = export_results(store, out, [])
    assert len(summarised) == 6 and (out / "runs/r0" / exports.SUMMARY_CACHE).is_file()
    master = (out / MASTER_FILE).read_text()

    summarised.clear()
    assert export_results(store, out, []) == first  # the same values, from the caches
    assert summarised == [] and (out / MASTER_FILE).read_text() == master

    a = store.start_attempt("r2", "b1", {}, [2])  # r2 gains a round
    store.add_samples([sample(j, a, run_id="r2", round=2) for j in range(2)])
    store.finish_attempt("r2", a, COMPLETED, None)
    (out / "runs/r4" / exports.SUMMARY_CACHE).write_text('{"made_from": ')  # torn
    with sqlite3.connect(store.path) as db:  # a sample replaced, the run row untouched
        db.execute("UPDATE samples SET created_at = created_at + 1 WHERE run_id = 'r5'")
    summarised.clear()
    # The runs whose cached summary was read.
    read = record_calls(monkeypatch, exports, "_read_cache", lambda path, _: path.parent.name)
    again = export_results(store, out, [])
    assert sorted(summarised) == ["r2", "r4", "r5"]
    # Deciding what to do, run by run: r2's and r5's files were written from other
    # samples, so their caches are not read (they are summarised again, then read).
    assert read[:4] == ["r0", "r1", "r3", "r4"]
    by_id = {s["run_id"]: s for s in again}
    assert by_id["r2"]["rounds"] == 2 and by_id["r2"]["total_prompts"] == 4


def test_the_dashboard_reads_the_cached_summaries(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dashboard's comparison workers read each run's cached summary (made by the
    last batch or report) instead of summarising its samples again."""
    from fleetbench.dashboard import summaries
    from fleetbench.report import aggregate

    exported = {s["run_id"]: s for s in export_results(store, tmp_path, [])}
    summarised = _count_summaries(monkeypatch, aggregate)
    a = store.start_attempt("r3", "b1", {}, [2])  # r3 changed since: summarised
    store.add_samples([sample(j, a, run_id="r3", round=2) for j in range(2)])
    store.finish_attempt("r3", a, COMPLETED, None)
    got = {i: s for i, _, s in summaries.summarize(str(store.path), ["r1", "r3"])}
    assert summarised == ["r3"] and got["r3"]["rounds"] == 2
    assert got["r1"]["total_prompts"] == exported["r1"]["total_prompts"]
    assert got["r1"]["energy_wh"] == exported["r1"]["energy_wh"]
