"""``DIR/report/``: the self-contained HTML comparison, its plots as files, and the
comparison tables.

Everything comes from the run summaries (``report.aggregate``) and read-only store
queries: per-task results matrices for the matrix plots, the first samples and the
attempts of each run for the run details. The page inlines the Vega JavaScript, the
chart specs and the data, so it opens from disk with the network off.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fleetbench.fsutil import atomic_write_text
from fleetbench.report import comparison, render
from fleetbench.report.audit import Finding, audit
from fleetbench.report.cards import batch_cards
from fleetbench.report.matrix import SAMPLE_METRIC, build_matrix
from fleetbench.report.rankings import PARETO_AXES, RANKINGS, label, task_rankings
from fleetbench.report.timing import ranked_percentile
from fleetbench.store import Store

if TYPE_CHECKING:
    import jinja2

REPORT_DIR = "report"
INDEX = "index.html"
SAMPLES_SHOWN = 5  # per run, in the sample browser
# Per run, the latest attempts and those that failed: a schedule of 100 rounds has 100
# attempts a run, and 1,000 runs' tables were a third of the page's build time.
ATTEMPTS_SHOWN = 10
MATRIX_MAX_RUNS = 60  # matrix plots beyond this would be unreadable (and heavy)
MATRIX_MAX_QUESTIONS = 120

TABLE_COLUMNS: list[tuple[str, str]] = [
    ("label", "model"),
    ("task", "task"),
    ("backend", "backend"),
    ("categories", "categories"),
    ("status", "status"),
    ("quality_score", "score"),
    ("avg_latency_seconds", "latency s"),
    ("p95_latency_seconds", "p95 latency s"),
    ("avg_ttft_seconds", "TTFT s"),
    ("throughput_tokens_per_second", "tokens/s"),
    ("wh_per_1000_queries", "Wh/1k queries"),
    ("tokens_per_joule", "tokens/J"),
    ("energy_method", "energy method"),
    ("gpu_avg_power_w", "GPU avg W"),
    ("gpu_peak_power_w", "GPU peak W"),
    ("cost_usd", "cost $"),
    ("params_b", "params B"),
]


def write_report(
    store: Store,
    output: Path,
    summaries: list[dict[str, Any]],
    findings: list[Finding] | None = None,
) -> Path:
    """Write ``output/report/`` and return the path of its ``index.html``; the page
    shows the audit's ``findings`` (default thresholds unless given)."""
    render.require()
    from fleetbench.report import charts  # needs altair: after require()

    folder = output / REPORT_DIR
    if findings is None:
        findings = audit(store, summaries)
    runs = store.runs()
    by_id = {r["run_id"]: r for r in runs}
    rankings = task_rankings(summaries)
    records = comparison.records(summaries, runs, rankings)
    comparison.write_comparison(folder, records, rankings)

    with _Plots(folder / "plots") as plots:
        tasks = list(dict.fromkeys(r["task"] for r in records))
        for task in tasks:
            slug = _slug(task)
            for name, definition in charts.TASK_CHARTS:
                plots.add(f"{slug}-{name}", definition(records, task), task)
            task_runs = [by_id[r["run_id"]] for r in records if r["task"] == task]
            if task in SAMPLE_METRIC and 0 < len(task_runs) <= MATRIX_MAX_RUNS:
                matrix = build_matrix(store, task, task_runs)
                rows = matrix.rows[:MATRIX_MAX_QUESTIONS]
                matrix = type(matrix)(matrix.task, matrix.header, rows)
                for name, mdef in charts.MATRIX_CHARTS:
                    plots.add(f"{slug}-{name}", mdef(matrix), task)
        for name, bdef in charts.BATCH_CHARTS:
            plots.add(name, bdef(records), "")
        over_time, note = round_rows(summaries)
        plots.add("rounds-over-time", charts.rounds_over_time(over_time, subtitle=note), "")

        specs = plots.specs
        version = render.vl_version(specs[0]["spec"]) if specs else "6.4"
        page = template().render(
            generated=datetime.now(UTC).isoformat(timespec="seconds"),
            batch=batch_cards(records),
            columns=TABLE_COLUMNS,
            rows=[{**r, "label": label(r)} for r in records],
            tasks=tasks,
            rankings=rankings,
            ranking_defs=RANKINGS,
            pareto_axes=PARETO_AXES,
            labels={r["run_id"]: label(r) for r in records},
            plots=specs,
            details=[_details(store, by_id[r["run_id"]], r) for r in records],
            findings=findings,
            fmt=_fmt,
            script_json=render.script_json,
            vega_js=render.javascript_bundle(version),
        )
        plots.wait()
    index = folder / INDEX
    atomic_write_text(index, page)
    return index


class _Plots:
    """The page's plots. Each one's files are rendered on a thread while the next plot's
    spec is built and the page rendered: the report ends every batch, so its time is the
    batch's (benchmarks/makespan.py). vl-convert holds the GIL while it converts, so
    after a parallel batch the threads hand the specs to its plot workers
    (``render.warm_up``), and two plots render at once beside the page."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.specs: list[dict[str, Any]] = []
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="report-plot")
        self._saved: list[Future[list[Path]]] = []

    def add(self, name: str, chart: Any, section: str) -> None:
        if chart is None:
            return
        spec = chart.to_dict(validate=False)  # tests validate; here it costs ~60 ms a plot
        self._saved.append(self._pool.submit(render.save, spec, self.folder, name))
        self.specs.append({"id": name, "section": section, "spec": spec})

    def wait(self) -> None:
        """Every plot's files are written; the first failure raises, as it would have
        when rendered in line."""
        for saved in self._saved:
            saved.result()

    def __enter__(self) -> _Plots:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


# Past this many multi-round runs the over-time chart shows the fleet (median and
# 10th/90th percentile across runs per round) instead of one line per run: 1,000 lines
# are unreadable, and their 100,000 points took a minute to render.
MAX_ROUND_SERIES = 12
FLEET_QUANTILES = ((50, "median"), (10, "p10"), (90, "p90"))


def round_rows(
    summaries: list[dict[str, Any]], max_series: int = MAX_ROUND_SERIES
) -> tuple[list[dict[str, Any]], str]:
    """The over-time chart's rows and its subtitle: one row per round of every run
    measured in several rounds (schedules, ``--repeat``): its start, p50 latency,
    throughput and success rate (the summaries' ``round_series``); past ``max_series``
    runs, per round number the median, p10 and p90 of those figures across runs."""
    series = [
        (f"{label(s)} · {s['task']}", s["round_series"]) for s in summaries if s.get("round_series")
    ]
    if len(series) <= max_series:
        rows = [
            {"label": name, "round": f["round"], "started": _iso(f["first_sent"]),
             **{k: f[k] for k in ROUND_FIGURES}}
            for name, figures in series
            for f in figures
        ]  # fmt: skip
        return rows, "one point per round"
    by_round: dict[int, list[dict[str, Any]]] = {}
    for _, figures in series:
        for f in figures:
            by_round.setdefault(int(f["round"]), []).append(f)
    rows = []
    for number, group in sorted(by_round.items()):
        started = _iso(min(float(f["first_sent"]) for f in group))
        # Each figure's values sorted once for the three quantiles.
        ranked = {k: sorted(f[k] for f in group if f[k] is not None) for k in ROUND_FIGURES}
        for q, name in FLEET_QUANTILES:
            rows.append(
                {"label": f"fleet {name}", "round": number, "started": started}
                | {k: ranked_percentile(xs, q) if xs else None for k, xs in ranked.items()}
            )  # fmt: skip
    note = (
        f"{len(series)} runs: median, p10 and p90 across runs per round "
        "(each run's rounds: summary.json round_series)"
    )
    return rows, note


ROUND_FIGURES = ("p50_latency_s", "throughput", "success_rate")


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(float(epoch), UTC).isoformat()


def template() -> jinja2.Template:
    """The page's template, compiled once per process."""
    return _environment().get_template("index.html.j2")


@functools.cache
def _environment() -> jinja2.Environment:
    """One environment per process: it keeps the compiled templates (compiling the
    page's costs ~0.09 s, which ``render.warm_up`` pays while a batch's runs execute)."""
    import jinja2  # when a page is written, not in every command's start-up

    return jinja2.Environment(
        loader=jinja2.PackageLoader("fleetbench.report", "html"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        auto_reload=False,  # package files: no stat of the template at every page
    )


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in text.lower())


def _fmt(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _split_diff(scores_json: str) -> tuple[str, str]:
    """A sample's scores and, apart, the unified ``diff`` a task stored with them (a
    repository task's change), shown as a block of its own."""
    scores = json.loads(scores_json) if scores_json.startswith("{") else None
    if not (isinstance(scores, dict) and isinstance(scores.get("diff"), str)):
        return scores_json, ""
    diff = scores.pop("diff")
    return json.dumps(scores), diff


def _details(store: Store, run: sqlite3.Row, record: dict[str, Any]) -> dict[str, Any]:
    samples = []
    for s in store.samples(run["run_id"], below=SAMPLES_SHOWN, limit=SAMPLES_SHOWN):
        inputs = json.loads(s["input_json"] or "{}")
        prompt = inputs.get("prompt") or json.dumps(inputs.get("messages") or "", indent=1)
        scores_text, diff = _split_diff(s["scores_json"] or "")
        samples.append(
            {
                "id": s["sample_id"] + (f" (round {s['round']})" if s["round"] != 1 else ""),
                "prompt": prompt,
                "answer": s["answer_text"] if s["answer_text"] is not None else s["output_text"],
                "reasoning": s["reasoning_text"] or "",
                "scores": scores_text,
                "diff": diff,
                "error": s["error"] or "",
            }
        )
    stored = store.attempt_outcomes(run["run_id"])
    latest = {a["attempt"] for a in stored[-ATTEMPTS_SHOWN:]}
    failed = [a["attempt"] for a in stored if a["error_message"]][-ATTEMPTS_SHOWN:]
    shown = [a for a in stored if a["attempt"] in latest or a["attempt"] in failed]
    attempts = [
        {
            "attempt": a["attempt"],
            "status": a["status"],
            "started": datetime.fromtimestamp(a["started_at"], UTC).isoformat(timespec="seconds"),
            "error": a["error_message"] or "",
        }
        for a in shown
    ]
    return {
        "run_id": run["run_id"],
        "label": label(record),
        "task": record["task"],
        "status": record["status"],
        "error": record.get("error_message") or "",
        "config": json.dumps(json.loads(run["config_json"] or "{}"), indent=2),
        "attempts": attempts,
        "attempts_hidden": len(stored) - len(shown),
        "samples": samples,
    }
