"""The ``fleetbench`` command line. One module per command."""

from __future__ import annotations

import sys
from importlib import resources
from typing import Annotated

import typer

from fleetbench import __version__
from fleetbench.cli.audit import AUDIT_HELP, audit_command
from fleetbench.cli.batches import BATCHES_HELP, batches
from fleetbench.cli.dashboard import DASHBOARD_HELP, dashboard
from fleetbench.cli.ensemble import ENSEMBLE_HELP, ensemble
from fleetbench.cli.export import export_app
from fleetbench.cli.matrix import MATRIX_HELP, matrix
from fleetbench.cli.models import models_app
from fleetbench.cli.report import REPORT_HELP, report
from fleetbench.cli.run import run
from fleetbench.cli.schedule import schedule
from fleetbench.cli.score import score_app
from fleetbench.errors import UserError

try:  # typer >= 0.20 vendors its own copy of click
    from typer._click import exceptions as _usage
except ImportError:  # pragma: no cover - older typer on the real click
    from click import exceptions as _usage  # type: ignore[no-redef]

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
app.command("audit", help=AUDIT_HELP)(audit_command)
app.command()(schedule)
app.add_typer(export_app, name="export")
app.command(help=BATCHES_HELP)(batches)
app.command(help=DASHBOARD_HELP)(dashboard)


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
    """Entry point: every user mistake is one line on stderr and exit code 2.

    Typer runs in non-standalone mode so that its usage errors (a bad flag value, an
    unknown option) reach us and print like every other mistake, not as a boxed panel.
    """
    try:
        code = app(prog_name="fleetbench", standalone_mode=False)
    except _usage.NoArgsIsHelpError as exc:  # `fleetbench models`: the group's help
        sys.stdout.write(exc.ctx.get_help() + "\n" if exc.ctx else "")
        sys.exit(2)
    except _usage.UsageError as exc:
        where = f"; see `{exc.ctx.command_path} --help`" if exc.ctx else ""
        sys.stderr.write(f"error: {_one_line(exc.format_message()).rstrip('.')}{where}\n")
        sys.exit(2)
    except _usage.ClickException as exc:  # e.g. an unreadable file argument
        sys.stderr.write(f"error: {_one_line(exc.format_message())}\n")
        sys.exit(exc.exit_code)
    except typer.Abort:  # Ctrl-C outside a batch (a batch handles its own)
        sys.stderr.write("\naborted\n")
        sys.exit(130)
    except UserError as exc:
        sys.stderr.write(f"error: {exc}\n")
        sys.exit(exc.exit_code)
    # A command that returns normally gives None; ``typer.Exit(n)`` comes back as n.
    sys.exit(code if isinstance(code, int) else 0)


def _one_line(text: str) -> str:
    return " ".join(text.split())
