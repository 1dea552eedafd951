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


def attempt_spans(
    conn: sqlite3.Connection, run_id: str, below: int, per_round: bool = False
) -> list[tuple[int, float, float]]:
    """(round, first send, last reply) of each attempt's samples that have a reply time
    (a sample without ``sent_at`` starts at its reply); with ``per_round`` one span per
    round and attempt, else one per attempt over all its rounds (round 0)."""
    group = "round, attempt" if per_round else "attempt"
    rows = tuple_cursor(conn).execute(
        f"SELECT {'round' if per_round else 0}, MIN(COALESCE(sent_at, received_at)), "
        f"MAX(received_at) FROM samples {_WHERE} AND received_at IS NOT NULL "
        f"GROUP BY {group} ORDER BY {group}",
        (run_id, below),
    )
    return [(int(n), float(a), float(b)) for n, a, b in rows]


def round_stats(conn: sqlite3.Connection, run_id: str, below: int) -> list[dict[str, Any]]:
    """Per round with a stored sample, in order: samples, successes, successes without
    a completion count, their known completion tokens, samples without a reply time,
    the first send time."""
    cur = conn.execute(
        f"SELECT round, COUNT(*) AS n, {_count(_OK)} AS ok, "
        f"{_count(f'{_OK} AND completion_tokens IS NULL')} AS ok_no_completion, "
        f"COALESCE(SUM(CASE WHEN {_OK} THEN completion_tokens END), 0) AS ok_completion, "
        "COUNT(*) - COUNT(received_at) AS no_received, MIN(sent_at) AS first_sent "
        f"FROM samples {_WHERE} GROUP BY round ORDER BY round",
        (run_id, below),
    )
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur]


def ok_timings(conn: sqlite3.Connection, run_id: str, below: int) -> list[sqlite3.Row]:
    """The successful samples' round, latency, TTFT, ITL and completion tokens, in
    (round, index) order: what the distributions and percentiles need, nothing more."""
    cur = conn.cursor()
    cur.row_factory = sqlite3.Row
    return cur.execute(
        "SELECT round, latency_s, ttft_s, itl_s, completion_tokens "
        f"FROM samples {_WHERE} AND {_OK} ORDER BY round, sample_index",
        (run_id, below),
    ).fetchall()


def stored_scores(conn: sqlite3.Connection, run_id: str, below: int) -> list[tuple[int, int, str]]:
    """(round, index, scores JSON) of the samples that have scores."""
    rows = tuple_cursor(conn).execute(
        f"SELECT round, sample_index, scores_json FROM samples {_WHERE} "
        "AND scores_json IS NOT NULL AND scores_json != '' ORDER BY round, sample_index",
        (run_id, below),
    )
    return [(int(n), int(i), str(text)) for n, i, text in rows]


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
