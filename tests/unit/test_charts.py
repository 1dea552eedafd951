"""Chart definitions on data the e2e runs do not have (sizes, costs, rounds), rendered to
SVG and PNG by vl-convert: each spec is valid Vega-Lite and draws something."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_store import RUN, sample

from fleetbench.report.matrix import Matrix
from fleetbench.store import COMPLETED, Store

pytest.importorskip("altair")
pytest.importorskip("vl_convert")

from fleetbench.report import charts, render
from fleetbench.report.aggregate import summarize_run
from fleetbench.report.page import round_rows


def record(name: str, params: float, score: float, cost: float) -> dict[str, Any]:
    return {
        "run_id": name,
        "model_name": name,
        "task": "wattbot",
        "backend": "openai",
        "status": "completed",
        "where": "local",
        "params_b": params,
        "quality_score": score,
        "cost_usd": cost,
        "score_value_accuracy": score,
        "score_ref_overlap": score / 2,
        "score_na_recall": 1.0,
    }


def rendered(chart: Any, folder: Path, name: str) -> None:
    assert chart is not None, name
    png, svg = render.save(chart.to_dict(), folder, name)
    assert png.stat().st_size > 2000 and "<path" in svg.read_text(), name


def test_size_cost_matrix_and_round_charts(tmp_path: Path) -> None:
    records = [record("small", 0.5, 0.2, 0.01), record("big", 8.0, 0.6, 0.2)]
    rendered(charts.size_vs_components(records, "wattbot"), tmp_path, "components")
    rendered(charts.size_score_cost(records, "wattbot"), tmp_path, "bubbles")
    assert charts.size_vs_components(records[:1], "wattbot") is None  # one size: no series

    matrix = Matrix(
        task="custom",
        header=[
            "sample_id",
            "sample_index",
            "question",
            "a prediction",
            "a correct",
            "b prediction",
            "b correct",
        ],
        rows=[["q1", 0, "?", "x", 1, "y", 0], ["q2", 1, "?", "x", 1, "y", 1]],
    )
    rendered(charts.only_one_solved(matrix), tmp_path, "only-one")

    store = Store(tmp_path / "db" / "fleetbench.db")
    store.begin_batch("b1", "plan", "test", {}, {}, {})
    store.upsert_run(RUN | {"config": {"energy": {}}}, "b1", 2)
    attempt = store.start_attempt("r1", "b1", {})
    for rnd, start in ((1, 1000.0), (2, 4600.0)):
        for i in range(2):
            t = start + i
            store.add_sample(sample(i, attempt, round=rnd, sent_at=t, received_at=t + 0.1 * rnd))
    store.finish_attempt("r1", attempt, COMPLETED, None)
    summary = summarize_run(store, store.runs()[0])
    assert [f["round"] for f in summary["round_series"]] == [1, 2]  # summary.json
    rows, note = round_rows([summary])
    assert note == "one point per round"
    assert [(r["round"], r["success_rate"]) for r in rows] == [(1, 1.0), (2, 1.0)]
    assert rows[1]["p50_latency_s"] == pytest.approx(0.1)  # the stored latency_s
    rendered(charts.rounds_over_time(rows, subtitle=note), tmp_path, "rounds")
    assert round_rows([summary | {"round_series": []}]) == ([], "one point per round")
    # Past max_series runs: per round, the median, p10 and p90 across the runs.
    other = summary | {"model_name": "other", "round_series": [
        f | {"p50_latency_s": 0.5} for f in summary["round_series"]]}  # fmt: skip
    fleet, note = round_rows([summary, other], max_series=1)
    assert note.startswith("2 runs: median, p10 and p90 across runs")
    assert [(r["label"], r["round"]) for r in fleet[:3]] == [
        ("fleet median", 1), ("fleet p10", 1), ("fleet p90", 1)]  # fmt: skip
    assert fleet[3]["p50_latency_s"] == pytest.approx((0.1 + 0.5) / 2)
    assert fleet[3]["started"] == rows[1]["started"]
    store.close()


def test_ensemble_gain(tmp_path: Path) -> None:
    a, b = record("a", 1.0, 0.4, 0.0), record("b", 2.0, 0.5, 0.0)
    vote = record("vote", 1.0, 0.7, 0.0) | {"ensemble_members": ["a", "b"]}
    chart = charts.ensemble_gain([a, b, vote], "wattbot")
    spec = chart.to_dict()
    rows = spec["datasets"][spec["data"]["name"]]  # altair moves inline data to datasets
    assert {r["ensemble"] for r in rows} == {"vote (gain +0.2)"}
    assert sorted((r["run"], r["role"]) for r in rows) == [
        ("a", "member"), ("b", "member"), ("vote", "ensemble")]  # fmt: skip
    rendered(chart, tmp_path, "gain")
    assert charts.ensemble_gain([a, b], "wattbot") is None


def test_category_correctness(tmp_path: Path) -> None:
    def groups(**scores: float) -> dict[str, Any]:
        return {c: {"samples": 2, "scores": {"correct": v, "latency": 3.0}}
                for c, v in scores.items()}  # fmt: skip

    a = record("a", 1.0, 0.5, 0.0) | {"task": "custom", "quality_metric": "correct",
                                      "by_category": groups(math=1.0, words=0.25)}  # fmt: skip
    b = record("b", 2.0, 0.5, 0.0) | {"task": "custom", "by_category": groups(math=0.0)}
    unscored = record("c", 1.0, 0.5, 0.0) | {"task": "custom", "by_category": {"x": {"samples": 1}}}
    chart = charts.category_correctness([a, b, unscored], "custom")
    spec = chart.to_dict()
    rows = spec["datasets"][spec["data"]["name"]]
    assert sorted((r["label"], r["category"], r["score"]) for r in rows) == [
        ("a", "math", 1.0), ("a", "words", 0.25), ("b", "math", 0.0)]  # fmt: skip
    assert {r["metric"] for r in rows} == {"correct"}  # the per-sample metric, not latency
    assert "correctness by category" in spec["title"]["text"]
    rendered(chart, tmp_path, "by-category")
    assert charts.category_correctness([unscored], "custom") is None
    assert charts.category_correctness([a], "wattbot") is None  # no run of that task
    # A task without a per-sample metric: the run's quality metric.
    t = a | {"task": "textgen", "quality_metric": "latency"}
    spec = charts.category_correctness([t], "textgen").to_dict()
    assert {r["score"] for r in spec["datasets"][spec["data"]["name"]]} == {3.0}
    assert any(name == "category-correctness" for name, _ in charts.TASK_CHARTS)
