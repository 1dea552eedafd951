"""The ``fleetbench`` command line. One module per command."""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from collections.abc import Callable
from typing import Annotated, NoReturn

import typer

from fleetbench import __version__
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


def _add_run() -> None:
    from fleetbench.cli.run import run

    app.command()(run)


def _add_models() -> None:
    from fleetbench.cli.models import models_app

    app.add_typer(models_app, name="models")


def _add_score() -> None:
    from fleetbench.cli.score import score_app

    app.add_typer(score_app, name="score")


def _add_matrix() -> None:
    from fleetbench.cli.matrix import MATRIX_HELP, matrix

    app.command(help=MATRIX_HELP)(matrix)


def _add_ensemble() -> None:
    from fleetbench.cli.ensemble import ENSEMBLE_HELP, ensemble

    app.command(help=ENSEMBLE_HELP)(ensemble)


def _add_report() -> None:
    from fleetbench.cli.report import REPORT_HELP, report

    app.command(help=REPORT_HELP)(report)


def _add_audit() -> None:
    from fleetbench.cli.audit import AUDIT_HELP, audit_command

    app.command("audit", help=AUDIT_HELP)(audit_command)


def _add_schedule() -> None:
    from fleetbench.cli.schedule import schedule

    app.command()(schedule)


def _add_export() -> None:
    from fleetbench.cli.export import export_app

    app.add_typer(export_app, name="export")


def _add_batches() -> None:
    from fleetbench.cli.batches import BATCHES_HELP, batches

    app.command(help=BATCHES_HELP)(batches)


def _add_dashboard() -> None:
    from fleetbench.cli.dashboard import DASHBOARD_HELP, dashboard

    app.command(help=DASHBOARD_HELP)(dashboard)


def _add_example_plan() -> None:
    app.command("example-plan")(example_plan)


# Each command's module loads only when that command runs: `fleetbench run` must not
# pay for the report, dashboard, scoring or schedule modules before its first run starts
# (benchmarks/makespan.py). In the order of the help listing.
COMMANDS: dict[str, Callable[[], None]] = {
    "run": _add_run,
    "models": _add_models,
    "score": _add_score,
    "matrix": _add_matrix,
    "ensemble": _add_ensemble,
    "report": _add_report,
    "audit": _add_audit,
    "schedule": _add_schedule,
    "export": _add_export,
    "batches": _add_batches,
    "dashboard": _add_dashboard,
    "example-plan": _add_example_plan,
}


def example_plan() -> None:
    """Print the built-in demo plan: a commented starting point for your own plan."""
    from importlib import resources

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
    add_commands(sys.argv[1:])
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
    finish(code if isinstance(code, int) else 0)


def finish(code: int) -> NoReturn:
    """Exit once a command has done its work, without the interpreter's teardown when
    nothing needs it. After a batch that teardown (freeing every module's objects, and
    vl-convert's JavaScript engine) took 0.15-0.3 s of the batch's wall time
    (benchmarks/makespan.py) and does nothing for the results: the store is closed and
    every file written. ``atexit`` handlers still run and stdout/stderr are flushed; a
    thread that the interpreter would wait for (a non-daemon one still running, e.g. an
    upload) means the ordinary exit."""
    main_thread = threading.main_thread()
    if any(
        th is not main_thread and not th.daemon and th.is_alive() for th in threading.enumerate()
    ):
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def add_commands(args: list[str]) -> None:
    """Register the command ``args`` names, else (help, a typo) every command. Before a
    batch's modules load, ``run`` starts the zygote its workers fork from, so that the
    zygote's imports overlap with ours (runner/zygote.py)."""
    if app.registered_commands or app.registered_groups:
        return
    name = args[0] if args else ""
    if name == "run" and not {"--help", "--dry-run"} & set(args):
        from fleetbench.runner import zygote

        zygote.prestart()
    for add in [COMMANDS[name]] if name in COMMANDS else COMMANDS.values():
        add()


def _one_line(text: str) -> str:
    return " ".join(text.split())
