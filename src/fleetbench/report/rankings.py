"""Rankings per task and Pareto-optimal sets, from run summaries.

Runs of different tasks are never ranked together: their scores measure different
things. Only completed runs take part (a failed run's figures cover part of the work).
A ranking lists every run that has the figure, best first; a run without it (no energy
metered, an unpriced model) is left out rather than ranked as 0.

A run is Pareto-optimal for (score, X) when no other run of its task has a score at
least as high and an X at least as low, with one of them strictly better: the runs a
user should choose between; every other run is beaten on both by one of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

COMPLETED = "completed"


@dataclass(frozen=True)
class Ranking:
    key: str  # stable name: comparison.json, CSV column rank_<key>
    title: str
    column: str  # summary figure
    higher_is_better: bool
    unit: str
    task: str | None = None  # only for runs of this task (None: every task)

    def applies_to(self, task: str) -> bool:
        return self.task is None or self.task == task


RANKINGS: tuple[Ranking, ...] = (
    Ranking("best_score", "Best score", "quality_score", True, ""),
    Ranking("fastest", "Fastest (mean latency)", "avg_latency_seconds", False, "s"),
    Ranking(
        "highest_throughput",
        "Highest throughput",
        "throughput_tokens_per_second",
        True,
        "tokens/s",
    ),
    Ranking(
        "lowest_energy", "Lowest energy per query", "wh_per_1000_queries", False, "Wh/1k queries"
    ),
    Ranking("most_efficient", "Most tokens per joule", "tokens_per_joule", True, "tokens/J"),
    Ranking("cheapest", "Cheapest", "cost_usd", False, "USD"),
    # Agentic repository tasks: figures per task solved (the run's total ÷ successes),
    # so a run that solved nothing has none and is left out.
    Ranking("repo_fastest", "Fastest (wall time per solved task)",
            "scores.wall_s_per_success", False, "s", "repo_task"),
    Ranking("repo_fewest_prompts", "Most efficient (fewest prompts per success)",
            "scores.prompts_per_success", False, "prompts", "repo_task"),
    Ranking("repo_fewest_tokens", "Most efficient (fewest tokens per success)",
            "scores.tokens_per_success", False, "tokens", "repo_task"),
    Ranking("repo_most_autonomous", "Most autonomous (fewest interventions per success)",
            "scores.interventions_per_success", False, "asks", "repo_task"),
)  # fmt: skip

# (name, cost column, unit): the trade-offs the Pareto sets are computed for.
PARETO_AXES: tuple[tuple[str, str, str], ...] = (
    ("energy", "wh_per_1000_queries", "Wh/1k queries"),
    ("cost", "cost_usd", "USD"),
    ("latency", "avg_latency_seconds", "s"),
)


def label(summary: dict[str, Any]) -> str:
    """A run's display name: model [settings]."""
    settings = summary.get("settings_label") or ""
    return str(summary["model_name"]) + (f" [{settings}]" if settings else "")


def _value(summary: dict[str, Any], column: str) -> float | None:
    """The figure ``column`` names: a summary column, or ``scores.KEY`` for one of the
    run's task metrics."""
    if column.startswith("scores."):
        value = (summary.get("scores") or {}).get(column.removeprefix("scores."))
    else:
        value = summary.get(column)
    return float(value) if isinstance(value, int | float) else None


def rank(summaries: list[dict[str, Any]], ranking: Ranking) -> list[dict[str, Any]]:
    """Completed runs with the figure, best first (ties keep the input order)."""
    entries = [
        (v, s)
        for s in summaries
        if s.get("status") == COMPLETED and (v := _value(s, ranking.column)) is not None
    ]
    entries.sort(key=lambda e: -e[0] if ranking.higher_is_better else e[0])
    return [
        {"rank": i + 1, "run_id": s["run_id"], "label": label(s), "value": v}
        for i, (v, s) in enumerate(entries)
    ]


def pareto(summaries: list[dict[str, Any]], column: str) -> list[str]:
    """Run ids on the score-vs-``column`` frontier (higher score, lower column), in
    increasing ``column`` order."""
    points = [
        (x, y, s["run_id"])
        for s in summaries
        if s.get("status") == COMPLETED
        and (y := _value(s, "quality_score")) is not None
        and (x := _value(s, column)) is not None
    ]
    front = [
        p
        for p in points
        if not any(q[0] <= p[0] and q[1] >= p[1] and (q[0] < p[0] or q[1] > p[1]) for q in points)
    ]
    front.sort(key=lambda p: (p[0], -p[1]))
    return [p[2] for p in front]


def model_categories(summary: dict[str, Any]) -> list[str]:
    """The catalogue categories (tags) of a run's model: the summary's ';'-joined
    ``categories``."""
    return [c for c in str(summary.get("categories") or "").split(";") if c]


def category_rankings(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per model category (a run with several is in each): its run ids and every
    ranking among them, so "the best of the fast models" needs no spreadsheet."""
    categories = sorted({c for s in runs for c in model_categories(s)})
    out: dict[str, dict[str, Any]] = {}
    for category in categories:
        members = [s for s in runs if category in model_categories(s)]
        out[category] = {
            "runs": [s["run_id"] for s in members],
            "rankings": {r.key: rank(members, r) for r in RANKINGS},
        }
    return out


def task_rankings(summaries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per task: every ranking (see ``RANKINGS``), the Pareto sets (see ``PARETO_AXES``)
    and the rankings within each model category (``by_category``; empty when no run's
    model has categories)."""
    tasks = list(dict.fromkeys(s["task"] for s in summaries))
    out: dict[str, dict[str, Any]] = {}
    for task in tasks:
        runs = [s for s in summaries if s["task"] == task]
        out[task] = {
            "rankings": {r.key: rank(runs, r) if r.applies_to(task) else [] for r in RANKINGS},
            "pareto": {name: pareto(runs, column) for name, column, _ in PARETO_AXES},
            "by_category": category_rankings(runs),
        }
    return out


def run_ranks(rankings: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """run_id -> {rank_<key>: n, pareto_<axis>: bool}: the columns of comparison.csv."""
    out: dict[str, dict[str, Any]] = {}
    for per_task in rankings.values():
        for key, entries in per_task["rankings"].items():
            for entry in entries:
                out.setdefault(entry["run_id"], {})[f"rank_{key}"] = entry["rank"]
        for axis, ids in per_task["pareto"].items():
            for run_id in ids:
                out.setdefault(run_id, {})[f"pareto_{axis}"] = True
    return out


RANK_COLUMNS: list[str] = [f"rank_{r.key}" for r in RANKINGS] + [
    f"pareto_{name}" for name, _, _ in PARETO_AXES
]
