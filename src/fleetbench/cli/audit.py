"""``fleetbench audit``: check a results folder's runs before comparing them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from fleetbench.cli.run import DEFAULT_OUTPUT, make_console
from fleetbench.report.aggregate import summarize_run
from fleetbench.report.audit import ERROR, Thresholds, audit
from fleetbench.store.opener import open_store

AUDIT_HELP = "\n\n".join(
    [
        "Check the stored runs of a results folder and print findings with a severity: "
        "error (stored scores that rescoring the stored answers does not reproduce, an "
        "error rate above --max-error-rate), warning (unknown token counts, missing or "
        "mixed energy methods within a task, duplicate runs, reasoning cut off by "
        "max_tokens, fewer than --min-samples successful samples, a mean latency above "
        "--latency-factor x the task's median run) or info (a check that could not run).",
        "Nothing is written. Exit code 1 when any finding is an error, 2 on bad input.",
    ]
)


def audit_command(
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="Results folder holding fleetbench.db."),
    ] = DEFAULT_OUTPUT,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the findings as JSON instead of a table.")
    ] = False,
    latency_factor: Annotated[
        float,
        typer.Option(min=1.0, help="Flag runs slower than this x the task's median run."),
    ] = Thresholds.latency_factor,
    max_error_rate: Annotated[
        float,
        typer.Option(min=0.0, max=1.0, help="Failed samples share above which a run is an error."),
    ] = Thresholds.max_error_rate,
    min_samples: Annotated[
        int, typer.Option(min=1, help="Successful samples a run needs to be compared.")
    ] = Thresholds.min_samples,
) -> None:
    store = open_store(output.resolve())
    try:
        summaries = [summarize_run(store, row) for row in store.runs()]
        findings = audit(store, summaries, Thresholds(latency_factor, max_error_rate, min_samples))
    finally:
        store.close()
    errors = sum(f.severity == ERROR for f in findings)
    if as_json:
        document = {"findings": [f.as_dict() for f in findings], "errors": errors}
        typer.echo(json.dumps(document, indent=2))
    else:
        console = make_console()
        table = Table(title=f"Audit of {output} ({len(summaries)} run(s))", title_justify="left")
        for column in ("severity", "check", "run", "finding"):
            table.add_column(column, overflow="fold")
        colours = {"error": "red", "warning": "yellow", "info": "dim"}
        for f in findings:
            colour = colours[f.severity]
            table.add_row(
                f"[{colour}]{f.severity}[/{colour}]", f.check, f.run_id, escape(f.message)
            )
        console.print(table if findings else "audit: no findings")
        console.print(f"audit: {errors} error(s), {len(findings) - errors} other finding(s)")
    if errors:
        raise typer.Exit(1)
