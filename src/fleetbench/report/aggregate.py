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
from fleetbench.report.energy import energy_columns, gpu_power_columns
from fleetbench.report.load import load_figures
from fleetbench.report.rounds import by_round, round_spread
from fleetbench.report.server_timing import server_timing
from fleetbench.report.timing import distributions, percentile_columns, speed_figures
from fleetbench.report.tokens import token_totals
from fleetbench.store import Store
from fleetbench.tasks import primary_metric, retrieval_corpus, run_scores


def summarize_run(store: Store, run: sqlite3.Row) -> dict[str, Any]:
    """Aggregate a run over the samples of its current plan (index < planned_samples),
    every round pooled: ``total_prompts`` is the planned samples times the rounds."""
    config = json.loads(run["config_json"])
    energy_config = config.get("energy") or {}
    grid = carbon.from_config(energy_config)
    per_round = int(run["planned_samples"])
    samples = store.samples(run["run_id"], below=per_round)
    spread = round_spread(samples, per_round)
    planned = per_round * spread["rounds"]
    ok = [s for s in samples if s["error"] is None]
    attempts = store.attempts(run["run_id"])

    tokens = token_totals(samples, run["backend"])
    latencies = [s["latency_s"] for s in ok if s["latency_s"] is not None]
    ttfts = [s["ttft_s"] for s in ok if s["ttft_s"] is not None]

    energy = energy_columns(samples, attempts, bool(energy_config.get("client_only")))
    energy_wh, gpu_wh = energy["energy_wh"], energy["gpu_energy_wh"]

    loads = [a["load_time_s"] for a in attempts if a["load_time_s"] is not None]
    rss = [a["peak_rss_mb"] for a in attempts if a["peak_rss_mb"] is not None]
    split = _reasoning_split(samples)
    dists = distributions(ok)
    speed = speed_figures(samples, ok, tokens.ok_completion)
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
        "run_id": run["run_id"],
        "backend": run["backend"],
        "avg_ttft_seconds": _mean(ttfts),
        "energy_method": energy.pop("energy_method") or NONE,
        "status": run["status"],
        "settings_label": run["settings_label"],
        "samples_stored": len(samples),
        "samples_with_error": len(samples) - len(ok),
        "energy_wh": energy_wh,
        **energy,
        "cpu_seconds": _complete_sum(samples, "cpu_seconds"),
        "load_time_seconds": loads[-1] if loads else None,
        "peak_rss_mb": max(rss) if rss else None,
        "attempts": len(attempts),
        **split,
        **_serving(samples, ok, attempts),
        "token_count_source": tokens.source,
        "token_count_unknown_reason": tokens.unknown_reason,
        **_quality(run["task"], per_round, samples),
        "retrieval_corpus": retrieval_corpus(run["task"], config.get("task_options") or {}),
        **derive(
            DerivedInputs(
                net_energy_wh=gpu_wh if gpu_wh is not None else energy_wh,
                total_energy_wh=energy_wh,
                prompts=len(samples),
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
        "by_category": by_category(store, run["run_id"], per_round),
        **server_timing(store, run["run_id"], per_round),  # Ollama native: server timings
        **load_figures(config, samples, ok, speed["generation_seconds"]),
    }
    return summary | gpu_power_columns(summary)


def _quality(task: str, planned: int, samples: list[sqlite3.Row]) -> dict[str, Any]:
    """Run-level quality from the samples' scores, every round in turn; a sample not
    stored passes None."""
    per_sample: list[Any] = []
    for rows in (by_round(samples) or {1: []}).values():
        by_index = {s["sample_index"]: s["scores_json"] for s in rows}
        per_sample += [json.loads(by_index[i]) if by_index.get(i) else None for i in range(planned)]
    if all(s is None for s in per_sample):
        return {"scores": {}, "quality_metric": "", "quality_score": None}
    scores = run_scores(task, per_sample)
    metric = primary_metric(task) or ""
    return {"scores": scores, "quality_metric": metric, "quality_score": scores.get(metric)}


def _serving(
    samples: list[sqlite3.Row], ok: list[sqlite3.Row], attempts: list[sqlite3.Row]
) -> dict[str, Any]:
    """Cost, inter-token latency, retries and server startup.

    Cost follows the token rule (``report.tokens``): every successful sample must have
    one (a priced model with known counts), else the run's cost is empty, never a
    partial sum; failed samples add theirs where known.
    """
    priced = bool(ok) and all(s["cost_usd"] is not None for s in ok)
    itls = [s["itl_s"] for s in ok if s["itl_s"] is not None]
    startups = [a["startup_s"] for a in attempts if a["startup_s"] is not None]
    return {
        "cost_usd": sum(s["cost_usd"] or 0.0 for s in samples) if priced else None,
        "avg_itl_seconds": _mean(itls),
        "retries": sum(s["retries"] or 0 for s in samples),
        "server_startup_seconds": startups[-1] if startups else None,
    }


def _reasoning_split(samples: list[sqlite3.Row]) -> dict[str, int | None]:
    """Reasoning and answer tokens over the successful samples (failed ones have no
    text to split); empty unless every one has both its reasoning and completion
    count, as for every token total (``report.tokens``)."""
    ok = [s for s in samples if s["error"] is None]
    columns = ("reasoning_tokens", "completion_tokens")
    if not ok or any(s[c] is None for s in ok for c in columns):
        return {"reasoning_tokens": None, "answer_tokens": None}
    reasoning = sum(s["reasoning_tokens"] for s in ok)
    completion = sum(s["completion_tokens"] for s in ok)
    return {"reasoning_tokens": reasoning, "answer_tokens": completion - reasoning}


def _disk(attempts: list[sqlite3.Row]) -> dict[str, Any]:
    size, reason = model_disk(a["details_json"] for a in attempts)
    return {"model_disk_bytes": size, "model_disk_unmeasured_reason": reason}


def _add(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else a + b


def _complete_sum(samples: list[sqlite3.Row], column: str) -> float | None:
    """The column's sum, or None if any sample lacks it (a partial sum reads low)."""
    if not samples or any(s[column] is None for s in samples):
        return None
    return float(sum(s[column] for s in samples))


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def _duration(attempts: list[sqlite3.Row]) -> float:
    """Wall time over all attempts; a killed attempt counts until its last stored sample."""
    return float(sum((a["finished_at"] or a["last_seen_at"]) - a["started_at"] for a in attempts))
