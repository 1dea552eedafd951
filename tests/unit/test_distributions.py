"""Per-run distributions: percentiles and spreads against values computed by hand."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from test_store import RUN, sample

from fleetbench.report import MASTER_COLUMNS, summarize_run, write_master_csv
from fleetbench.report.timing import distribution, percentile
from fleetbench.store import Store


def test_percentiles_by_hand() -> None:
    xs = [1.0, 2.0, 3.0, 4.0]  # positions (n-1)*q: p50 1.5, p90 2.7, p95 2.85, p99 2.97
    assert percentile(xs, 50) == pytest.approx(2.5)
    assert percentile(xs, 90) == pytest.approx(3.7)
    assert percentile(xs, 95) == pytest.approx(3.85)
    assert percentile(xs, 99) == pytest.approx(3.97)
    assert percentile(xs, 0) == 1.0 and percentile(xs, 100) == 4.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == pytest.approx(2.5)  # order does not matter
    # 11 values 0..10 (shuffled): rank positions land on the values themselves
    eleven = [7.0, 3.0, 10.0, 0.0, 5.0, 1.0, 9.0, 2.0, 8.0, 4.0, 6.0]
    assert percentile(eleven, 90) == pytest.approx(9.0)
    assert percentile(eleven, 95) == pytest.approx(9.5)
    assert percentile([0.25], 99) == 0.25  # one value is every percentile
    assert percentile([], 50) is None


def test_distribution_spread_by_hand() -> None:
    d = distribution([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0])
    # mean 5; squared deviations 9+1+1+1+0+0+4+16 = 32; population variance 32/8 = 4
    assert (d["count"], d["mean"], d["std"]) == (8, 5.0, 2.0)
    assert d["p50"] == pytest.approx(4.5)  # middle two: 4 and 5
    assert d["p90"] == pytest.approx(7.6)  # position 6.3: 7 + 0.3 x (9 - 7)
    assert d["p95"] == pytest.approx(8.3)  # position 6.65
    assert d["p99"] == pytest.approx(8.86)  # position 6.93
    empty = distribution([])
    assert empty["count"] == 0 and all(empty[k] is None for k in ("mean", "std", "p50", "p99"))


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "fleetbench.db")
    s.begin_batch("b1", "plan", "test", {}, {}, {})
    s.upsert_run(RUN | {"config": {}}, "b1", planned_samples=6)
    return s


def test_run_distributions_in_summary_csv_and_table(store: Store, tmp_path: Path) -> None:
    a = store.start_attempt("r1", "b1", {})
    # (latency, ttft, itl, completion tokens) of four successful samples
    rows = [(1.0, 0.1, 0.02, 10), (2.0, 0.2, 0.04, 19), (3.0, 0.3, 0.06, 28), (4.0, 0.4, None, 1)]
    for i, (latency, ttft, itl, tokens) in enumerate(rows):
        store.add_sample(
            sample(i, a, latency_s=latency, ttft_s=ttft, itl_s=itl, completion_tokens=tokens)
        )
    store.add_sample(sample(4, a, error="timeout", latency_s=99.0, ttft_s=9.0))  # not counted
    store.add_sample(sample(5, a, ttft_s=None, latency_s=5.0))  # not streamed: no TTFT
    run = store.get_run("r1")
    assert run is not None
    s = summarize_run(store, run)
    d = s["distributions"]
    assert d["latency_s"]["count"] == 5  # 1, 2, 3, 4, 5
    assert d["latency_s"]["p50"] == pytest.approx(3.0)
    assert d["latency_s"]["p95"] == pytest.approx(4.8)  # position 3.8: 4 + 0.8
    assert d["latency_s"]["std"] == pytest.approx(2**0.5)  # population: variance 10/5
    assert d["ttft_s"]["count"] == 4 and d["ttft_s"]["p50"] == pytest.approx(0.25)
    assert d["ttft_s"]["p95"] == pytest.approx(0.385)  # position 2.85: 0.3 + 0.85 x 0.1
    assert d["itl_s"]["count"] == 3 and d["itl_s"]["p99"] == pytest.approx(0.0596)
    # TPOT = (latency - TTFT) / (tokens - 1): 0.9/9, 1.8/18, 2.7/27 = 0.1 each; the
    # one-token reply and the sample without TTFT have none.
    assert d["tpot_s"]["count"] == 3
    assert d["tpot_s"]["p50"] == pytest.approx(0.1) and d["tpot_s"]["std"] == pytest.approx(0)
    assert set(d["latency_s"]) == {"count", "mean", "std", "p50", "p90", "p95", "p99"}
    json.dumps(d)  # summary.json holds it as is

    path = write_master_csv(tmp_path, [s])
    with open(path, newline="") as f:
        row = next(csv.DictReader(f))
    assert float(row["p50_latency_seconds"]) == pytest.approx(3.0)
    assert float(row["p95_latency_seconds"]) == pytest.approx(4.8)
    assert float(row["p50_ttft_seconds"]) == pytest.approx(0.25)
    assert float(row["p95_ttft_seconds"]) == pytest.approx(0.385)
    assert "distributions" not in MASTER_COLUMNS  # nested: summary.json only

    from rich.console import Console

    from fleetbench.cli.tables import summary_table

    console = Console(width=250, record=True)
    console.print(summary_table([s | {"status": "completed", "energy_stars": None}]))
    text = console.export_text()
    assert "latency p50/p95 s" in text and "3.000/4.800" in text and "0.250/0.385" in text


def test_run_without_samples_has_empty_percentiles(store: Store) -> None:
    run = store.get_run("r1")
    assert run is not None
    s = summarize_run(store, run)
    assert s["p50_latency_seconds"] is None and s["distributions"]["ttft_s"]["count"] == 0
