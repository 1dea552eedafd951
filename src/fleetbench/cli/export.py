"""``fleetbench export samples``: the store's samples as one time-series table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fleetbench.cli.run import DEFAULT_OUTPUT, make_console
from fleetbench.errors import ConfigError
from fleetbench.report.samples_export import EXPORTS_DIR, FORMATS, export_samples
from fleetbench.runner.ticks import parse_timestamp
from fleetbench.store.opener import open_store

export_app = typer.Typer(
    help="Export stored results as flat files for dashboards and notebooks.",
    no_args_is_help=True,
)


@export_app.command("samples")
def samples(
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="Results folder holding fleetbench.db."),
    ] = DEFAULT_OUTPUT,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help=f"File format: {', '.join(FORMATS)}.")
    ] = "csv",
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only samples received at or after this (ISO 8601; UTC)."),
    ] = None,
    to: Annotated[
        Path | None,
        typer.Option("--to", help="Write here (default: OUTPUT/exports/samples.<format>)."),
    ] = None,
) -> None:
    """One record per sample and round: timestamp (UTC), round, run, model, provider,
    category, question, latency, TTFT, throughput, success, error, tokens, energy and
    every numeric score (see the README's "Time-series exports")."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: unknown; valid: {', '.join(FORMATS)}")
    start = parse_timestamp(since, "--since") if since is not None else None
    store = open_store(output.resolve())
    try:
        path = to or output / EXPORTS_DIR / f"samples.{fmt}"
        count = export_samples(store, path, fmt, start)
    finally:
        store.close()
    make_console().print(f"{count} records → {path}")
