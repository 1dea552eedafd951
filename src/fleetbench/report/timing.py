"""A run's speed figures from its samples' timings: throughput, request rate,
per-request decode speed, and the distributions of latency, TTFT, ITL and TPOT.

Two speeds, because they answer different questions:

* ``throughput_tokens_per_second`` = completion tokens of the successful samples ÷ the
  run's **generation wall time** (``generation_seconds``): what the server delivered.
  The wall time is, per attempt, first request sent -> last reply received (the
  samples' ``sent_at`` and ``received_at``; failed requests count, they held the
  server too), the union over the attempts of a resumed run, so loading, the idle
  baseline, or the gap between a kill and the resume are not in it. With
  ``concurrency`` N, N requests share that time; dividing by the *sum* of the
  latencies instead (the old definition) counts queueing against the server. At
  concurrency 1 the two agree up to the runner's own time between samples.
* ``per_request_tokens_per_second``: how fast one request decodes once its first token
  is out: Σ (completion tokens - 1) ÷ Σ (latency - TTFT) over the successful samples
  with a TTFT and at least two tokens. The first token belongs to the prefill, which
  TTFT measures; summing before dividing weights each sample by its decode time, so a
  two-token reply cannot dominate. Its per-sample inverse is the time per output
  token (TPOT).

``requests_per_second`` = successful samples ÷ generation wall time.

Distributions (summary.json ``distributions``; p50/p95 of latency and TTFT also in the
master CSV) are over the successful samples: p50/p90/p95/p99 by linear interpolation
between the closest ranks (numpy's default, so p50 of an even count is the mean of
the middle two), and the population standard deviation (the spread of what was
measured, not an estimate for a wider population). Inter-token latency is per sample
its mean gap between streamed chunks, so its distribution is over those means; TPOT
(time per output token) is per sample (latency - TTFT) ÷ (completion tokens - 1).

Unknown stays empty: without timestamps (samples stored before they were recorded)
the wall time, throughput and request rate are empty; without token counts
(``report.tokens``) every token rate is.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

PERCENTILES = (50, 90, 95, 99)
DISTRIBUTIONS = ("latency_s", "ttft_s", "itl_s", "tpot_s")


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) by linear interpolation between closest ranks."""
    if not values:
        return None
    return ranked_percentile(sorted(values), q)


def ranked_percentile(xs: Sequence[float], q: float) -> float:
    """``percentile`` of values already sorted."""
    pos = (len(xs) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def distribution(values: Sequence[float]) -> dict[str, Any]:
    """count, mean, std and the percentiles of some values; None where there are none."""
    if not values:
        return {"count": 0, "mean": None, "std": None, **{f"p{q}": None for q in PERCENTILES}}
    # One sort for every percentile, and float sums: statistics.pstdev's exact
    # fractions were a fifth of summarising a run of 1,000 samples.
    xs = sorted(values)
    mean = math.fsum(xs) / len(xs)
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / len(xs))
    return {"count": len(xs), "mean": mean, "std": std} | {
        f"p{q}": ranked_percentile(xs, q) for q in PERCENTILES
    }


def generation_seconds(samples: list[sqlite3.Row]) -> float | None:
    """Wall time during which requests were out: per attempt first send -> last reply,
    the union over attempts. None when a sample has no timestamps."""
    if not samples or any(s["received_at"] is None for s in samples):
        return None
    spans: dict[int, list[float]] = {}
    for s in samples:
        start = s["sent_at"] if s["sent_at"] is not None else s["received_at"]
        span = spans.setdefault(s["attempt"], [start, s["received_at"]])
        span[0], span[1] = min(span[0], start), max(span[1], s["received_at"])
    return union_length([(a, b) for a, b in spans.values()])


def spans_seconds(spans: list[tuple[float, float]], samples: int, unreplied: int) -> float | None:
    """``generation_seconds`` from the attempts' (first send, last reply) spans
    (``store.aggregates.attempt_spans``), given the number of samples and how many of
    them have no reply time."""
    if not samples or unreplied:
        return None
    return union_length(spans)


def union_length(intervals: list[tuple[float, float]]) -> float:
    """The length of the union of the intervals."""
    intervals = sorted(intervals)
    total, end = 0.0, -math.inf
    for a, b in intervals:
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


def _tpot(latency: float, ttft: float, tokens: int) -> float:
    """Time per output token after the first (``OkColumns.decoding``'s samples only)."""
    return max(latency - ttft, 0.0) / (tokens - 1)


@dataclass(frozen=True)
class OkColumns:
    """The successful samples' round, latency, TTFT, ITL and completion tokens as
    columns, samples in (round, index) order (``store.aggregates.ok_timings``): read
    once, where looking each figure up by name in every sample, figure after figure,
    cost more than the figures."""

    rounds: tuple[int, ...] = ()
    latency: tuple[float | None, ...] = ()
    ttft: tuple[float | None, ...] = ()
    itl: tuple[float | None, ...] = ()
    tokens: tuple[int | None, ...] = ()

    @classmethod
    def of(cls, ok: Sequence[Sequence[Any]]) -> OkColumns:
        """From ``ok_timings``'s rows (their five columns in that order)."""
        return cls(*zip(*ok, strict=True)) if ok else cls()

    @classmethod
    def by_name(cls, ok: Sequence[sqlite3.Row]) -> OkColumns:
        """From rows that have these columns among others (``Store.samples``)."""
        names = ("round", "latency_s", "ttft_s", "itl_s", "completion_tokens")
        return cls(*(tuple(s[name] for s in ok) for name in names))

    def decoding(self) -> list[tuple[float, float, int]]:
        """(latency, TTFT, completion tokens) of the samples that have a time per
        output token (``_tpot``): known latency and TTFT, two tokens or more."""
        return [
            (float(latency), float(ttft), int(count))
            for latency, ttft, count in zip(self.latency, self.ttft, self.tokens, strict=True)
            if latency is not None and ttft is not None and count is not None and count >= 2
        ]


def speed_figures(
    samples: list[sqlite3.Row], ok: list[sqlite3.Row], ok_completion: int | None
) -> dict[str, Any]:
    """The run's throughput, request rate, per-request decode speed and wall time."""
    decoding = OkColumns.by_name(ok).decoding()
    return speed_from(generation_seconds(samples), len(ok), ok_completion, decoding)


def speed_from(
    wall: float | None,
    ok: int,
    ok_completion: int | None,
    decoding: list[tuple[float, float, int]],
) -> dict[str, Any]:
    """``speed_figures`` given the wall time, the number of successful samples and
    their ``OkColumns.decoding``."""
    throughput = rps = None
    if wall:  # None without timestamps; 0 only for a run of instant failures
        throughput = None if ok_completion is None else ok_completion / wall
        rps = ok / wall
    return {
        "generation_seconds": wall,
        "throughput_tokens_per_second": throughput,
        "requests_per_second": rps,
        "per_request_tokens_per_second": None if ok_completion is None else _decode_speed(decoding),
    }


def _decode_speed(decoding: list[tuple[float, float, int]]) -> float | None:
    tokens = seconds = 0.0
    for latency, ttft, count in decoding:
        tokens += count - 1
        seconds += max(latency - ttft, 0.0)
    return tokens / seconds if seconds > 0 else None


def distributions(ok: list[sqlite3.Row]) -> dict[str, dict[str, Any]]:
    """summary.json's ``distributions``: seconds, over the successful samples."""
    return distributions_of(OkColumns.by_name(ok))


def distributions_of(
    ok: OkColumns, decoding: list[tuple[float, float, int]] | None = None
) -> dict[str, dict[str, Any]]:
    """``distributions`` from the successful samples' columns (and their
    ``OkColumns.decoding``, when the caller has it)."""
    columns: dict[str, list[float]] = {
        name: [float(x) for x in values if x is not None]
        for name, values in (("latency_s", ok.latency), ("ttft_s", ok.ttft), ("itl_s", ok.itl))
    }
    decoding = ok.decoding() if decoding is None else decoding
    columns["tpot_s"] = [_tpot(*sample) for sample in decoding]
    return {name: distribution(columns[name]) for name in DISTRIBUTIONS}


def percentile_columns(dists: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    """The master CSV's flat percentile columns."""
    return {
        "p50_latency_seconds": dists["latency_s"]["p50"],
        "p95_latency_seconds": dists["latency_s"]["p95"],
        "p50_ttft_seconds": dists["ttft_s"]["p50"],
        "p95_ttft_seconds": dists["ttft_s"]["p95"],
    }
