"""Spread across a run's rounds: how much latency, success and throughput drift when
the same run is measured again (``--repeat``, schedules).

The run's own figures (``report.aggregate``) pool every round's samples; these columns
say how far single rounds stray from each other. With one round there is no spread:
they are empty, so a store without rounds reads as before.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from fleetbench.report.timing import OkColumns, generation_seconds, percentile, spans_seconds
from fleetbench.store.aggregates import RoundStats

ROUND_COLUMNS: list[str] = [
    "rounds",
    "round_p50_latency_min_seconds",
    "round_p50_latency_max_seconds",
    "round_p95_latency_min_seconds",
    "round_p95_latency_max_seconds",
    "round_success_rate_min",
    "round_success_rate_max",
    "round_throughput_min_tokens_per_second",
    "round_throughput_max_tokens_per_second",
]


def by_round(samples: list[sqlite3.Row]) -> dict[int, list[sqlite3.Row]]:
    """The samples grouped by round, rounds in order."""
    groups: dict[int, list[sqlite3.Row]] = {}
    for s in samples:
        groups.setdefault(int(s["round"]), []).append(s)
    return dict(sorted(groups.items()))


@dataclass(frozen=True)
class RoundFigures:
    """One round's inputs to the spread: its successful samples' latencies, how many
    succeeded, their completion tokens (None if one lacks its count) and the round's
    generation wall time (``report.timing``)."""

    latencies: list[float]
    ok: int
    ok_completion: int | None
    wall: float | None
    number: int = 1
    first_sent: float | None = None  # the round's first request (epoch s)


def round_spread(samples: list[sqlite3.Row], planned: int) -> dict[str, Any]:
    """``rounds`` (rounds with a stored sample) and the min/max over rounds of each
    round's p50/p95 latency (successful samples), success rate (successes ÷ planned
    samples per round) and throughput (completion tokens ÷ generation wall time)."""
    figures = []
    for rows in by_round(samples).values():
        ok = [s for s in rows if s["error"] is None]
        tokens = [s["completion_tokens"] for s in ok]
        figures.append(
            RoundFigures(
                latencies=[float(s["latency_s"]) for s in ok if s["latency_s"] is not None],
                ok=len(ok),
                ok_completion=None if any(t is None for t in tokens) else sum(tokens),
                wall=generation_seconds(rows),
            )
        )
    return spread_from(figures, planned)


def round_figures(rounds: list[RoundStats], ok: OkColumns) -> list[RoundFigures]:
    """Each round's figures from its counts and spans (``store.aggregates.round_stats``)
    and the successful samples' timings."""
    if len(rounds) < 2:  # no spread: only the count of rounds is used
        return [RoundFigures([], 0, None, None, r.round) for r in rounds]
    latencies: dict[int, list[float]] = {}
    for number, latency in zip(ok.rounds, ok.latency, strict=True):
        if latency is not None:
            latencies.setdefault(int(number), []).append(float(latency))
    return [
        RoundFigures(
            latencies=latencies.get(r.round, []),
            ok=r.ok,
            ok_completion=None if r.ok_no_completion else r.ok_completion,
            wall=spans_seconds(list(r.spans.values()), r.n, r.no_received),
            number=r.round,
            first_sent=r.first_sent,
        )
        for r in rounds
    ]


def spread_from(figures: list[RoundFigures], planned: int) -> dict[str, Any]:
    """``round_spread`` from each round's figures, rounds in order."""
    out: dict[str, Any] = dict.fromkeys(ROUND_COLUMNS)
    out["rounds"] = max(len(figures), 1)
    if len(figures) < 2:
        return out
    p50s, p95s, rates, speeds = [], [], [], []
    for f in figures:
        if f.latencies:
            p50s.append(percentile(f.latencies, 50))
            p95s.append(percentile(f.latencies, 95))
        rates.append(f.ok / planned if planned else 0.0)
        speed = round_throughput(f)
        if speed is not None:
            speeds.append(speed)
    for name, values in (
        ("round_p50_latency", p50s),
        ("round_p95_latency", p95s),
        ("round_throughput", speeds),
    ):
        unit = "_tokens_per_second" if name == "round_throughput" else "_seconds"
        clean = [v for v in values if v is not None]
        out[f"{name}_min{unit}"] = min(clean) if clean else None
        out[f"{name}_max{unit}"] = max(clean) if clean else None
    out["round_success_rate_min"], out["round_success_rate_max"] = min(rates), max(rates)
    return out


def round_series(figures: list[RoundFigures], planned: int) -> list[dict[str, Any]]:
    """Each round's own figures, for charts over time (``summary.json``'s ``per_round``):
    round number, first request (epoch s), p50 latency, throughput and success rate.
    Empty with fewer than two rounds, like the spread."""
    if len(figures) < 2:
        return []
    return [
        {
            "round": f.number,
            "first_sent": f.first_sent,
            "p50_latency_s": percentile(f.latencies, 50),
            "throughput": round_throughput(f),
            "success_rate": f.ok / planned if planned else None,
        }
        for f in figures
        if f.first_sent is not None
    ]


def round_throughput(f: RoundFigures) -> float | None:
    """Completion tokens ÷ generation wall time (``report.timing.speed_figures``)."""
    if not f.wall or f.ok_completion is None:
        return None
    return f.ok_completion / f.wall
