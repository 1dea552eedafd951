"""Per-category figures of a run: its samples grouped by the category their prompt or
question file gave them (``category_field``; the store keeps it in the ``category``
column), aggregated in SQL.

``summary.json``'s ``by_category``: for each category the samples stored, how many
succeeded and their share, the mean latency and TTFT of the successful ones, and the
mean of every numeric score. Empty for a run whose samples carry no category.
"""

from __future__ import annotations

from typing import Any

from fleetbench.store import Store

_CATEGORY = "samples.category"  # the store's copy of input_json's (migration 013)


def by_category(store: Store, run_id: str, below: int) -> dict[str, dict[str, Any]]:
    rows = store.conn.execute(
        f"SELECT {_CATEGORY} AS category, COUNT(*) AS samples, "
        "SUM(error IS NULL) AS succeeded, "
        "AVG(CASE WHEN error IS NULL THEN latency_s END) AS latency, "
        "AVG(CASE WHEN error IS NULL THEN ttft_s END) AS ttft "
        f"FROM samples WHERE run_id = ? AND sample_index < ? AND {_CATEGORY} IS NOT NULL "
        "GROUP BY category ORDER BY category",
        (run_id, below),
    ).fetchall()
    out: dict[str, dict[str, Any]] = {
        str(r["category"]): {
            "samples": r["samples"],
            "succeeded": r["succeeded"],
            "success_rate": r["succeeded"] / r["samples"],
            "avg_latency_seconds": r["latency"],
            "avg_ttft_seconds": r["ttft"],
            "scores": {},
        }
        for r in rows
    }
    if not out:
        return out
    scores = store.conn.execute(
        f"SELECT {_CATEGORY} AS category, j.key AS key, AVG(j.value) AS mean "
        "FROM samples, json_each(samples.scores_json) AS j "
        f"WHERE run_id = ? AND sample_index < ? AND {_CATEGORY} IS NOT NULL "
        "AND j.type IN ('integer', 'real', 'true', 'false') GROUP BY category, key",
        (run_id, below),
    )
    for r in scores:
        out[str(r["category"])]["scores"][r["key"]] = r["mean"]
    return out
