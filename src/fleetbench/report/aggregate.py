"""Per-run aggregates computed from the stored samples: the numbers every output shows."""

from __future__ import annotations

import json
import sqlite3
import statistics
from datetime import UTC, datetime
from typing import Any

from fleetbench.meters import carbon
from fleetbench.meters.derived import DerivedInputs, derive
from fleetbench.meters.disk import model_disk
from fleetbench.meters.energy import NONE
from fleetbench.report.categories import by_category
from fleetbench.report.energy import EnergyCounts, energy_columns_from, gpu_power_columns
from fleetbench.report.load import LoadInputs, load_figures
from fleetbench.report.rounds import round_figures, round_series, spread_from
from fleetbench.report.server_timing import SERVER_TIMING_COLUMNS, server_timing
from fleetbench.report.timing import (
    OkColumns,
    distributions_of,
    percentile_columns,
    spans_seconds,
    speed_from,
)
from fleetbench.report.tokens import TokenCounts, totals_from
from fleetbench.store import Store, aggregates
from fleetbench.tasks import primary_metric, retrieval_corpus, run_scores


def summarize_run(store: Store, run: sqlite3.Row) -> dict[str, Any]:
    """Aggregate a run over the samples of its current plan (index < planned_samples),
    every round pooled: ``total_prompts`` is the planned samples times the rounds.

    Counts and sums come from SQLite (``store.aggregates``); only the successful
    samples' latency, TTFT, ITL and token count (for the distributions) and the stored
    scores (for the task's own aggregation) are read into Python.
    """
    config = json.loads(run["config_json"])
    energy_config = config.get("energy") or {}
    grid = carbon.from_config(energy_config)
    per_round, run_id, db = int(run["planned_samples"]), run["run_id"], store.conn
    stats = aggregates.run_stats(db, run_id, per_round)
    ok = aggregates.ok_timings(db, run_id, per_round)
    columns = OkColumns.of(ok)
    decoding = columns.decoding()
    rounds = aggregates.round_stats(db, run_id, per_round)
    figures = round_figures(rounds, columns)
    spread = spread_from(figures, per_round)
    planned = per_round * spread["rounds"]
    attempts = store.attempts(run_id)
    n = int(stats["n"])

    tokens = totals_from(_token_counts(stats), run["backend"])
    latencies = [x for x in columns.latency if x is not None]
    ttfts = [x for x in columns.ttft if x is not None]

    energy = energy_columns_from(
        _energy_counts(stats), attempts, bool(energy_config.get("client_only"))
    )
    energy_wh, gpu_wh = energy["energy_wh"], energy["gpu_energy_wh"]

    loads = [a["load_time_s"] for a in attempts if a["load_time_s"] is not None]
    rss = [a["peak_rss_mb"] for a in attempts if a["peak_rss_mb"] is not None]
    split = _reasoning_split(stats)
    dists = distributions_of(columns, decoding)
    wall = spans_seconds(aggregates.attempt_spans(rounds), n, int(stats["no_received"]))
    speed = speed_from(wall, len(ok), tokens.ok_completion, decoding)
    summary: dict[str, Any] = {
        "model_name": run["model_name"],
        "model_class": run["model_class"],
        "task": run["task"],
        "reasoning_state": run["reasoning_state"],
        "total_prompts": planned,
        "successful_prompts": len(ok),
        "failed_prompts": planned - len(ok),
        "total_duration_seconds": _duration(attempts),
        "avg_latency_seconds": _mean(latencies),
        "total_tokens": _add(tokens.prompt, tokens.completion),
        "total_prompt_tokens": tokens.prompt,
        "total_completion_tokens": tokens.completion,
        **speed,
        **percentile_columns(dists),
        "distributions": dists,
        "gpu_energy_wh": gpu_wh,
        "timestamp": datetime.fromtimestamp(run["updated_at"], UTC).isoformat(timespec="seconds"),
        "error_message": run["error_message"] or "",
        "run_id": run_id,
        "backend": run["backend"],
        "avg_ttft_seconds": _mean(ttfts),
        "energy_method": energy.pop("energy_method") or NONE,
        "status": run["status"],
        "settings_label": run["settings_label"],
        "samples_stored": n,
        "samples_with_error": n - len(ok),
        "energy_wh": energy_wh,
        **energy,
        "cpu_seconds": _complete_sum(stats, "cpu_seconds"),
        "load_time_seconds": loads[-1] if loads else None,
        "peak_rss_mb": max(rss) if rss else None,
        "attempts": len(attempts),
        **split,
        **_serving(stats, columns, attempts),
        "token_count_source": tokens.source,
        "token_count_unknown_reason": tokens.unknown_reason,
        **_quality(run["task"], per_round, [r.round for r in rounds], db, run_id),
        "retrieval_corpus": retrieval_corpus(run["task"], config.get("task_options") or {}),
        **derive(
            DerivedInputs(
                net_energy_wh=gpu_wh if gpu_wh is not None else energy_wh,
                total_energy_wh=energy_wh,
                prompts=n,
                completion_tokens=tokens.completion,
                reasoning_tokens=split["reasoning_tokens"],
                answer_tokens=split["answer_tokens"],
                carbon_g_per_kwh=grid.g_per_kwh,
            )
        ),
        "carbon_region": grid.region,
        "carbon_intensity_g_per_kwh": grid.g_per_kwh,
        "carbon_intensity_source": grid.source,
        **_disk(attempts),
        # Catalogue categories (tags), ';'-joined: the master CSV groups runs by them.
        "categories": ";".join((config.get("model") or {}).get("tags") or []),
        **spread,
        "round_series": round_series(figures, per_round),  # summary.json only: nested
        # Categories, server timings (Ollama native) and send lags are scanned for only
        # when the run's counts say some sample has them.
        "by_category": by_category(store, run_id, per_round) if stats["categorised"] else {},
        **(
            server_timing(store, run_id, per_round)
            if stats["ok_server_timed"]
            else dict.fromkeys(SERVER_TIMING_COLUMNS)
        ),
        **load_figures(
            config,
            LoadInputs(
                samples=n,
                ok=columns,
                lags_ms=aggregates.send_lags_ms(db, run_id, per_round) if stats["lagged"] else [],
                ok_replies=int(stats["ok_received"]),
                first_reply=stats["ok_first_received"],
                last_reply=stats["ok_last_received"],
            ),
            speed["generation_seconds"],
        ),
    }
    return summary | gpu_power_columns(summary)


def _token_counts(stats: dict[str, Any]) -> TokenCounts:
    return TokenCounts(
        ok=int(stats["ok"]),
        ok_no_prompt=int(stats["ok_no_prompt"]),
        ok_no_completion=int(stats["ok_no_completion"]),
        prompt_sum=int(stats["prompt_sum"] or 0),
        completion_sum=int(stats["completion_sum"] or 0),
        ok_completion_sum=int(stats["ok_completion_sum"] or 0),
        sources=frozenset(s for s in stats["token_sources"] if s),
    )


def _energy_counts(stats: dict[str, Any]) -> EnergyCounts:
    return EnergyCounts(
        samples=int(stats["n"]),
        methods=frozenset(stats["energy_methods"]),
        known={c: int(stats[f"{c}_count"]) for c in aggregates.ENERGY_COLUMNS},
        sums={c: stats[f"{c}_sum"] for c in aggregates.ENERGY_COLUMNS},
    )


def _quality(
    task: str, planned: int, rounds: list[int], db: sqlite3.Connection, run_id: str
) -> dict[str, Any]:
    """Run-level quality from the samples' scores, every round (with a stored sample)
    in turn; a sample not stored passes None."""
    slot = {number: k * planned for k, number in enumerate(rounds or [1])}
    per_sample: list[Any] = [None] * (len(slot) * planned)
    parsed: dict[str, Any] = {}  # the same scores text decoded once (0/1 scores repeat)
    for number, index, text in aggregates.stored_scores(db, run_id, planned):
        if (value := parsed.get(text)) is None:
            value = parsed[text] = json.loads(text)
        per_sample[slot[number] + index] = dict(value) if isinstance(value, dict) else value
    if all(s is None for s in per_sample):
        return {"scores": {}, "quality_metric": "", "quality_score": None}
    scores = run_scores(task, per_sample)
    metric = primary_metric(task) or ""
    return {"scores": scores, "quality_metric": metric, "quality_score": scores.get(metric)}


def _serving(stats: dict[str, Any], ok: OkColumns, attempts: list[sqlite3.Row]) -> dict[str, Any]:
    """Cost, inter-token latency, retries and server startup.

    Cost follows the token rule (``report.tokens``): every successful sample must have
    one (a priced model with known counts), else the run's cost is empty, never a
    partial sum; failed samples add theirs where known.
    """
    priced = bool(ok.rounds) and not stats["ok_no_cost"]
    itls = [x for x in ok.itl if x is not None]
    startups = [a["startup_s"] for a in attempts if a["startup_s"] is not None]
    return {
        "cost_usd": float(stats["cost_total"]) if priced else None,
        "avg_itl_seconds": _mean(itls),
        "retries": int(stats["retries"]),
        "server_startup_seconds": startups[-1] if startups else None,
    }


def _reasoning_split(stats: dict[str, Any]) -> dict[str, int | None]:
    """Reasoning and answer tokens over the successful samples (failed ones have no
    text to split); empty unless every one has both its reasoning and completion
    count, as for every token total (``report.tokens``)."""
    if not stats["ok"] or stats["ok_no_reasoning"] or stats["ok_no_completion"]:
        return {"reasoning_tokens": None, "answer_tokens": None}
    reasoning = int(stats["ok_reasoning_sum"] or 0)
    completion = int(stats["ok_completion_sum"] or 0)
    return {"reasoning_tokens": reasoning, "answer_tokens": completion - reasoning}


def _disk(attempts: list[sqlite3.Row]) -> dict[str, Any]:
    size, reason = model_disk(a["details_json"] for a in attempts)
    return {"model_disk_bytes": size, "model_disk_unmeasured_reason": reason}


def _add(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else a + b


def _complete_sum(stats: dict[str, Any], column: str) -> float | None:
    """The column's sum, or None if any sample lacks it (a partial sum reads low)."""
    if not stats["n"] or stats[f"{column}_count"] < stats["n"]:
        return None
    return float(stats[f"{column}_sum"])


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def _duration(attempts: list[sqlite3.Row]) -> float:
    """Wall time over all attempts; a killed attempt counts until its last stored sample."""
    return float(sum((a["finished_at"] or a["last_seen_at"]) - a["started_at"] for a in attempts))
