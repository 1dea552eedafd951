"""``fleetbench schedule``: one round of a plan per tick, in the foreground, resumable.

``fleetbench schedule PLAN --every 51m --for 4d`` (or ``--cron``, ``--until``,
``--rounds``) serves ticks until the schedule ends; ``fleetbench schedule status -o
DIR`` shows the schedules stored in DIR; ``--print cron|systemd|github-actions`` prints
a unit for the platform's scheduler instead. Ticks, rounds and state: runner/ticks.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from fleetbench.catalog import ModelFilter
from fleetbench.cli.progress import ProgressObserver
from fleetbench.cli.run import DEFAULT_OUTPUT, executor_settings, make_console, report_upload
from fleetbench.cli.schedule_units import KINDS, render
from fleetbench.errors import ConfigError
from fleetbench.report.upload import BackgroundUploader, check_url
from fleetbench.report.upload import upload as upload_to
from fleetbench.runner import BatchOptions, load_plan, plan_batch, run_batch
from fleetbench.runner.plan import LoadedPlan
from fleetbench.runner.ticks import Cadence, Scheduler, Stop, iso, parse_duration, parse_timestamp
from fleetbench.store import COMPLETED, DB_NAME, Store
from fleetbench.store import schedules as db
from fleetbench.store.lock import check_output

STATUS = "status"


def schedule(
    plan: Annotated[
        str,
        typer.Argument(
            help="Plan YAML file, or `status` to show the schedules stored in -o DIR.",
            show_default=False,
        ),
    ],
    every: Annotated[
        str | None,
        typer.Option("--every", help="Tick interval from the fixed start: 51m, 2h, 30s, 1d."),
    ] = None,
    cron: Annotated[
        str | None,
        typer.Option("--cron", help="Ticks at a cron expression's times, e.g. '*/15 * * * *'."),
    ] = None,
    for_: Annotated[
        str | None,
        typer.Option("--for", help="End this long after the schedule's start, e.g. 4d."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", help="No tick after this time (ISO 8601; no zone: UTC)."),
    ] = None,
    rounds: Annotated[
        int | None, typer.Option("--rounds", min=1, help="End after N rounds have run.")
    ] = None,
    catch_up: Annotated[
        str,
        typer.Option(
            "--catch-up",
            help="Ticks missed while no scheduler ran: skip (record them missed) or one "
            "(record them missed but run the latest at once).",
        ),
    ] = "skip",
    once: Annotated[
        bool,
        typer.Option(
            "--once", help="Run the one due round, if any, and exit (for cron/systemd/CI)."
        ),
    ] = False,
    print_unit: Annotated[
        str | None,
        typer.Option(
            "--print", help=f"Print a unit for the platform's scheduler: {', '.join(KINDS)}."
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Results folder (default: the plan's 'output')."),
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option("--model", "-m", help="Only models whose name contains this."),
    ] = None,
    task: Annotated[list[str] | None, typer.Option("--task", help="Only this task.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most N samples per run.")] = None,
    timeout: Annotated[
        float | None, typer.Option("--timeout", min=1, help="Seconds per run.")
    ] = None,
    parallel: Annotated[
        int | None, typer.Option("--parallel", "-j", min=1, help="Runs at once per round.")
    ] = None,
    upload: Annotated[
        str | None,
        typer.Option(
            "--upload",
            help="Copy the results to this fsspec URL after every round, in the background "
            "(default: the plan's 'upload').",
        ),
    ] = None,
) -> None:
    """Run one round of PLAN per tick, on a fixed grid, until --for/--until/--rounds.

    The schedule lives in the results store: the same command started again after a
    crash, a reboot or Ctrl-C continues it (an interrupted round is resumed, no round is
    lost or duplicated); ticks that passed meanwhile are recorded as missed; a tick that
    comes due while a round still runs is recorded as skipped.
    """
    console = make_console()
    if plan == STATUS:
        show_status(console, (output or DEFAULT_OUTPUT).resolve())
        return
    if catch_up not in ("skip", "one"):
        raise ConfigError(f"--catch-up {catch_up!r}: unknown; valid: skip, one")
    if for_ is not None and until is not None:
        raise ConfigError("--for and --until exclude each other")
    cadence = Cadence(
        every_s=parse_duration(every, "--every") if every is not None else None, cron=cron
    )
    if print_unit is not None:
        sys.stdout.write(render(print_unit, _without_print(sys.argv[2:]), os.getcwd()))
        return
    plan_path = Path(plan)
    loaded = load_plan(plan_path)
    out = (output or loaded.plan.output or DEFAULT_OUTPUT).resolve()
    check_output(out)
    options = BatchOptions(
        output=out,
        filter=ModelFilter(name=model or []),
        tasks=task or [],
        limit=limit or loaded.plan.limit,
        timeout_s=timeout or loaded.plan.timeout_s,
        max_failed_share=loaded.plan.max_failed_share,
        executor=executor_settings(loaded.plan.executor, parallel, None, None),
    )
    plan_batch(loaded, options)  # a bad plan or filter fails now, before any tick
    upload_url = upload or loaded.plan.upload
    if upload_url:
        check_url(upload_url)
    uploader = BackgroundUploader(out, upload_url) if upload_url else None
    spec = {"every": every, "cron": cron, "for": for_, "until": until, "rounds": rounds}
    key = json.dumps([str(plan_path.resolve()), cadence.label])
    sid = "s-" + hashlib.sha256(key.encode()).hexdigest()[:10]
    store = Store.in_dir(out)
    try:
        row, existed = db.open_schedule(
            store, sid, str(plan_path), cadence.label, spec, time.time()
        )
        end = parse_timestamp(until, "--until") if until else None
        if for_ is not None:
            end = row.start_at + parse_duration(for_, "--for")
        if rounds is None and end is None and not once:
            raise ConfigError("give when the schedule ends: --for, --until or --rounds")
        verb = "continuing" if existed else "starting"
        console.print(
            f"{verb} schedule {sid} ({cadence.label}) of {loaded.source} → {out}; "
            f"start {iso(row.start_at)}"
        )
        Scheduler(
            store=store,
            schedule=row,
            cadence=cadence,
            stop=Stop(max_rounds=rounds, until=end),
            run_round=lambda r: _run_round(loaded, options, r, console, uploader),
            say=lambda text: console.print(f"{iso(time.time())} {text}", markup=False),
            catch_up=catch_up,
            once=once,
        ).loop()
        if uploader is not None and upload_url:  # the end: everything up before we exit
            uploader.wait()
            report_upload(console, upload_to(out, upload_url), upload_url)
    except KeyboardInterrupt:
        console.print("interrupted: run the same command again to continue the schedule")
        raise typer.Exit(130) from None
    finally:
        store.close()


def _run_round(
    loaded: LoadedPlan,
    options: BatchOptions,
    round_no: int,
    console: Console,
    uploader: BackgroundUploader | None,
) -> tuple[bool, str | None]:
    """One round of the plan: a batch measuring round ``round_no`` of every run, then
    (in the background, never delaying the next round) an upload."""
    batch = BatchOptions(**{**options.__dict__, "rounds": [round_no]})
    runs = plan_batch(loaded, batch)
    with ProgressObserver(console) as observer:
        summaries = run_batch(loaded, batch, runs, observer)
    if uploader is not None:
        if uploader.last is not None and not uploader.last.ok:
            console.print(f"[yellow]warning: the last upload failed: {uploader.last.error}; "
                          "uploading again[/yellow]")  # fmt: skip
        if not uploader.start():
            console.print("upload: the previous one still runs; the next round's carries this")
    bad = [
        f"{s['model_name']}/{s['task']}: {s['status']}"
        for s in summaries
        if s["status"] != COMPLETED
    ]
    return (not bad, "; ".join(bad) or None)


def _without_print(argv: list[str]) -> list[str]:
    """The command line without ``--print KIND`` (and ``--print=KIND``)."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--print":
            skip = True
            continue
        if arg.startswith("--print=") or arg == "--once":
            continue
        out.append(arg)
    return out


def show_status(console: Console, output: Path) -> None:
    if not (output / DB_NAME).is_file():
        raise ConfigError(f"{output}: no results store here (fleetbench.db); give -o DIR")
    store = Store(output / DB_NAME)
    try:
        rows = db.schedules(store)
        if not rows:
            console.print(f"{output}: no schedules")
            return
        for row in rows:
            ticks = db.ticks(store, row.schedule_id)
            kinds = (db.TICK_DONE, db.TICK_FAILED, db.TICK_MISSED, db.TICK_SKIPPED, db.TICK_RUNNING)
            count = {s: sum(1 for t in ticks if t["status"] == s) for s in kinds}
            cadence = _cadence(row)
            nxt = cadence.due_at(row.start_at, len(ticks)) if cadence else None
            last = next((t for t in reversed(ticks) if t["status"] in db.RAN), None)
            console.print(
                f"schedule {row.schedule_id}: {row.plan_source} ({row.cadence}), {row.status}; "
                f"start {iso(row.start_at)}\n"
                f"  rounds done {count['done']}, failed {count['failed']}, "
                f"missed {count['missed']}, skipped {count['skipped']}, "
                f"running {count['running']}\n"
                f"  last round {last['round'] if last else '-'} "
                f"(due {iso(last['due_at'] if last else None)}); "
                f"next due {iso(nxt) if row.status == db.ACTIVE else '-'}",
                markup=False,
            )
            for line in _tick_lines(ticks)[-20:]:
                console.print(f"    {line}", markup=False)
    finally:
        store.close()


def _tick_lines(ticks: list[sqlite3.Row]) -> list[str]:
    """One line per tick that ran; consecutive missed or skipped ticks with the same
    reason folded into one line."""
    lines: list[str] = []
    folded: list[sqlite3.Row] = []

    def flush() -> None:
        if folded:
            first, last = folded[0], folded[-1]
            span = (
                f"ticks {first['tick']}-{last['tick']}"
                if len(folded) > 1
                else f"tick {first['tick']}"
            )
            lines.append(
                f"{span} due {iso(first['due_at'])}"
                + (f" .. {iso(last['due_at'])}" if len(folded) > 1 else "")
                + f" {first['status']}: {first['reason']}"
            )
            folded.clear()

    for t in ticks:
        if t["status"] in (db.TICK_MISSED, db.TICK_SKIPPED):
            if folded and (folded[0]["status"], folded[0]["reason"]) != (t["status"], t["reason"]):
                flush()
            folded.append(t)
            continue
        flush()
        started = f", started {iso(t['started_at'])}" if t["started_at"] else ""
        reason = f": {t['reason']}" if t["reason"] else ""
        lines.append(
            f"tick {t['tick']} due {iso(t['due_at'])} round {t['round']} {t['status']}"
            f"{started}{reason}"
        )
    flush()
    return lines


def _cadence(row: db.ScheduleRow) -> Cadence | None:
    every, cron = row.spec.get("every"), row.spec.get("cron")
    try:
        return Cadence(every_s=parse_duration(every, "--every") if every else None, cron=cron)
    except ConfigError:
        return None
