"""Per-run aggregates of the samples table, computed by SQLite.

A report used to read every column of every sample into Python and loop over them
(445 s for a store of a million samples). These queries return what the report's
rules (``report.tokens``, ``report.energy``, ``report.timing``, ``report.rounds``)
need: counts, sums, spans and the few per-sample numbers a percentile needs. They
read the run's rows through the primary key (``run_id, round, sample_index``), so
sums add up in the same order as a Python loop over ``Store.samples`` did: the
figures are the same, to the last bit (SQLite adds doubles one by one, as Python's
``sum`` does).

Every query takes the run and ``below``: the samples of the current plan
(``sample_index < planned_samples``), every round.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

# Energy columns whose run totals are complete sums (report.energy).
ENERGY_COLUMNS = (
    "energy_wh",
    "gpu_energy_wh",
    "gpu_energy_gross_wh",
    "cpu_energy_wh",
    "cpu_energy_gross_wh",
)
_OK = "error IS NULL"


def _count(condition: str) -> str:
    return f"COUNT(CASE WHEN {condition} THEN 1 END)"


_STATS = ", ".join(
    [
        "COUNT(*) AS n",
        f"{_count(_OK)} AS ok",
        f"{_count(f'{_OK} AND prompt_tokens IS NULL')} AS ok_no_prompt",
        f"{_count(f'{_OK} AND completion_tokens IS NULL')} AS ok_no_completion",
        f"{_count(f'{_OK} AND reasoning_tokens IS NULL')} AS ok_no_reasoning",
        f"{_count(f'{_OK} AND cost_usd IS NULL')} AS ok_no_cost",
        "SUM(prompt_tokens) AS prompt_sum",
        "SUM(completion_tokens) AS completion_sum",
        f"SUM(CASE WHEN {_OK} THEN completion_tokens END) AS ok_completion_sum",
        f"SUM(CASE WHEN {_OK} THEN reasoning_tokens END) AS ok_reasoning_sum",
        "json_group_array(DISTINCT token_source) AS token_sources",
        "json_group_array(DISTINCT energy_method) AS energy_methods",
        *(f"COUNT({c}) AS {c}_count, SUM({c}) AS {c}_sum" for c in ENERGY_COLUMNS),
        "COUNT(cpu_seconds) AS cpu_seconds_count, SUM(cpu_seconds) AS cpu_seconds_sum",
        "TOTAL(cost_usd) AS cost_total",
        "COALESCE(SUM(retries), 0) AS retries",
        "COUNT(*) - COUNT(received_at) AS no_received",
        f"{_count(f'{_OK} AND received_at IS NOT NULL')} AS ok_received",
        f"MIN(CASE WHEN {_OK} THEN received_at END) AS ok_first_received",
        f"MAX(CASE WHEN {_OK} THEN received_at END) AS ok_last_received",
        # Whether the scans of the few figures most runs lack are needed at all.
        f"{_count(f'{_OK} AND server_timing_json IS NOT NULL')} AS ok_server_timed",
        f"{_count('intended_send_at IS NOT NULL AND actual_send_at IS NOT NULL')} AS lagged",
        "COUNT(category) AS categorised",
    ]
)
_WHERE = "WHERE run_id = ? AND sample_index < ?"


def run_stats(conn: sqlite3.Connection, run_id: str, below: int) -> dict[str, Any]:
    """One row of counts and sums over the run's samples; the distinct token sources
    and energy methods as lists (NULL left out)."""
    cur = conn.execute(f"SELECT {_STATS} FROM samples {_WHERE}", (run_id, below))
    names = [d[0] for d in cur.description]
    out = dict(zip(names, cur.fetchone(), strict=True))
    for key in ("token_sources", "energy_methods"):
        out[key] = [v for v in json.loads(out[key]) if v is not None]
    return out


@dataclass
class RoundStats:
    """One round's counts (``round_stats``): samples, successes, successes without a
    completion count, their known completion tokens, samples without a reply time, the
    first send time; and each attempt's (first send, last reply) over the round's
    samples with a reply time (a sample without ``sent_at`` starts at its reply)."""

    round: int
    n: int = 0
    ok: int = 0
    ok_no_completion: int = 0
    ok_completion: int = 0
    no_received: int = 0
    first_sent: float | None = None
    spans: dict[int, tuple[float, float]] = field(default_factory=dict)


def round_stats(conn: sqlite3.Connection, run_id: str, below: int) -> list[RoundStats]:
    """Per round with a stored sample, in order: its ``RoundStats``. One scan grouped by
    round and attempt gives both the rounds' counts and the attempts' spans (three
    scans before): counts and token sums add up exactly, spans are minima and maxima."""
    rows = tuple_cursor(conn).execute(
        f"SELECT round, attempt, COUNT(*), {_count(_OK)}, "
        f"{_count(f'{_OK} AND completion_tokens IS NULL')}, "
        f"COALESCE(SUM(CASE WHEN {_OK} THEN completion_tokens END), 0), "
        "COUNT(*) - COUNT(received_at), MIN(sent_at), "
        "MIN(CASE WHEN received_at IS NOT NULL THEN COALESCE(sent_at, received_at) END), "
        f"MAX(received_at) FROM samples {_WHERE} GROUP BY round, attempt "
        "ORDER BY round, attempt",
        (run_id, below),
    )
    out: list[RoundStats] = []
    for number, attempt, n, ok, no_completion, completion, unreplied, sent, a, b in rows:
        if not out or out[-1].round != number:
            out.append(RoundStats(int(number)))
        r = out[-1]
        r.n, r.ok, r.no_received = r.n + n, r.ok + ok, r.no_received + unreplied
        r.ok_no_completion += no_completion
        r.ok_completion += int(completion)
        if sent is not None and (r.first_sent is None or sent < r.first_sent):
            r.first_sent = sent
        if b is not None:
            r.spans[int(attempt)] = (float(a), float(b))
    return out


def attempt_spans(rounds: list[RoundStats]) -> list[tuple[float, float]]:
    """Each attempt's (first send, last reply) over all its rounds, attempts in order
    (``round_stats``'s spans joined)."""
    joined: dict[int, tuple[float, float]] = {}
    for r in rounds:
        for attempt, (a, b) in r.spans.items():
            was = joined.get(attempt)
            joined[attempt] = (a, b) if was is None else (min(was[0], a), max(was[1], b))
    return [joined[k] for k in sorted(joined)]


def ok_timings(conn: sqlite3.Connection, run_id: str, below: int) -> list[tuple[Any, ...]]:
    """The successful samples' round, latency, TTFT, ITL and completion tokens, in
    (round, index) order: what the distributions and percentiles need, nothing more."""
    return (
        tuple_cursor(conn)
        .execute(
            "SELECT round, latency_s, ttft_s, itl_s, completion_tokens "
            f"FROM samples {_WHERE} AND {_OK} ORDER BY round, sample_index",
            (run_id, below),
        )
        .fetchall()
    )


def stored_scores(conn: sqlite3.Connection, run_id: str, below: int) -> list[tuple[int, int, str]]:
    """(round, index, scores JSON) of the samples that have scores."""
    return (
        tuple_cursor(conn)
        .execute(
            f"SELECT round, sample_index, scores_json FROM samples {_WHERE} "
            "AND scores_json IS NOT NULL AND scores_json != '' ORDER BY round, sample_index",
            (run_id, below),
        )
        .fetchall()
    )


def send_lags_ms(conn: sqlite3.Connection, run_id: str, below: int) -> list[float]:
    """Actual minus intended send time (ms) of the samples that had a due time."""
    rows = conn.execute(
        f"SELECT actual_send_at, intended_send_at FROM samples {_WHERE} "
        "AND intended_send_at IS NOT NULL AND actual_send_at IS NOT NULL "
        "ORDER BY round, sample_index",
        (run_id, below),
    )
    return [1000.0 * (a - i) for a, i in rows]


def tuple_cursor(conn: sqlite3.Connection) -> sqlite3.Cursor:
    """A cursor whose rows are plain tuples, read by position: cheaper than a
    ``sqlite3.Row`` a sample for the queries that read one row per sample."""
    cursor = conn.cursor()
    cursor.row_factory = None
    return cursor
