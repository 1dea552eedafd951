"""The run summary from SQL aggregates (``store.aggregates``) equals the per-sample
Python rules it replaced, figure for figure, on a store with every awkward case
(``varied_store``): several rounds, a resumed round, failed samples, unknown tokens,
energy, costs and timestamps, legacy energy rows, an SLO, samples beyond the plan."""

from __future__ import annotations

import json
import math
import sqlite3
import statistics
from pathlib import Path
from typing import Any

import pytest
import varied_store

from fleetbench.report.aggregate import summarize_run
from fleetbench.report.energy import energy_columns
from fleetbench.report.rounds import by_round, round_spread
from fleetbench.report.timing import distributions, percentile, speed_figures
from fleetbench.report.tokens import token_totals
from fleetbench.store import Store
from fleetbench.tasks import run_scores


def reference(store: Store, run: sqlite3.Row) -> dict[str, Any]:
    """The sample-derived figures as the report computed them before: every stored
    row of the run read into Python and looped over."""
    per_round = int(run["planned_samples"])
    samples = store.samples(run["run_id"], below=per_round)
    ok = [s for s in samples if s["error"] is None]
    attempts = store.attempts(run["run_id"])
    config = json.loads(run["config_json"])
    tokens = token_totals(samples, run["backend"])
    energy = energy_columns(
        samples, attempts, bool((config.get("energy") or {}).get("client_only"))
    )
    spread = round_spread(samples, per_round)
    latencies = [s["latency_s"] for s in ok if s["latency_s"] is not None]
    ttfts = [s["ttft_s"] for s in ok if s["ttft_s"] is not None]
    itls = [s["itl_s"] for s in ok if s["itl_s"] is not None]
    per_sample: list[Any] = []
    for rows in (by_round(samples) or {1: []}).values():
        by_index = {s["sample_index"]: s["scores_json"] for s in rows}
        per_sample += [
            json.loads(by_index[i]) if by_index.get(i) else None for i in range(per_round)
        ]
    scores = {} if all(s is None for s in per_sample) else run_scores(run["task"], per_sample)
    split_ok = ok and not any(
        s[c] is None for s in ok for c in ("reasoning_tokens", "completion_tokens")
    )
    priced = bool(ok) and all(s["cost_usd"] is not None for s in ok)
    times = sorted(float(s["received_at"]) for s in ok if s["received_at"] is not None)
    lags = [
        1000.0 * (s["actual_send_at"] - s["intended_send_at"])
        for s in samples
        if s["intended_send_at"] is not None and s["actual_send_at"] is not None
    ]
    cpu = [s["cpu_seconds"] for s in samples]
    return {
        "total_prompts": per_round * spread["rounds"],
        "successful_prompts": len(ok),
        "samples_stored": len(samples),
        "avg_latency_seconds": statistics.fmean(latencies) if latencies else None,
        "avg_ttft_seconds": statistics.fmean(ttfts) if ttfts else None,
        "avg_itl_seconds": statistics.fmean(itls) if itls else None,
        "total_prompt_tokens": tokens.prompt,
        "total_completion_tokens": tokens.completion,
        "token_count_source": tokens.source,
        "token_count_unknown_reason": tokens.unknown_reason,
        **{k: v for k, v in energy.items() if k != "energy_method"},
        **speed_figures(samples, ok, tokens.ok_completion),
        "distributions": distributions(ok),
        **spread,
        "scores": scores,
        "reasoning_tokens": sum(s["reasoning_tokens"] for s in ok) if split_ok else None,
        "cost_usd": sum(s["cost_usd"] or 0.0 for s in samples) if priced else None,
        "retries": sum(s["retries"] or 0 for s in samples),
        "cpu_seconds": None if not cpu or None in cpu else float(sum(cpu)),
        "completion_rps": None
        if len(times) < 2 or times[-1] <= times[0]
        else (len(times) - 1) / (times[-1] - times[0]),
        "send_lag_p50_ms": percentile(lags, 50),
        "send_lag_p99_ms": percentile(lags, 99),
    }


def test_sql_summary_equals_the_per_sample_rules(tmp_path: Path) -> None:
    store = varied_store.build(tmp_path)
    runs = store.runs()
    assert len(runs) == 6
    seen_rounds, seen_none = set(), 0
    for run in runs:
        got, want = summarize_run(store, run), reference(store, run)
        for key, value in want.items():
            assert got[key] == value, (run["run_id"], key)  # exact: the same sums, same order
        seen_rounds.add(got["rounds"])
        seen_none += sum(1 for v in want.values() if v is None)
    # the store does exercise what it claims to
    assert {1, 2, 3} <= seen_rounds and seen_none > 10
    by_id = {r["run_id"]: summarize_run(store, r) for r in runs}
    assert by_id["beta__textgen__greedy"]["total_completion_tokens"] is None  # unknown counts
    assert by_id["beta__textgen__greedy"]["attempts"] == 2  # a resumed round
    assert by_id["eps__textgen__greedy"]["successful_prompts"] == 0
    assert by_id["gamma__textgen__greedy"]["goodput_share"] is not None
    assert by_id["gamma__textgen__greedy"]["send_lag_p50_ms"] is not None
    assert by_id["delta__custom__greedy"]["generation_seconds"] is None  # a sample without times
    assert by_id["alpha__custom__greedy"]["scores"]["accuracy"] > 0
    assert by_id["zeta__textgen__greedy"]["samples_stored"] == 0
    assert not math.isnan(by_id["alpha__custom__greedy"]["round_p50_latency_min_seconds"])


def test_one_attempt_over_several_rounds(tmp_path: Path) -> None:
    """``--repeat K`` measures K rounds in one attempt: the run's wall time is that
    attempt's span, each round's its own part of it."""
    store = varied_store.build(tmp_path)
    run_id = "alpha__custom__greedy"
    a = store.start_attempt(run_id, "b1", {}, [4, 5])
    rows = [
        varied_store.sample_row(run_id, k, i, a, sent_at=2e9 + 10 * k + i, latency=0.5)
        for k in (4, 5)
        for i in range(6)
    ]
    store.add_samples(rows)
    run = store.get_run(run_id)
    assert run is not None
    got, want = summarize_run(store, run), reference(store, run)
    for key, value in want.items():
        assert got[key] == value, key
    assert got["rounds"] == 5


@pytest.mark.parametrize("below", [0, 1])
def test_plans_shorter_than_the_stored_samples(tmp_path: Path, below: int) -> None:
    store = varied_store.build(tmp_path)
    store.conn.execute("UPDATE runs SET planned_samples = ?", (below,))
    for run in store.runs():
        got, want = summarize_run(store, run), reference(store, run)
        for key, value in want.items():
            assert got[key] == value, (run["run_id"], key)
