"""``fleetbench report``: rewrite a results folder's outputs from its store, no model run."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from fleetbench.cli.run import DEFAULT_OUTPUT, make_console
from fleetbench.cli.tables import (
    ranking_lines,
    report_line,
    stars_notes,
    summary_notes,
    summary_table,
)
from fleetbench.errors import ConfigError
from fleetbench.report.exports import export_results
from fleetbench.report.master import MASTER_FILE
from fleetbench.report.page import write_report
from fleetbench.report.render import report_available, stop_plot_worker, warm_up
from fleetbench.report.stars import load_reference
from fleetbench.runner import load_plan
from fleetbench.runner.batch import apply_plan_settings
from fleetbench.store.lock import OutputLock
from fleetbench.store.opener import open_store

REPORT_HELP = "\n\n".join(
    [
        "Rewrite master_results.csv and every run's summary.json, results.jsonl and task "
        "files from the store, and print the results table. No model is loaded. What "
        "only a running attempt writes (run.log, job.json, server.log) is not rebuilt.",
        "It also writes report/: index.html (one self-contained page: results table, "
        "rankings, Pareto sets, plots, run details; opens offline), comparison.csv/.json "
        "and every plot as plots/*.png and .svg. These need the report extra: "
        "pip install 'fleetbench[report]'.",
        "Use it after upgrading fleetbench (new columns), after deleting output files, or "
        "to rate energy stars against another reference table.",
        "CO2 and stars use each run's stored energy settings: those of the latest batch "
        "that selected the run. With --plan PLAN, PLAN's energy settings "
        "(energy.carbon_region, carbon_intensity_g_per_kwh, stars_reference) replace "
        "them for PLAN's stored runs first, and stay.",
        "Bad input (no store, an unreadable reference table, another batch writing to the "
        "same folder) prints one line and exits with code 2.",
    ]
)


def report(
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Results folder holding fleetbench.db (default: the --plan's 'output', "
            f"else ./{DEFAULT_OUTPUT}).",
            show_default=False,
        ),
    ] = None,
    plan: Annotated[
        Path | None,
        typer.Option(
            "--plan",
            help="Plan whose energy settings apply to its stored runs from now on (after "
            "editing energy.carbon_region, carbon_intensity_g_per_kwh or stars_reference).",
            show_default=False,
        ),
    ] = None,
    stars_reference: Annotated[
        Path | None,
        typer.Option(
            "--stars-reference",
            help="CSV of reference energies (task, model_class, wh_per_1000_queries) to rate "
            "stars against, instead of the plan's energy.stars_reference or the batch's own "
            "range.",
            show_default=False,
        ),
    ] = None,
) -> None:
    loaded = load_plan(plan) if plan is not None else None
    output = (output or (loaded.plan.output if loaded else None) or DEFAULT_OUTPUT).resolve()
    reference = load_reference(stars_reference) if stars_reference is not None else None
    store = open_store(output)
    if report_available():
        # Two vl-convert processes warm up while the runs are summarised: vl-convert
        # holds the GIL, so plots rendered here go one at a time (report/plotworker.py).
        warm_up(plot_worker=True)
    try:
        with OutputLock(output):
            store.interrupt_dead()  # we hold the lock: whatever still says "running" is dead
            if loaded is not None and not apply_plan_settings(store, loaded):
                raise ConfigError(
                    f"{loaded.source}: none of its runs is stored in {output}; "
                    "run it first or give its results folder with --output"
                )
            pages: list[Path | None] = []
            # The page is built while worker processes, if any, write the runs' documents.
            with _folders_progress() as progress:
                summaries = export_results(
                    store, output, [], reference,
                    lambda summaries: pages.append(
                        write_report(store, output, summaries) if report_available() else None
                    ),
                    progress,
                )  # fmt: skip
            page = pages[0] if pages else None
    finally:
        stop_plot_worker()
        store.close()
    console = make_console()
    if summaries:
        console.print(summary_table(summaries))
        for note in [*summary_notes(summaries), *stars_notes(summaries), *ranking_lines(summaries)]:
            console.print(note, markup=False)
    console.print(f"results: {output / MASTER_FILE} ({len(summaries)} run(s))")
    console.print(report_line(page), markup=False)


@contextmanager
def _folders_progress() -> Iterator[Callable[[int, int], None]]:
    """A bar on stderr (a terminal's only, gone at the end) of the runs whose folders
    worker processes bring up to date: over a store no batch wrote, a million samples
    take a while (``report.samplefiles.FolderWorkers``)."""
    console = Console(stderr=True, highlight=False)
    bar = Progress(
        TextColumn("run folders"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True, disable=not console.is_terminal,
    )  # fmt: skip
    task: list[TaskID] = []

    def update(done: int, total: int) -> None:
        if not task:
            bar.start()
            task.append(bar.add_task("", total=total))
        bar.update(task[0], completed=done, total=total)

    try:
        yield update
    finally:
        bar.stop()
