"""``fleetbench batches``: the batches of an output folder, to name, inspect and resume."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from fleetbench.runner.batches import list_batches

BATCHES_HELP = (
    "List the batches of an output folder: id, name, plan, started, status and its runs "
    "(done = completed, failed = failed, completed_with_errors or interrupted, by their "
    "current status). Resume one with `fleetbench run --resume ID`."
)


def batches(
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="Results folder.", show_default=True),
    ] = Path("fleetbench-results"),
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
) -> None:
    rows = [b.row() for b in list_batches(output.resolve())]
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    from fleetbench.cli.run import make_console

    table = Table(title=f"Batches in {output}", title_justify="left")
    columns = ("batch_id", "name", "plan", "started", "status", "runs", "done", "failed")
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*(str(row[c]) for c in columns))
    make_console().print(table)
