"""Chart definitions: plain functions from comparison records (``report.comparison``)
or a results matrix (``report.matrix``) to Vega-Lite charts (altair).

One definition gives both outputs: the page embeds the chart's JSON spec and renders it
with the bundled Vega JavaScript; ``report.render`` turns the same spec into PNG and SVG
with vl-convert (no browser). A function returns None when the data cannot support its
chart (no scores, no sizes, one model), so the page only shows plots that mean something.

Conventions of every chart: axis titles carry units; the caption (subtitle) names the
energy method(s) where energy is shown; local models are squares and API models
circles; labels sit on the y axis of bar charts so that 50 models stay readable.

altair is an optional dependency (``fleetbench[report]``): import this module only
after ``report.render.require()``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import altair as alt
from altair.utils import schemapi

from fleetbench.report.matrix import SAMPLE_METRIC, Matrix
from fleetbench.report.rankings import label

SHAPES = alt.Scale(domain=["local", "api"], range=["square", "circle"])
WIDTH = 520
# altair's chart classes are only partly typed: charts travel as Any.
Chart = Any


def _data(rows: list[dict[str, Any]]) -> Any:
    # altair validates inline data when it is made, walking every value: 0.5 s for a
    # chart of 1,000 runs. The rows are plain JSON values; tests validate whole specs.
    with schemapi.debug_mode(False):
        return alt.InlineData(values=rows)


# What every chart row carries besides the figures it plots: a record has ~100
# columns, and altair walks every value of inline data, so rows stay slim.
_BASE = ("run_id", "task", "backend", "where", "energy_method", "quality_metric")


def _components(row: dict[str, Any]) -> list[tuple[str, float]]:
    """A chart row's score components (``score_*`` figures on a 0-1 scale)."""
    return [
        (k[len("score_") :], v)
        for k, v in row.items()
        if k.startswith("score_") and isinstance(v, int | float) and 0 <= v <= 1
    ]


def _rows(
    records: list[dict[str, Any]], *needed: str, extra: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """Completed runs that have every needed figure, with a display label, the needed
    figures, the score components and the Pareto flags."""
    return [
        {k: r.get(k) for k in (*_BASE, *needed, *extra)}
        | {k: r[k] for k in _prefixed(r)}
        | {"label": label(r)}
        for r in records
        if r.get("status") == "completed" and all(r.get(n) is not None for n in needed)
    ]


# The score and Pareto keys of each key set seen: a record has ~200 keys, and testing
# each for its prefix for every chart was 0.2 s a page of 1,000 runs; records share a
# few key sets. Bounded: cleared past _PREFIXED_MAX key sets (a long-lived dashboard).
_PREFIXED: dict[tuple[str, ...], tuple[str, ...]] = {}
_PREFIXED_MAX = 256


def _prefixed(record: dict[str, Any]) -> tuple[str, ...]:
    """The record's keys that start with ``score_`` or ``pareto_``, in its order."""
    keys = tuple(record)
    found = _PREFIXED.get(keys)
    if found is None:
        if len(_PREFIXED) >= _PREFIXED_MAX:
            _PREFIXED.clear()
        found = _PREFIXED[keys] = tuple(k for k in keys if k.startswith(("score_", "pareto_")))
    return found


# Charts with one bar or row per run list at most this many: past it a bar chart of
# 1,000 runs is a wall of labels (and costs seconds to render); the page's table,
# comparison.csv and comparison.json keep every run.
MAX_LISTED = 60


def _listed(
    rows: list[dict[str, Any]], key: str, what: str, highest: bool = True
) -> tuple[list[dict[str, Any]], str]:
    """At most ``MAX_LISTED`` rows, the highest (or lowest) ``key`` first, and a
    subtitle part that says so when rows were left out ("" when none were)."""
    if len(rows) <= MAX_LISTED:
        return rows, ""
    ranked = sorted(rows, key=lambda r: float(r.get(key) or 0.0), reverse=highest)
    return ranked[:MAX_LISTED], (
        f"the {MAX_LISTED} runs of {len(rows)} with the {'highest' if highest else 'lowest'} "
        f"{what}; every run: the table and comparison.csv"
    )


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def _methods(rows: list[dict[str, Any]]) -> str:
    methods = sorted({str(r.get("energy_method") or "none") for r in rows})
    return "energy method: " + ", ".join(methods)


def _title(text: str, subtitle: str = "") -> alt.TitleParams:
    return alt.TitleParams(text, subtitle=subtitle or alt.Undefined, anchor="start")


def _shape() -> alt.Shape:
    return alt.Shape("where:N", scale=SHAPES, title="runs")


def _tooltip(*extra: str) -> list[alt.Tooltip]:
    return _tips("label:N", "task:N", "backend:N", *extra)


def _tips(*shorthands: str) -> list[alt.Tooltip]:
    """Tooltip channels from shorthands. Channel objects, not the strings: altair turns
    each string into its channel by matching it against its whole schema (~4 ms each,
    most of a report's time); the specs are the same."""
    return [alt.Tooltip(s) for s in shorthands]


def warm() -> None:
    """Build one chart's spec: the first one compiles altair's shorthand patterns and
    loads its data helpers (~8 ms), which ``render.warm_up`` pays while a batch runs
    instead of the report after its last run."""
    chart = alt.Chart(_data([{"x": 1}])).mark_point()
    chart.encode(x=alt.X("x:Q"), tooltip=_tips("x:Q")).to_dict(validate=False)


def ranking_bars(records: list[dict[str, Any]], task: str) -> Chart:
    rows = _rows([r for r in records if r["task"] == task], "quality_score")
    if not rows:
        return None
    metric = rows[0].get("quality_metric") or "score"
    rows, note = _listed(rows, "quality_score", metric)
    return (
        alt.Chart(_data(rows), title=_title(f"{task}: overall ranking ({metric})", note))
        .mark_bar()
        .encode(
            x=alt.X("quality_score:Q", title=f"{metric} (0-1)", scale=alt.Scale(domain=[0, 1])),
            y=alt.Y("label:N", sort="-x", title=None),
            color=alt.Color("where:N", title="runs"),
            tooltip=_tooltip("quality_score:Q"),
        )
        .properties(width=WIDTH, height=alt.Step(16))
    )


def _frontier_chart(
    records: list[dict[str, Any]], task: str, column: str, axis: str, unit: str, what: str
) -> Chart:
    rows = _rows([r for r in records if r["task"] == task], "quality_score", column)
    if len(rows) < 2:
        return None
    metric = rows[0].get("quality_metric") or "score"
    key = f"pareto_{axis}"
    for r in rows:
        r["frontier"] = "Pareto-optimal" if r.get(key) else "dominated"
    subtitle = _methods(rows) if axis == "energy" else "line: the Pareto frontier"
    if axis == "energy":
        subtitle += "; line: the Pareto frontier"
    data = _data(rows)
    base = alt.Chart(data, title=_title(f"{task}: {metric} vs {what}", subtitle))
    x = alt.X(f"{column}:Q", title=f"{what} ({unit})", scale=alt.Scale(zero=False))
    y = alt.Y("quality_score:Q", title=f"{metric} (0-1)", scale=alt.Scale(domain=[0, 1]))
    points = base.mark_point(size=80, filled=True).encode(
        x=x,
        y=y,
        shape=_shape(),
        color=alt.Color("frontier:N", title=None),
        tooltip=_tooltip(f"{column}:Q", "quality_score:Q"),
    )
    line = (
        base.transform_filter(alt.datum.frontier == "Pareto-optimal")
        .mark_line(strokeDash=[4, 3], color="#444")
        .encode(x=x, y=y, order=alt.Order(f"{column}:Q"))
    )
    names = (
        base.transform_filter(alt.datum.frontier == "Pareto-optimal")
        .mark_text(align="left", dx=8, fontSize=11)
        .encode(x=x, y=y, text=alt.Text("label:N"))
    )  # only the frontier is named: 50 labels would hide the points
    return (line + points + names).properties(width=WIDTH, height=320)


def score_vs_energy(records: list[dict[str, Any]], task: str) -> Chart:
    return _frontier_chart(
        records, task, "wh_per_1000_queries", "energy", "Wh/1k queries", "energy"
    )


def score_vs_cost(records: list[dict[str, Any]], task: str) -> Chart:
    return _frontier_chart(records, task, "cost_usd", "cost", "USD", "cost")


def score_vs_latency(records: list[dict[str, Any]], task: str) -> Chart:
    return _frontier_chart(records, task, "avg_latency_seconds", "latency", "s", "mean latency")


def score_components(records: list[dict[str, Any]], task: str) -> Chart:
    """Grouped bars: one row per model, one bar per score component (no facets: a
    facet per model costs a second of rendering per 100 models)."""
    rows, note = _listed(_rows([r for r in records if r["task"] == task]), "quality_score", "score")
    long = [
        {"label": r["label"], "component": name, "value": value}
        for r in rows
        for name, value in _components(r)
    ]
    if not long:
        return None
    return (
        alt.Chart(_data(long), title=_title(f"{task}: score components per model", note))
        .mark_bar()
        .encode(
            x=alt.X("value:Q", title="score (0-1)", scale=alt.Scale(domain=[0, 1])),
            y=alt.Y("label:N", title=None),
            yOffset=alt.YOffset("component:N"),
            color=alt.Color("component:N", title="component"),
            tooltip=_tips("label:N", "component:N", "value:Q"),
        )
        .properties(width=WIDTH, height=alt.Step(max(14, 6 * len({r["component"] for r in long}))))
    )


def category_correctness(records: list[dict[str, Any]], task: str) -> Chart:
    """Per model and sample category (the prompt or question file's ``category_field``,
    ``summary.json``'s ``by_category``): the mean per-sample score, as a heatmap whose
    cells carry the value. The score is the task's per-sample metric (the matrix's
    "correct"), else the run's quality metric; unscored runs have no chart."""
    metric = SAMPLE_METRIC.get(task)
    rows = []
    listed, note = _listed(
        _rows([r for r in records if r["task"] == task], extra=("by_category",)),
        "quality_score",
        "score",
    )
    for r in listed:
        for category, group in (r.get("by_category") or {}).items():
            scores = group.get("scores") or {}
            key = metric if metric in scores else r.get("quality_metric")
            value = scores.get(key) if key else None
            if isinstance(value, int | float) and not isinstance(value, bool):
                rows.append({"label": r["label"], "category": str(category), "metric": key,
                             "score": float(value), "samples": group.get("samples")})  # fmt: skip
    if not rows:
        return None
    names = ", ".join(sorted({str(r["metric"]) for r in rows}))
    base = alt.Chart(_data(rows))
    x = alt.X("category:N", title="sample category", axis=alt.Axis(labelAngle=-30))
    y = alt.Y("label:N", title=None)
    tooltip = _tips("label:N", "category:N", "metric:N", "score:Q", "samples:Q")
    cells = base.mark_rect().encode(
        x=x,
        y=y,
        color=alt.Color("score:Q", title="score (0-1)", scale=alt.Scale(domain=[0, 1])),
        tooltip=tooltip,
    )
    text = base.mark_text(fontSize=10).encode(
        x=x,
        y=y,
        text=alt.Text("score:Q", format=".2f"),
        color=alt.condition(alt.datum.score > 0.5, alt.value("white"), alt.value("black")),
        tooltip=tooltip,
    )
    title = _title(
        f"{task}: correctness by category", _join(f"mean {names} per sample category", note)
    )
    return (cells + text).properties(title=title, width=alt.Step(48), height=alt.Step(18))


def size_vs(records: list[dict[str, Any]], task: str, column: str, title: str) -> Chart:
    rows = _rows([r for r in records if r["task"] == task], "params_b", column)
    if len({r["params_b"] for r in rows}) < 2:
        return None
    subtitle = _methods(rows) if "energy" in column or "wh" in column else ""
    return (
        alt.Chart(_data(rows), title=_title(f"{task}: model size vs {title}", subtitle))
        .mark_point(size=80, filled=True)
        .encode(
            x=alt.X("params_b:Q", title="parameters (billions)", scale=alt.Scale(type="log")),
            y=alt.Y(f"{column}:Q", title=title),
            shape=_shape(),
            tooltip=_tooltip("params_b:Q", f"{column}:Q"),
        )
        .properties(width=WIDTH, height=280)
    )


def size_vs_components(records: list[dict[str, Any]], task: str) -> Chart:
    """One panel per score component (WattBot: value_accuracy, ref_overlap, na_recall,
    overall), model size on a log axis."""
    rows = _rows([r for r in records if r["task"] == task], "params_b")
    if len({r["params_b"] for r in rows}) < 2:
        return None
    long = [
        {**r, "component": name, "value": value} for r in rows for name, value in _components(r)
    ]
    if not long:
        return None
    return (
        alt.Chart(_data(long), title=_title(f"{task}: model size vs each score component"))
        .mark_point(size=70, filled=True)
        .encode(
            x=alt.X("params_b:Q", title="parameters (billions)", scale=alt.Scale(type="log")),
            y=alt.Y("value:Q", title="score (0-1)", scale=alt.Scale(domain=[0, 1])),
            shape=_shape(),
            facet=alt.Facet("component:N", columns=2, title=None),
            tooltip=_tips("label:N", "component:N", "params_b:Q", "value:Q"),
        )
        .properties(width=260, height=200)
    )


def size_score_cost(records: list[dict[str, Any]], task: str) -> Chart:
    """Bubbles: size on x, score on y, cost as the bubble's area."""
    rows = _rows([r for r in records if r["task"] == task], "params_b", "quality_score", "cost_usd")
    if len(rows) < 2:
        return None
    return (
        alt.Chart(_data(rows), title=_title(f"{task}: size x score x cost", "area: cost (USD)"))
        .mark_circle(opacity=0.6)
        .encode(
            x=alt.X("params_b:Q", title="parameters (billions)", scale=alt.Scale(type="log")),
            y=alt.Y("quality_score:Q", title="score (0-1)", scale=alt.Scale(domain=[0, 1])),
            size=alt.Size("cost_usd:Q", title="cost (USD)"),
            tooltip=_tooltip("params_b:Q", "quality_score:Q", "cost_usd:Q"),
        )
        .properties(width=WIDTH, height=300)
    )


ROUND_PANELS: tuple[tuple[str, str], ...] = (
    ("p50_latency_s", "p50 latency (s)"),
    ("throughput", "throughput (tokens/s)"),
    ("success_rate", "success rate (0-1)"),
)


def rounds_over_time(
    rows: list[dict[str, Any]],
    panels: tuple[tuple[str, str], ...] = ROUND_PANELS,
    title: str = "rounds over time",
    subtitle: str = "one point per round",
) -> Chart:
    """Per round of each multi-round run: p50 latency, throughput and success rate
    against the round's start (``page.round_rows``); the dashboard draws its own
    ``panels`` (column, axis title) of rows with the same ``label``/``round``/``started``."""
    if not rows:
        return None
    base = alt.Chart(_data(rows)).mark_line(point=True)
    x = alt.X("started:T", title="round start (UTC)")
    colour = alt.Color("label:N", title=None)
    charts = [
        base.encode(
            x=x,
            y=alt.Y(f"{col}:Q", title=axis),
            color=colour,
            tooltip=_tips("label:N", "round:O", f"{col}:Q"),
        ).properties(width=WIDTH, height=160)
        for col, axis in panels
    ]
    return alt.vconcat(*charts, title=_title(title, subtitle))


def only_one_solved(matrix: Matrix) -> Chart:
    """Questions exactly one run got right, and which run."""
    long = _matrix_long(matrix)
    right: dict[str, list[str]] = {}
    for r in long:
        if r["correct"] >= 1:
            right.setdefault(r["question"], []).append(r["run"])
    rows = [{"run": runs[0], "question": q} for q, runs in right.items() if len(runs) == 1]
    if len({r["run"] for r in long}) < 2 or not rows:
        return None
    return (
        alt.Chart(_data(rows), title=_title(f"{matrix.task}: questions only one run solved"))
        .mark_bar()
        .encode(
            x=alt.X("count():Q", title="questions"),
            y=alt.Y("run:N", sort="-x", title=None),
            tooltip=_tips("run:N", "count():Q"),
        )
        .properties(width=WIDTH, height=alt.Step(16))
    )


def ensemble_gain(records: list[dict[str, Any]], task: str) -> Chart:
    """Each ensemble's score beside its members' (``ensemble_members``: the member run
    ids from the ensemble's stored config, ``report.comparison``)."""
    by_id = {r["run_id"]: r for r in _rows(records, "quality_score", extra=("ensemble_members",))}
    rows = []
    for e in by_id.values():
        members = [by_id[m] for m in e.get("ensemble_members") or [] if m in by_id]
        if e["task"] != task or not members:
            continue
        best = max(m["quality_score"] for m in members)
        for run, role in [(e, "ensemble"), *((m, "member") for m in members)]:
            rows.append({"ensemble": f"{e['label']} (gain {e['quality_score'] - best:+.3g})",
                         "run": run["label"], "role": role,
                         "quality_score": run["quality_score"]})  # fmt: skip
    if not rows:
        return None
    return (
        alt.Chart(
            _data(rows),
            title=_title(
                f"{task}: ensemble gain over its members", "gain: ensemble score - best member's"
            ),
        )
        .mark_bar()
        .encode(
            x=alt.X("quality_score:Q", title="score (0-1)", scale=alt.Scale(domain=[0, 1])),
            y=alt.Y("run:N", title=None, sort=None),
            color=alt.Color("role:N", title=None),
            row=alt.Row(
                "ensemble:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left")
            ),
            tooltip=_tips("ensemble:N", "run:N", "quality_score:Q"),
        )
        .resolve_scale(y="independent")
        .properties(width=WIDTH - 120, height=alt.Step(16))
    )


def percentiles(records: list[dict[str, Any]], figure: str, title: str) -> Chart:
    """Per run from the summaries' distributions (seconds): a bar from p50 to p95, a
    tick at p99 (two marks a run, so 200 runs stay quick to draw)."""
    rows = []
    for r in _rows(records, extra=("distributions",)):
        dist = (r.get("distributions") or {}).get(figure) or {}
        if dist.get("p50") is not None:
            rows.append({"label": f"{r['label']} · {r['task']}",
                         **{q: dist.get(q) for q in ("p50", "p90", "p95", "p99")}})  # fmt: skip
    if not rows:
        return None
    rows, note = _listed(rows, "p95", "p95")
    subtitle = _join("bar: p50 to p95; tick: p99", note)
    base = alt.Chart(_data(rows), title=_title(f"{title} distribution per run", subtitle))
    y = alt.Y("label:N", title=None)
    tooltip = _tips("label:N", "p50:Q", "p90:Q", "p95:Q", "p99:Q")
    bars = base.mark_bar(height=8).encode(
        x=alt.X("p50:Q", title=f"{title} (s)"), x2=alt.X2("p95:Q"), y=y, tooltip=tooltip
    )
    ticks = base.mark_tick(color="#b00020", thickness=2).encode(
        x=alt.X("p99:Q"), y=y, tooltip=tooltip
    )
    return (bars + ticks).properties(width=WIDTH, height=alt.Step(14))


def throughput_vs_energy(records: list[dict[str, Any]]) -> Chart:
    rows = _rows(records, "throughput_tokens_per_second", "wh_per_1000_queries")
    if not rows:
        return None
    return (
        alt.Chart(_data(rows), title=_title("tokens/s vs energy", _methods(rows)))
        .mark_point(size=80, filled=True)
        .encode(
            x=alt.X("wh_per_1000_queries:Q", title="energy (Wh/1k queries)"),
            y=alt.Y("throughput_tokens_per_second:Q", title="throughput (tokens/s)"),
            shape=_shape(),
            color=alt.Color("task:N"),
            tooltip=_tooltip("wh_per_1000_queries:Q", "throughput_tokens_per_second:Q"),
        )
        .properties(width=WIDTH, height=300)
    )


def sweep_curves(records: list[dict[str, Any]]) -> Chart:
    """Throughput-latency curves of load sweeps (``report.load``): per sweep, each step's
    completed requests/s against its p50 and p95 latency, lightest step first; the knee
    and the offered rate are in the tooltip."""
    rows = []
    extra = (
        "model_name", "settings_label", "sweep_step", "p50_latency_seconds",
        "p95_latency_seconds", "throughput_tokens_per_second", "goodput_share", "sweep_knee_rps",
    )  # fmt: skip
    for r in _rows(records, "completion_rps", "offered_rps", extra=extra):
        if not r.get("sweep_step"):
            continue
        base = str(r.get("settings_label") or "").rpartition("@")[0]
        series = " · ".join(x for x in (r["model_name"], r["task"], base) if x)
        for q in ("p50", "p95"):
            latency = r.get(f"{q}_latency_seconds")
            if latency is not None:
                rows.append({**_keep(r), "series": f"{series} {q}", "latency": latency})
    if not rows:
        return None
    return (
        alt.Chart(_data(rows), title=_title("load sweeps: throughput vs latency"))
        .mark_line(point=True)
        .encode(
            x=alt.X("completion_rps:Q", title="completed requests/s"),
            y=alt.Y("latency:Q", title="latency (s)"),
            color=alt.Color("series:N", title="sweep, percentile"),
            order=alt.Order("offered_rps:Q"),
            tooltip=_tips(
                "series:N",
                "offered_rps:Q",
                "completion_rps:Q",
                "latency:Q",
                "throughput_tokens_per_second:Q",
                "goodput_share:Q",
                "sweep_knee_rps:Q",
            ),
        )
        .properties(width=WIDTH, height=300)
    )


def _keep(r: dict[str, Any]) -> dict[str, Any]:
    names = ("offered_rps", "completion_rps", "throughput_tokens_per_second", "goodput_share")
    return {n: r.get(n) for n in (*names, "sweep_knee_rps")}


def _matrix_long(matrix: Matrix) -> list[dict[str, Any]]:
    runs = [h[: -len(" correct")] for h in matrix.header if h.endswith(" correct")]
    cols = {r: matrix.header.index(f"{r} correct") for r in runs}
    return [
        {"question": row[0], "run": run, "correct": float(row[cols[run]])}
        for row in matrix.rows
        for run in runs
        if row[cols[run]] is not None
    ]


def matrix_heatmap(matrix: Matrix) -> Chart:
    long = _matrix_long(matrix)
    if not long:
        return None
    return (
        alt.Chart(_data(long), title=_title(f"{matrix.task}: correctness per question"))
        .mark_rect()
        .encode(
            x=alt.X("question:N", title="question (sample id)", sort=None),
            y=alt.Y("run:N", title=None),
            color=alt.Color("correct:Q", title="correct", scale=alt.Scale(domain=[0, 1])),
            tooltip=_tips("question:N", "run:N", "correct:Q"),
        )
        .properties(width=alt.Step(14), height=alt.Step(16))
    )


def difficulty(matrix: Matrix) -> Chart:
    long = _matrix_long(matrix)
    runs = {r["run"] for r in long}
    if len(runs) < 2:
        return None
    return (
        alt.Chart(
            _data(long),
            title=_title(f"{matrix.task}: question difficulty", f"{len(runs)} runs"),
        )
        .mark_bar()
        .encode(
            x=alt.X("question:N", sort="-y", title="question (sample id)"),
            y=alt.Y("sum(correct):Q", title="runs that got it right"),
            tooltip=_tips("question:N", "sum(correct):Q"),
        )
        .properties(width=alt.Step(14), height=220)
    )


def agreement(matrix: Matrix) -> Chart:
    """Pairwise agreement: the share of common questions two runs scored alike."""
    by_run: dict[str, dict[str, float]] = {}
    for r in _matrix_long(matrix):
        by_run.setdefault(r["run"], {})[r["question"]] = r["correct"]
    if len(by_run) < 2:
        return None
    rows = []
    for a, qa in by_run.items():
        for b, qb in by_run.items():
            common = qa.keys() & qb.keys()
            if common:
                same = sum(1 for q in common if round(qa[q]) == round(qb[q]))
                rows.append({"a": a, "b": b, "agreement": same / len(common)})
    return (
        alt.Chart(_data(rows), title=_title(f"{matrix.task}: pairwise agreement"))
        .mark_rect()
        .encode(
            x=alt.X("a:N", title=None),
            y=alt.Y("b:N", title=None),
            color=alt.Color("agreement:Q", title="agreement (0-1)", scale=alt.Scale(domain=[0, 1])),
            tooltip=_tips("a:N", "b:N", "agreement:Q"),
        )
        .properties(width=alt.Step(24), height=alt.Step(24))
    )


TaskChart = Callable[[list[dict[str, Any]], str], Chart]
# (file name stem, definition): the per-task plots, in page order.
TASK_CHARTS: tuple[tuple[str, TaskChart], ...] = (
    ("ranking", ranking_bars),
    ("score-vs-energy", score_vs_energy),
    ("score-vs-cost", score_vs_cost),
    ("score-vs-latency", score_vs_latency),
    ("score-components", score_components),
    ("category-correctness", category_correctness),
    ("size-vs-score", lambda r, t: size_vs(r, t, "quality_score", "score (0-1)")),
    ("size-vs-latency", lambda r, t: size_vs(r, t, "avg_latency_seconds", "mean latency (s)")),
    ("size-vs-cost", lambda r, t: size_vs(r, t, "cost_usd", "cost (USD)")),
    ("size-vs-components", size_vs_components),
    ("size-score-cost", size_score_cost),
    ("ensemble-gain", ensemble_gain),
)
MATRIX_CHARTS: tuple[tuple[str, Callable[[Matrix], Chart]], ...] = (
    ("matrix-heatmap", matrix_heatmap),
    ("difficulty", difficulty),
    ("agreement", agreement),
    ("only-one-solved", only_one_solved),
)
BATCH_CHARTS: tuple[tuple[str, Callable[[list[dict[str, Any]]], Chart]], ...] = (
    ("latency-distribution", lambda r: percentiles(r, "latency_s", "latency")),
    ("ttft-distribution", lambda r: percentiles(r, "ttft_s", "TTFT")),
    ("throughput-vs-energy", throughput_vs_energy),
    ("sweep-curves", sweep_curves),
)
