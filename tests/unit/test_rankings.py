"""Rankings and Pareto sets per task, and the comparison records built from them."""

from __future__ import annotations

from typing import Any

from fleetbench.report.comparison import category_rows, scaling_rows
from fleetbench.report.energy import gpu_power_columns
from fleetbench.report.rankings import pareto, run_ranks, task_rankings


def run(run_id: str, task: str = "t", **figures: Any) -> dict[str, Any]:
    return {"run_id": run_id, "model_name": run_id, "task": task, "status": "completed"} | figures


def test_pareto_keeps_only_runs_no_other_beats_on_both() -> None:
    runs = [
        run("cheap-bad", quality_score=0.2, wh_per_1000_queries=1.0),
        run("mid", quality_score=0.5, wh_per_1000_queries=2.0),
        run("dominated", quality_score=0.4, wh_per_1000_queries=3.0),  # mid beats it
        run("tie-worse", quality_score=0.5, wh_per_1000_queries=2.5),  # same score, costlier
        run("best", quality_score=0.9, wh_per_1000_queries=9.0),
        run("unmetered", quality_score=1.0),  # no energy: not on the energy frontier
        run("failed", quality_score=1.0, wh_per_1000_queries=0.1, status="failed"),
    ]
    assert pareto(runs, "wh_per_1000_queries") == ["cheap-bad", "mid", "best"]


def test_rankings_are_per_task_best_first_and_skip_unknown_figures() -> None:
    runs = [
        run("a", avg_latency_seconds=2.0, cost_usd=None, quality_score=0.5),
        run("b", avg_latency_seconds=1.0, cost_usd=0.01, quality_score=0.7),
        run("c", task="other", avg_latency_seconds=0.1, quality_score=0.1),
    ]
    ranked = task_rankings(runs)
    assert list(ranked) == ["t", "other"]
    fastest = ranked["t"]["rankings"]["fastest"]
    assert [(e["run_id"], e["rank"]) for e in fastest] == [("b", 1), ("a", 2)]
    assert [e["run_id"] for e in ranked["t"]["rankings"]["cheapest"]] == ["b"]
    assert ranked["t"]["pareto"]["latency"] == ["b"]
    ranks = run_ranks(ranked)
    assert ranks["a"] == {"rank_best_score": 2, "rank_fastest": 2}
    assert ranks["c"]["rank_fastest"] == 1 and ranks["c"]["pareto_latency"] is True


def test_rankings_within_each_model_category() -> None:
    runs = [
        run("fast-a", categories="fast", quality_score=0.4, avg_latency_seconds=0.5),
        run("both", categories="fast;coding", quality_score=0.8, avg_latency_seconds=2.0),
        run("coder", categories="coding", quality_score=0.6, avg_latency_seconds=1.0),
        run("plain", quality_score=0.9),  # no categories: only in the task's rankings
        run("failed", categories="fast", quality_score=1.0, status="failed"),
    ]
    groups = task_rankings(runs)["t"]["by_category"]
    assert list(groups) == ["coding", "fast"]
    assert groups["fast"]["runs"] == ["fast-a", "both", "failed"]
    best = groups["fast"]["rankings"]["best_score"]
    assert [(e["run_id"], e["rank"]) for e in best] == [("both", 1), ("fast-a", 2)]
    assert [e["run_id"] for e in groups["coding"]["rankings"]["fastest"]] == ["coder", "both"]
    assert task_rankings([run("x")])["t"]["by_category"] == {}


def test_category_rows_one_per_run_and_sample_category() -> None:
    group = {"samples": 2, "succeeded": 2, "success_rate": 1.0, "avg_latency_seconds": 0.3,
             "avg_ttft_seconds": None, "scores": {"correct": 0.5}}  # fmt: skip
    rows = [run("a", categories="fast", by_category={"math": group, "words": group}), run("b")]
    header, out = category_rows(rows)
    assert header[-1] == "score_correct" and "categories" in header
    assert [(r["run_id"], r["category"], r["categories"], r["score_correct"]) for r in out] == [
        ("a", "math", "fast", 0.5), ("a", "words", "fast", 0.5)]  # fmt: skip
    assert category_rows([run("b")]) == (header[:-1], [])


def test_gpu_power_and_scaling_rows() -> None:
    measured = {"gpu_energy_gross_wh": 0.5, "generation_seconds": 60.0, "gpu_peak_power_w": 80.0}
    assert gpu_power_columns(measured) == {
        "gpu_avg_power_w": 30.0,
        "gpu_peak_power_w": 80.0,
        "gpu_power_reason": "",
    }
    none = gpu_power_columns({"gpu_energy_gross_wh": None})
    assert none["gpu_avg_power_w"] is None and none["gpu_power_reason"] == "no GPU energy measured"
    rows = [
        {"task": "t", "family": "qwen3", "params_b": 8.0, "run_id": "big"},
        {"task": "t", "family": "qwen3", "params_b": 0.6, "run_id": "small"},
        {"task": "t", "family": "llama", "params_b": 1.0, "run_id": "alone"},
    ]
    assert [r["run_id"] for r in scaling_rows(rows)] == ["small", "big"]


def test_audit_checks_across_runs() -> None:
    from fleetbench.report.audit import Thresholds, _duplicates, _energy_methods, _latency

    runs = [
        run("a", avg_latency_seconds=1.0, energy_wh=1.0, energy_method="rapl"),
        run("b", avg_latency_seconds=1.2, energy_wh=1.0, energy_method="estimate"),
        run("c", avg_latency_seconds=9.0, energy_wh=None, energy_method="none"),
    ]
    slow = _latency(runs, Thresholds())
    assert [(f.run_id, f.check) for f in slow] == [("c", "latency")]
    assert not _latency(runs, Thresholds(latency_factor=10))
    (mixed,) = _energy_methods(runs)
    assert "estimate, rapl" in mixed.message  # c has no energy: not a method of the task
    configs = {
        "a": {"config_json": '{"model": {"id": "x"}, "run_id": "a", "settings_label": "one"}'},
        "b": {"config_json": '{"model": {"id": "x"}, "run_id": "b", "settings_label": "two"}'},
        "c": {"config_json": '{"model": {"id": "y"}, "run_id": "c"}'},
    }
    (dup,) = _duplicates(runs, configs)  # type: ignore[arg-type]
    assert "run ids a, b" in dup.message


def test_peak_power_needs_every_gpu_sampled() -> None:
    from fleetbench.report.energy import _peak_power

    devices = [
        {"id": "gpu0", "kind": "gpu"},
        {"id": "gpu1", "kind": "gpu"},
        {"id": "cpu", "kind": "cpu"},
    ]
    records = [{"peak_power_w": {"gpu0": 300.0, "gpu1": 50.0}}, {"peak_power_w": {"gpu0": 400.0}}]
    assert _peak_power(records, devices) == 350.0  # the second attempt lacks gpu1
    assert _peak_power([{}], devices) is None  # stored before peaks were recorded
