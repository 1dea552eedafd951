"""``fleetbench report``: rewrite a results folder's outputs from its store, no model run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fleetbench.cli.matrix import OUTPUT_HELP
from fleetbench.cli.run import DEFAULT_OUTPUT, make_console
from fleetbench.cli.tables import summary_notes, summary_table
from fleetbench.report.exports import export_results
from fleetbench.report.master import MASTER_FILE
from fleetbench.report.stars import load_reference
from fleetbench.store.lock import OutputLock
from fleetbench.store.opener import open_store

REPORT_HELP = "\n\n".join(
    [
        "Rewrite master_results.csv and every run's summary.json, results.jsonl and task "
        "files from the store, and print the results table. No model is loaded. What "
        "only a running attempt writes (run.log, job.json, server.log) is not rebuilt.",
        "Use it after upgrading fleetbench (new columns), after deleting output files, or "
        "to rate energy stars against another reference table.",
        "Bad input (no store, an unreadable reference table, another batch writing to the "
        "same folder) prints one line and exits with code 2.",
    ]
)


def report(
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help=OUTPUT_HELP,
            show_default=False,
        ),
    ] = DEFAULT_OUTPUT,
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
    output = output.resolve()
    reference = load_reference(stars_reference) if stars_reference is not None else None
    store = open_store(output)
    try:
        with OutputLock(output):
            summaries = export_results(store, output, [], reference)
    finally:
        store.close()
    console = make_console()
    if summaries:
        console.print(summary_table(summaries))
        for note in summary_notes(summaries):
            console.print(note, markup=False)
    console.print(f"results: {output / MASTER_FILE} ({len(summaries)} run(s))")
