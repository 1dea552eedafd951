"""Terminal tables: the dry-run plan and the end-of-batch summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from fleetbench.cli.progress import fmt, status_colour
from fleetbench.report.rankings import RANKINGS, task_rankings
from fleetbench.report.rankings import label as rank_label
from fleetbench.report.render import INSTALL_HINT
from fleetbench.runner import FILTERED, PlannedRun
from fleetbench.runner.executors import Estimate, Placed


def plan_table(
    runs: list[PlannedRun], schedule: dict[str, tuple[Estimate, Placed]] | None = None
) -> Table:
    """Runs to execute, resume or skip; runs removed by filters are only counted. With
    a parallel executor's ``schedule``: the order, slot and expected duration."""
    shown = [r for r in runs if not r.reason.startswith(FILTERED)]
    hidden = len(runs) - len(shown)
    caption = f"{hidden} more run(s) filtered out" if hidden else None
    table = Table(title="Runs of this batch", title_justify="left", caption=caption)
    columns = ["run_id", "model", "task", "backend", "tokens", "samples", "stored", "action"]
    if schedule is not None:
        columns += ["slot", "expected"]
        order = list(schedule)
        shown.sort(key=lambda r: order.index(r.run_id) if r.run_id in order else len(order))
    for col in [*columns, "why"]:
        table.add_column(col, overflow="fold")
    for run in shown:
        planned = _planned_cells(schedule.get(run.run_id) if schedule else None)
        colour = {"run": "green", "resume": "yellow", "skip": "dim"}[run.action]
        table.add_row(
            run.run_id,
            run.spec.model.name,
            run.spec.task.name,
            run.spec.model.backend,
            _tokens(run),
            str(run.total),
            str(run.stored),
            f"[{colour}]{run.action}[/{colour}]",
            *(planned if schedule is not None else []),
            escape(run.reason or _unplaceable(schedule, run.run_id)),  # reasons quote extras
        )
    return table


def _unplaceable(schedule: dict[str, tuple[Estimate, Placed]] | None, run_id: str) -> str:
    entry = (schedule or {}).get(run_id)
    return (entry[1].reason or "") if entry else ""


def _planned_cells(entry: tuple[Estimate, Placed] | None) -> list[str]:
    if entry is None:
        return ["", ""]
    est, placed = entry
    if est.seconds is None:
        expected = "— (no history)"
    else:
        expected = f"~{est.seconds:.0f} s" + (" (by size)" if est.basis == "size" else "")
    if placed.start_s:
        expected += f", starts ~{placed.start_s:.0f} s"
    return [placed.slot, expected]


def _tokens(run: PlannedRun) -> str:
    g = run.spec.generation
    return f"{g.min_tokens}-{g.max_tokens}" if g.min_tokens else f"≤{g.max_tokens}"


# The terminal shows at most this many runs (rich lays out 1,000 rows in ~10 s, and
# nobody reads them there); the master CSV and the HTML report hold every run.
TABLE_MAX_RUNS = 50


def shown_runs(summaries: list[dict[str, Any]], limit: int = TABLE_MAX_RUNS) -> list[int]:
    """Indexes of the runs the table shows, in order: all of them up to ``limit``,
    else the runs that did not complete first, then the others, ``limit`` in all."""
    if len(summaries) <= limit:
        return list(range(len(summaries)))
    unfinished = [i for i, s in enumerate(summaries) if s.get("status") != "completed"]
    rest = [i for i, s in enumerate(summaries) if s.get("status") == "completed"]
    return sorted((unfinished + rest)[:limit])


def summary_table(summaries: list[dict[str, Any]]) -> Table:
    shown = shown_runs(summaries)
    caption = (
        f"{len(shown)} of {len(summaries)} runs shown (those that did not complete first); "
        "every run: master_results.csv and the HTML report"
        if len(shown) < len(summaries)
        else None
    )
    table = Table(title="Results", title_justify="left", caption=caption, caption_justify="left")
    priced = any(s.get("cost_usd") is not None for s in summaries)
    rated = any(s.get("energy_stars") is not None for s in summaries)
    scored = any(s.get("quality_score") is not None for s in summaries)
    # Only when some run's energy does not cover the model's work (or may not).
    scoped = any(s.get("energy_scope") not in ("in-process", None) for s in summaries)
    headers = [
        "model",
        "backend",
        "task",
        "status",
        "ok/total",
        *(["quality"] if scored else []),
        "latency p50/p95 s",
        "TTFT p50/p95 s",
        "tok/s",
        "energy Wh",
        "method",
        *(["energy scope"] if scoped else []),
        *(["stars"] if rated else []),
        *(["cost $"] if priced else []),
        "error",
    ]
    for header in headers:
        table.add_column(header, overflow="fold")
    for s in (summaries[i] for i in shown):
        colour = status_colour(s["status"])
        table.add_row(
            s["model_name"],
            s["backend"],
            _task(s),
            f"[{colour}]{s['status']}[/{colour}]",
            f"{s['successful_prompts']}/{s['total_prompts']}",
            *([_quality(s)] if scored else []),
            _p50_p95(s, "latency"),
            _p50_p95(s, "ttft"),
            fmt(s["throughput_tokens_per_second"], ".1f"),
            fmt(s["energy_wh"], ".4f"),
            s["energy_method"],
            *([s.get("energy_scope") or "?"] if scoped else []),
            *([_stars(s.get("energy_stars"))] if rated else []),
            *([fmt(s.get("cost_usd"), ".4g")] if priced else []),
            escape(s["error_message"]),
        )
    return table


def summary_notes(summaries: list[dict[str, Any]]) -> list[str]:
    """One warning line per run whose token counts are unknown (its token figures are
    empty, not 0), saying why and what fixes it; one note per run that read the gold
    passages (``oracle_passages``), whose quality is an upper bound; one line per load
    sweep."""
    notes = [
        f"warning: {s['model_name']} / {s['task']}: token counts unknown, so token "
        f"totals, tokens/s, tokens per joule and cost are empty: {s['token_count_unknown_reason']}"
        for s in summaries
        if s.get("token_count_unknown_reason")
    ] + [
        f"note: {s['model_name']} / {s['task']}: corpus oracle_passages shows the model each "
        "question's own supporting_materials (the gold evidence): its score is an upper "
        "bound, not a retrieval result"
        for s in summaries
        if s.get("retrieval_corpus") == "oracle_passages"
    ]
    return notes + sweep_lines(summaries)


def sweep_lines(summaries: list[dict[str, Any]]) -> list[str]:
    """One line per load sweep: its steps, knee and saturation (``report.load``)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for s in summaries:
        if s.get("sweep") and s.get("offered_rps"):
            base = str(s.get("settings_label") or "").rpartition("@")[0]
            groups.setdefault((s["model_name"], s["task"], base), []).append(s)
    lines = []
    for key, steps in groups.items():
        rates = sorted(float(s["offered_rps"]) for s in steps)
        first = steps[0]
        knee = first.get("sweep_knee_rps")
        found = f"knee {knee:g} rps" if knee is not None else first.get("sweep_knee_reason")
        top = first.get("sweep_saturation_rps")
        saturation = f"; at most {top:.3g} completed requests/s" if top is not None else ""
        name = " / ".join(k for k in key if k)
        lines.append(
            f"sweep: {name}: {len(steps)} steps {rates[0]:g}-{rates[-1]:g} rps, {found}{saturation}"
        )
    return lines


def _quality(summary: dict[str, Any]) -> str:
    """The primary score with its metric's name (tasks differ in what they score)."""
    score = summary.get("quality_score")
    return "—" if score is None else f"{summary.get('quality_metric') or 'score'} {score:.3g}"


def _p50_p95(summary: dict[str, Any], figure: str) -> str:
    p50, p95 = summary.get(f"p50_{figure}_seconds"), summary.get(f"p95_{figure}_seconds")
    return "—" if p50 is None else f"{fmt(p50)}/{fmt(p95)}"


def _task(summary: dict[str, Any]) -> str:
    """The task, with what its model read when the task retrieves (e.g. closed-book)."""
    corpus = summary.get("retrieval_corpus")
    return escape(f"{summary['task']} ({corpus})" if corpus else summary["task"])


def stars_notes(summaries: list[dict[str, Any]]) -> list[str]:
    """Why completed runs have no energy stars (e.g. too few runs to rate within the
    batch): one line per distinct reason, none when every completed run is rated."""
    reasons = [
        s.get("energy_stars_reason") or ""
        for s in summaries
        if s.get("status") == "completed" and s.get("energy_stars") is None
    ]
    return [f"no energy stars: {r}" for r in dict.fromkeys(reasons) if r]


def _stars(stars: int | None) -> str:
    return "★" * stars + "☆" * (5 - stars) if stars else "—"


def report_line(page: Path | None) -> str:
    """Where the HTML report is, or the one line that says how to get it."""
    if page is None:
        return f"report: not written (the report extra is not installed; run: {INSTALL_HINT})"
    return f"report: {page}"


def ranking_lines(summaries: list[dict[str, Any]]) -> list[str]:
    """Per task, the leader of each ranking and the Pareto sets (``report.rankings``);
    nothing for a task where no run has any ranked figure."""
    lines = []
    for task, per_task in task_rankings(summaries).items():
        leaders = [
            f"{r.title.lower()}: {entries[0]['label']} ({fmt(entries[0]['value'], '.4g')}"
            + (f" {r.unit})" if r.unit else ")")
            for r in RANKINGS
            if (entries := per_task["rankings"][r.key])
        ]
        labels = {s["run_id"]: rank_label(s) for s in summaries}
        fronts = [
            f"score vs {axis}: {', '.join(labels[i] for i in ids)}"
            for axis, ids in per_task["pareto"].items()
            if ids
        ]
        if leaders:
            lines.append(f"{task}: " + "; ".join(leaders))
        if fronts:
            lines.append(f"{task} Pareto-optimal: " + "; ".join(fronts))
    return lines
