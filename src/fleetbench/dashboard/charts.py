"""The dashboard's own charts: only those the report has no definition for (runs by
status, failures, RAG figures). The comparison and over-time charts are the report's
(``report.charts``), built from the same rows.

altair is imported by the caller's first chart (``views``), never at start-up.
"""

from __future__ import annotations

from typing import Any

import altair as alt

from fleetbench.report.charts import WIDTH, Chart, _data, _title


def status_bars(runs: list[dict[str, Any]]) -> Chart:
    if not runs:
        return None
    rows = [{"status": r["status"], "task": r["task"]} for r in runs]
    return (
        alt.Chart(_data(rows), title=_title("runs by status"))
        .mark_bar()
        .encode(
            x=alt.X("count():Q", title="runs"),
            y=alt.Y("status:N", title=None, sort="-x"),
            color=alt.Color("task:N", title="task"),
            tooltip=["status:N", "task:N", "count():Q"],
        )
        .properties(width=WIDTH, height=alt.Step(22))
    )


def failure_bars(rows: list[dict[str, Any]]) -> Chart:
    if not rows:
        return None
    slim = [
        {"reason": str(r["reason"])[:60], "provider": r["provider"], "failures": r["failures"]}
        for r in rows
    ]
    return (
        alt.Chart(_data(slim), title=_title("failed samples by reason", "colour: provider"))
        .mark_bar()
        .encode(
            x=alt.X("sum(failures):Q", title="failed samples"),
            y=alt.Y("reason:N", title=None, sort="-x"),
            color=alt.Color("provider:N", title="provider"),
            tooltip=["reason:N", "provider:N", "sum(failures):Q"],
        )
        .properties(width=WIDTH, height=alt.Step(18))
    )


def rag_bars(rows: list[dict[str, Any]]) -> Chart:
    """Coverage score and retrieval recall per run (one bar each), per category."""
    long = [
        {"label": r["label"], "category": r["category"] or "(none)", "figure": name,
         "value": r[name]}
        for r in rows
        for name in ("coverage_score", "retrieval_recall")
        if r.get(name) is not None
    ]  # fmt: skip
    if not long:
        return None
    return (
        alt.Chart(_data(long), title=_title("RAG: coverage and retrieval recall", "per category"))
        .mark_bar()
        .encode(
            x=alt.X("mean(value):Q", title="mean (0-1)", scale=alt.Scale(domain=[0, 1])),
            y=alt.Y("label:N", title=None),
            yOffset=alt.YOffset("figure:N"),
            color=alt.Color("figure:N", title=None),
            row=alt.Row(
                "category:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left")
            ),
            tooltip=["label:N", "category:N", "figure:N", "mean(value):Q"],
        )
        .properties(width=WIDTH - 120, height=alt.Step(10))
    )
