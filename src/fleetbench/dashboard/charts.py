"""The dashboard's own charts: only those the report has no definition for (runs by
status, failures, RAG figures). The comparison and over-time charts are the report's
(``report.charts``, altair), built from the same rows.

These three are plain Vega-Lite dicts, not altair: the overview is the first thing the
page draws, and importing altair (about 0.6 s of CPU) would delay it.
"""

from __future__ import annotations

from typing import Any

WIDTH = 520  # the report's chart width
Spec = dict[str, Any] | None


def schema_url() -> str:
    """The Vega-Lite schema altair writes (the bundled JavaScript is for that version),
    read from altair's schema module without importing altair."""
    import importlib.util
    import re
    from pathlib import Path

    spec = importlib.util.find_spec("altair")
    if spec is not None and spec.origin:
        text = Path(spec.origin).parent.joinpath("vegalite", "v6", "schema", "__init__.py")
        if text.is_file():
            found = re.search(r'^SCHEMA_URL = "([^"]+)"', text.read_text(), re.M)
            if found:
                return found.group(1)
    import altair as alt

    return str(alt.SCHEMA_URL)


def _spec(title: str, subtitle: str, values: list[dict[str, Any]], **body: Any) -> Spec:
    head: dict[str, Any] = {"text": title, "anchor": "start"}
    if subtitle:
        head["subtitle"] = subtitle
    return {"$schema": schema_url(), "title": head, "data": {"values": values}, **body}


def status_bars(runs: list[dict[str, Any]]) -> Spec:
    if not runs:
        return None
    rows = [{"status": r["status"], "task": r["task"]} for r in runs]
    return _spec(
        "runs by status", "", rows,
        mark={"type": "bar"},
        encoding={
            "x": {"aggregate": "count", "type": "quantitative", "title": "runs"},
            "y": {"field": "status", "type": "nominal", "title": None, "sort": "-x"},
            "color": {"field": "task", "type": "nominal", "title": "task"},
            "tooltip": [{"field": "status", "type": "nominal"},
                        {"field": "task", "type": "nominal"},
                        {"aggregate": "count", "type": "quantitative", "title": "runs"}],
        },
        width=WIDTH, height={"step": 22},
    )  # fmt: skip


def failure_bars(rows: list[dict[str, Any]]) -> Spec:
    if not rows:
        return None
    slim = [
        {"reason": str(r["reason"])[:60], "provider": r["provider"], "failures": r["failures"]}
        for r in rows
    ]
    return _spec(
        "failed samples by reason", "colour: provider", slim,
        mark={"type": "bar"},
        encoding={
            "x": {"field": "failures", "aggregate": "sum", "type": "quantitative",
                  "title": "failed samples"},
            "y": {"field": "reason", "type": "nominal", "title": None, "sort": "-x"},
            "color": {"field": "provider", "type": "nominal", "title": "provider"},
            "tooltip": [{"field": "reason", "type": "nominal"},
                        {"field": "provider", "type": "nominal"},
                        {"field": "failures", "aggregate": "sum", "type": "quantitative"}],
        },
        width=WIDTH, height={"step": 18},
    )  # fmt: skip


def rag_bars(rows: list[dict[str, Any]]) -> Spec:
    """Coverage score and retrieval recall per run (one bar each), a panel per category."""
    long = [
        {"label": r["label"], "category": r["category"] or "(none)", "figure": name,
         "value": r[name]}
        for r in rows
        for name in ("coverage_score", "retrieval_recall")
        if r.get(name) is not None
    ]  # fmt: skip
    if not long:
        return None
    return _spec(
        "RAG: coverage and retrieval recall", "per category", long,
        mark={"type": "bar"},
        encoding={
            "x": {"field": "value", "aggregate": "mean", "type": "quantitative",
                  "title": "mean (0-1)", "scale": {"domain": [0, 1]}},
            "y": {"field": "label", "type": "nominal", "title": None},
            "yOffset": {"field": "figure", "type": "nominal"},
            "color": {"field": "figure", "type": "nominal", "title": None},
            "row": {"field": "category", "type": "nominal", "title": None,
                    "header": {"labelAngle": 0, "labelAlign": "left"}},
            "tooltip": [{"field": "label", "type": "nominal"},
                        {"field": "category", "type": "nominal"},
                        {"field": "figure", "type": "nominal"},
                        {"field": "value", "aggregate": "mean", "type": "quantitative"}],
        },
        width=WIDTH - 120, height={"step": 10},
    )  # fmt: skip
