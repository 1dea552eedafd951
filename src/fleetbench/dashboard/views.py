"""The dashboard's views as JSON documents: rows (what the view's table shows and its
CSV export holds, exactly the filtered rows), the columns to show, and chart specs with
their data inline (Vega-Lite, rendered in the browser by vega-embed).

Every view reads every folder (``Sources``) and tags each row with its ``folder``.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from fleetbench.dashboard import queries
from fleetbench.dashboard.filters import PAGE_SIZE, Filters
from fleetbench.dashboard.sources import Sources
from fleetbench.dashboard.summaries import WAIT_S
from fleetbench.report.rankings import label
from fleetbench.store import Store

View = dict[str, Any]
MAX_SERIES = 12  # lines per over-time chart
TABLE_MAX = 1000  # rows of a view's table sent to the page (its CSV holds them all)
OVER_TIME_COLUMNS = ("folder", "group", "label", "round", "started", "samples", "latency_s",
                     "ttft_s", "throughput", "success_rate", "energy_wh")  # fmt: skip
Columns = list[tuple[str, str]]

# Over-time panels: (row column, axis title); the report's rounds chart draws them.
OVER_TIME_PANELS = (
    ("latency_s", "mean latency (s)"),
    ("ttft_s", "mean TTFT (s)"),
    ("throughput", "throughput (tokens/s)"),
    ("success_rate", "success rate (0-1)"),
    ("energy_wh", "energy (Wh)"),
)


def _each(
    sources: Sources, query: Callable[[Store, Filters], list[dict[str, Any]]], f: Filters
) -> list[dict[str, Any]]:
    out = []
    for source in sources.items:
        with source.store() as store:
            out += [{"folder": source.name, **r} for r in query(store, f)]
    return out


def _specs(*charts: tuple[str, Any]) -> list[dict[str, Any]]:
    """Chart specs: altair charts (the report's) as dicts, plain dicts as they are."""
    return [
        {"id": name, "spec": chart if isinstance(chart, dict) else chart.to_dict(validate=False)}
        for name, chart in charts
        if chart is not None
    ]


def _cols(*names: str) -> Columns:
    return [(n, n.replace("_", " ")) for n in names]


def _iso(when: float | None) -> str | None:
    return None if when is None else datetime.fromtimestamp(when, UTC).isoformat()


def overview(sources: Sources, f: Filters) -> View:
    from fleetbench.dashboard import charts

    runs = _each(sources, queries.overview_runs, f)
    for r in runs:
        r["label"] = label(r)
        r["updated"] = _iso(r.pop("updated_at"))
        r["last_sample"] = _iso(r.pop("last_sample_at"))
    totals = {
        "runs": len(runs),
        "running": sum(r["status"] == "running" for r in runs),
        "samples": sum(r["samples"] for r in runs),
        "failed": sum(r["failed"] or 0 for r in runs),
        "completion_tokens": sum(r["completion_tokens"] or 0 for r in runs),
        "energy_wh": sum(r["energy_wh"] or 0.0 for r in runs),
        "cost_usd": sum(r["cost_usd"] or 0.0 for r in runs),
    }
    columns: Columns = [
        ("folder", "folder"), ("label", "model"), ("task", "task"), ("backend", "backend"),
        ("status", "status"), ("progress", "progress"), ("samples", "samples"),
        ("failed", "failed"), ("last_round", "rounds"), ("energy_wh", "energy Wh"),
        ("cost_usd", "cost $"), ("last_sample", "last sample"), ("error_message", "error"),
    ]  # fmt: skip
    return {
        "rows": runs,
        "columns": columns,
        "totals": totals,
        "by_status": dict(Counter(r["status"] for r in runs)),
        "charts": _specs(("status", charts.status_bars(runs))),
    }


def comparison(sources: Sources, f: Filters, wait: float = WAIT_S) -> View:
    """The report's comparison: its records, table columns, rankings, Pareto sets and
    per-task charts, over the runs the model/task/backend filters select."""
    from fleetbench.report import charts
    from fleetbench.report import comparison as records_of
    from fleetbench.report.load import mark_knees
    from fleetbench.report.page import TABLE_COLUMNS
    from fleetbench.report.rankings import task_rankings

    summaries, runs, pending = [], [], []
    where, params = f.runs_sql()
    for source in sources.items:
        with source.store() as store:
            rows = store.conn.execute(
                f"SELECT * FROM runs r WHERE 1 = 1 {where} ORDER BY r.seq", params
            ).fetchall()
            ready, waiting = source.summaries(store, rows, wait)
            summaries += ready
            by_id = {r["run_id"]: r for r in rows}  # the runs summarised so far
            runs += [by_id[s["run_id"]] for s in ready] if waiting else rows
            pending += [waiting] if waiting else []
    partial = {"pending": "; ".join(pending)} if pending else {}
    if not summaries:
        return {"rows": [], "columns": [], "charts": [], **partial}
    mark_knees(summaries)
    rankings = task_rankings(summaries)
    records = records_of.records(summaries, runs, rankings)
    for record, summary in zip(records, summaries, strict=True):
        record["folder"] = summary["folder"]
        record["label"] = label(record)
    plots: list[tuple[str, Any]] = []
    # While runs are still being summarised: the table and rankings of those ready, no
    # charts (seconds to build for 1,000 runs, again for every partial document).
    for task in dict.fromkeys(r["task"] for r in records) if not partial else ():
        plots += [(f"{task}-{name}", define(records, task)) for name, define in charts.TASK_CHARTS]
    if not partial:
        plots += [(name, define(records)) for name, define in charts.BATCH_CHARTS]
    return {
        **partial,  # first: a client sees it without reading the rows
        "rows": [{k: v for k, v in r.items() if k != "distributions"} for r in records],
        "columns": [("folder", "folder"), *TABLE_COLUMNS],
        "csv_columns": ["folder", *records_of.columns(records)],
        "rankings": rankings,
        "labels": {r["run_id"]: r["label"] for r in records},
        "charts": _specs(*plots),
        "note": "round, time and category filters do not apply here (a run's figures pool "
        "all its samples)"
        if f.on_samples()
        else "",
    }


def _round_row(item: Series, group: str) -> dict[str, Any]:
    folder, name, planned, figures = item
    r = dict(zip(queries.ROUND_COLUMNS, figures, strict=True))
    window = (
        r["last_received"] - r["first_sent"]
        if r["first_sent"] is not None and r["last_received"] is not None
        else None
    )
    planned = planned or r["samples"]  # a category: its samples
    return {
        "folder": folder,
        "group": group,
        "label": name,
        "round": r["round"],
        "started": _iso(_started(figures)),
        "samples": r["samples"],
        "latency_s": r["latency_s"],
        "ttft_s": r["ttft_s"],
        "throughput": r["tokens"] / window if r["tokens"] and window else None,
        "success_rate": r["succeeded"] / planned,
        "energy_wh": r["energy_wh"],
    }


# One over-time row before it becomes a dict: folder, series label, planned samples per
# round (0: a category), figures (``queries.ROUND_COLUMNS``).
Series = tuple[str, str, int, tuple[Any, ...]]
_FIRST_SENT = queries.ROUND_COLUMNS.index("first_sent")
_FIRST_STORED = queries.ROUND_COLUMNS.index("first_stored")


def _started(figures: tuple[Any, ...]) -> float | None:
    sent = figures[_FIRST_SENT]
    return float(sent) if sent is not None else figures[_FIRST_STORED]


def _latest_series(items: list[Series]) -> tuple[set[str], str]:
    """The labels the charts draw: the MAX_SERIES series measured most recently (a chart
    of 1,000 lines says nothing and takes seconds to draw); the table and CSV keep every
    row."""
    latest: dict[str, float] = {}
    for _, name, _, figures in items:
        latest[name] = max(latest.get(name, float("-inf")), _started(figures) or float("-inf"))
    if len(latest) <= MAX_SERIES:
        return set(latest), ""
    keep = set(sorted(latest, key=latest.__getitem__, reverse=True)[:MAX_SERIES])
    note = (
        f"the charts show the {MAX_SERIES} most recently measured of {len(latest)} series; "
        "filter by model or task to see others"
    )
    return keep, note


def over_time(sources: Sources, f: Filters, limit: int | None = TABLE_MAX) -> View:
    """Per run (model, settings, task) and round, then per category and round. Rows
    become dicts only where shown: the table's first ``limit`` (None: all, the CSV) and
    the charts' series; ``rows_total`` counts them all."""
    from fleetbench.report import charts

    models: list[Series] = []
    categories: list[Series] = []
    for source in sources.items:
        with source.store() as store:
            runs, by_run, by_category = queries.rounds(store, f)
        names = {i: f"{label(r)} · {r['task']}" for i, r in runs.items()}
        models += [(source.name, names[t[0]], int(runs[t[0]]["planned_samples"] or 0), t)
                   for t in by_run if t[0] in runs]  # fmt: skip
        categories += [(source.name, str(t[0]), 0, t) for t in by_category]
    every = [*(("model", m) for m in models), *(("category", c) for c in categories)]
    table = every if limit is None else every[:limit]
    drawn, note = _latest_series(models)
    drawn_categories, category_note = _latest_series(categories)
    shown = [_round_row(m, "model") for m in models if m[1] in drawn]
    shown_categories = [_round_row(c, "category") for c in categories if c[1] in drawn_categories]
    total = {"rows_total": len(every)} if len(table) < len(every) else {}
    return {
        "rows": [_round_row(item, group) for group, item in table],
        **total,
        "columns": _cols(*OVER_TIME_COLUMNS),
        "note": "; ".join(filter(None, (note, category_note))),
        "charts": _specs(
            ("per-model", charts.rounds_over_time(shown, OVER_TIME_PANELS, "per model and round")),
            (
                "per-category",
                charts.rounds_over_time(
                    shown_categories, OVER_TIME_PANELS, "per category and round"
                ),
            ),
        ),
    }


def failures(sources: Sources, f: Filters) -> View:
    from fleetbench.dashboard import charts

    rows = _each(sources, queries.failures, f)
    for r in rows:
        r["first"], r["last"] = _iso(r.pop("first_at")), _iso(r.pop("last_at"))
    return {
        "rows": rows,
        "columns": _cols(
            "folder",
            "reason",
            "provider",
            "model_name",
            "task",
            "failures",
            "retries",
            "first",
            "last",
        ),
        "retries": _each(sources, queries.retries, f),
        "charts": _specs(("failures", charts.failure_bars(rows))),
    }


def rag(sources: Sources, f: Filters) -> View:
    from fleetbench.dashboard import charts

    rows = _each(sources, queries.rag, f)
    for r in rows:
        r["label"] = label(r)
    return {
        "rows": rows,
        "columns": _cols(
            "folder",
            "label",
            "task",
            "corpus",
            "category",
            "samples",
            "coverage_score",
            "retrieval_recall",
        ),
        "charts": _specs(("rag", charts.rag_bars(rows))),
    }


SAMPLE_SHOWN: Columns = [
    ("folder", "folder"), ("created", "stored"), ("label", "model"), ("task", "task"),
    ("round", "round"), ("sample_id", "sample"), ("category", "category"),
    ("prompt", "prompt"), ("answer", "answer"), ("reasoning_text", "reasoning"),
    ("scores_json", "scores"), ("latency_s", "latency s"), ("ttft_s", "TTFT s"),
    ("error", "error"),
]  # fmt: skip


def _sample_rows(sources: Sources, f: Filters, limit: int | None) -> tuple[list[Any], int]:
    """The newest matching samples over every folder: each folder's first ``limit``,
    merged by the time they were stored."""
    rows, total = [], 0
    for source in sources.items:
        with source.store() as store:
            found, count = queries.samples(store, f, limit)
            rows += [{"folder": source.name, **r} for r in found]
            total += count
    rows.sort(key=lambda r: (r["created_at"], r["id"]), reverse=True)
    for r in rows:
        r["label"] = label(r)
        r["created"] = _iso(r.pop("created_at"))
    return rows, total


def samples(sources: Sources, f: Filters) -> View:
    start = (f.page - 1) * PAGE_SIZE
    rows, total = _sample_rows(sources, f, start + PAGE_SIZE)
    return {
        "rows": rows[start : start + PAGE_SIZE],
        "columns": SAMPLE_SHOWN,
        "total": total,
        "page": f.page,
        "pages": max(1, -(-total // PAGE_SIZE)),
        "charts": [],
    }


VIEWS: dict[str, Callable[[Sources, Filters], View]] = {
    "overview": overview,
    "comparison": comparison,
    "over-time": over_time,
    "failures": failures,
    "rag": rag,
    "samples": samples,
}


def csv_lines(name: str, sources: Sources, f: Filters) -> Iterator[str]:
    """The view's rows as CSV: every filtered row (the sample browser's too, not one
    page), in the view's columns."""
    if name == "samples":
        rows, _ = _sample_rows(sources, f, None)
        header = [k for k, _ in SAMPLE_SHOWN]
    else:  # the comparison's CSV waits for every summary, however long it takes
        if name == "comparison":
            view = comparison(sources, f, 3600.0)
        else:
            view = over_time(sources, f, None) if name == "over-time" else VIEWS[name](sources, f)
        rows = view["rows"]
        header = view.get("csv_columns") or [k for k, _ in view["columns"]]
    from fleetbench.report.master import format_cell

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for i, row in enumerate(rows, 1):
        writer.writerow([format_cell(row.get(c)) for c in header])
        if i % 1000 == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()
