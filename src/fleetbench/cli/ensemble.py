"""``fleetbench ensemble``: combine stored runs of one task into a new, scored run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fleetbench.cli.matrix import OUTPUT_HELP
from fleetbench.cli.run import DEFAULT_OUTPUT
from fleetbench.cli.tables import report_line
from fleetbench.report import MASTER_FILE
from fleetbench.report.master import format_cell
from fleetbench.report.page import INDEX, REPORT_DIR
from fleetbench.report.render import report_available
from fleetbench.report.select import split_ids
from fleetbench.runner.ensemble import EnsembleSpec, create_ensemble
from fleetbench.runner.ensemble_vote import Strategy

ENSEMBLE_HELP = "\n\n".join(
    [
        "Combine stored runs of one task into a new stored run, scored like any other.",
        "The ensemble answers each question with one member's answer, chosen by --strategy; "
        "members are compared by their normalised answer (wattbot: the answer_value "
        "normalised by the WattBot scorer; custom: the scorer's normalisation, e.g. the "
        "extracted number or choice letter; others: the text with whitespace, case and "
        "wrapping quotes normalised). Failed or unparsable answers never win.",
        "majority: the most common answer; ties go to the earlier member in --runs order. "
        "first_non_blank: the first member whose answer is not blank (wattbot: is_blank, "
        "NA, n/a, empty, 'unable to answer...'; others: empty). confidence: the answer with "
        "the highest self-reported confidence (a `confidence` field, 0..1 or a percentage, "
        "in a wattbot JSON answer); where no member reported one, majority.",
        "The new run has backend `ensemble`, its members and strategy in its config, and for "
        "every question the member(s) that supplied the answer (stored with the sample). Its "
        "tokens, latency, energy and cost per question are the SUM over the members, the "
        "cost of asking them all. It appears in master_results.csv, runs/<run_id>/ and "
        "`fleetbench matrix`; running the same ensemble again replaces it.",
        "Bad input (fewer than two runs, an unknown run id, runs of different tasks) prints "
        "one line and exits with code 2.",
    ]
)


def ensemble(
    runs: Annotated[
        list[str],
        typer.Option(
            "--runs",
            help="Member runs, in priority order: run ids (or unique prefixes), repeated or "
            "comma-separated (--runs A --runs B, --runs A,B); at least two, one task.",
            show_default=False,
        ),
    ],
    strategy: Annotated[
        Strategy,
        typer.Option("--strategy", "-s", help="How to pick each question's answer (see above)."),
    ] = "majority",
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            help="Model name of the new run in every output (default: ensemble-<strategy>).",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        Path, typer.Option("--output", "-o", help=OUTPUT_HELP, show_default=False)
    ] = DEFAULT_OUTPUT,
) -> None:
    folder = output.resolve()
    summary = create_ensemble(EnsembleSpec(folder, split_ids(runs), strategy, name))
    quality = summary.get("quality_score")
    metric = summary.get("quality_metric") or "quality"
    typer.echo(
        f"ensemble run {summary['run_id']}: {summary['successful_prompts']} question(s), "
        f"{metric} {format_cell(quality) or 'n/a'}"
    )
    typer.echo(f"results: {folder / MASTER_FILE}")
    page = folder / REPORT_DIR / INDEX
    typer.echo(report_line(page if report_available() else None))
