"""The ``fleetbench`` command line. One module per command."""

from __future__ import annotations

import sys
from importlib import resources
from typing import Annotated

import typer

from fleetbench import __version__
from fleetbench.cli.ensemble import ENSEMBLE_HELP, ensemble
from fleetbench.cli.matrix import MATRIX_HELP, matrix
from fleetbench.cli.models import models_app
from fleetbench.cli.report import REPORT_HELP, report
from fleetbench.cli.run import run
from fleetbench.cli.score import score_app
from fleetbench.errors import UserError

app = typer.Typer(
    help="Run a fleet of language models through benchmarks in one batch and compare "
    "quality, speed, energy, memory and cost side by side.\n\n"
    "Start with `fleetbench run` (the built-in demo) or `fleetbench run PLAN.yaml`.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command()(run)
app.add_typer(models_app, name="models")
app.add_typer(score_app, name="score")
app.command(help=MATRIX_HELP)(matrix)
app.command(help=ENSEMBLE_HELP)(ensemble)
app.command(help=REPORT_HELP)(report)


@app.command("example-plan")
def example_plan() -> None:
    """Print the built-in demo plan: a commented starting point for your own plan."""
    sys.stdout.write(resources.files("fleetbench.plans").joinpath("demo.yaml").read_text())


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fleetbench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")
    ] = False,
) -> None:
    pass


def main() -> None:
    """Entry point: user errors become one line on stderr and exit code 2."""
    try:
        app()  # standalone: usage errors exit 2, --help and typer.Exit handled by typer
    except UserError as exc:
        sys.stderr.write(f"error: {exc}\n")
        sys.exit(exc.exit_code)
