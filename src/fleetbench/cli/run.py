"""``fleetbench run``: execute a plan (or the built-in demo) and write the results."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from fleetbench.catalog import ModelFilter
from fleetbench.catalog.filters import name_list
from fleetbench.cli.progress import ProgressObserver
from fleetbench.errors import ConfigError
from fleetbench.report.render import report_available
from fleetbench.runner import (
    FILTERED,
    SKIP,
    BatchOptions,
    PlannedRun,
    load_plan,
    plan_batch,
    run_batch,
)
from fleetbench.runner.adhoc import AdHoc, adhoc_plan, is_catalog
from fleetbench.runner.adhoc import save_plan as write_plan
from fleetbench.runner.batches import check_name, find_batch, plan_of
from fleetbench.runner.executors import Estimate, Placed, Work, preview
from fleetbench.runner.plan import ExecutorSettings, plan_from_data
from fleetbench.store import DB_NAME, Store
from fleetbench.store.lock import check_output

if TYPE_CHECKING:
    from fleetbench.report.upload import UploadResult

DEFAULT_OUTPUT = Path("fleetbench-results")
EXIT_INTERRUPTED = 130  # Ctrl-C (SIGINT)
EXIT_TERMINATED = 143  # SIGTERM: 128 + 15, as a shell reports a process SIGTERM ended


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: the worker and its server are stopped, results kept."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def make_console() -> Console:
    """Rich on a terminal; wide plain tables when piped into a file or CI log."""
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=max(console.width, 160))
    return console


def run(
    plan: Annotated[
        Path | None,
        typer.Argument(
            help="Plan YAML file, or a catalogue (models.csv, a YAML catalogue, "
            "models_config.yaml, a checkpoint folder) to run with the textgen task. "
            "Without one (and without --model-id), runs the built-in demo plan "
            "(the embedded SmolLM2 on ~20 built-in prompts).",
            show_default=False,
        ),
    ] = None,
    model_id: Annotated[
        str | None,
        typer.Option(
            "--model-id",
            help="Run this one model without a plan (see --backend).",
            show_default=False,
        ),
    ] = None,
    backend: Annotated[
        str | None,
        typer.Option(
            "--backend",
            help="Backend of --model-id (default: openai with "
            "--base-url, else llamacpp), or of every catalogue entry.",
            show_default=False,
        ),
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            help="OpenAI-compatible server URL, e.g. http://127.0.0.1:8000/v1 (without a plan).",
            show_default=False,
        ),
    ] = None,
    model_path: Annotated[
        Path | None,
        typer.Option(
            "--model-path",
            help="GGUF file (llamacpp) or weights folder (without a plan).",
            show_default=False,
        ),
    ] = None,
    prompts_file: Annotated[
        Path | None,
        typer.Option(
            "--prompts-file",
            help="Prompts (JSONL/CSV/TXT) for the task(s) of a run without a plan.",
            show_default=False,
        ),
    ] = None,
    save_plan: Annotated[
        Path | None,
        typer.Option(
            "--save-plan",
            help="Write the plan a run without a plan file "
            "amounts to (same run ids when run again).",
            show_default=False,
        ),
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "--models",
            "-m",
            help="Only models whose name or id contains this (case-insensitive); repeat "
            "or give a comma list for several (-m llama3,mistral); 'all': no filter.",
        ),
    ] = None,
    category: Annotated[
        list[str] | None,
        typer.Option(
            "--category",
            help="Only catalogue entries with this category/tag (e.g. fast); repeat for several.",
        ),
    ] = None,
    model_class: Annotated[
        list[str] | None, typer.Option("--class", help="Only models of this class (A, B, C).")
    ] = None,
    task: Annotated[
        list[str] | None,
        typer.Option(
            "--task",
            help="Only this benchmark task of the plan (e.g. wattbot, textgen); repeat for "
            "several.",
        ),
    ] = None,
    catalog_task: Annotated[
        list[str] | None,
        typer.Option(
            "--catalog-task",
            help="Only catalogue entries whose task column is this (e.g. text_gen).",
        ),
    ] = None,
    reasoning: Annotated[
        str | None,
        typer.Option(
            "--reasoning",
            help="Only models whose reasoning state contains this (case-insensitive), "
            "e.g. High or Off.",
        ),
    ] = None,
    max_priority: Annotated[
        int | None,
        typer.Option("--priority", min=1, help="Only catalogue entries with priority <= N."),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="At most N samples per run (default: plan's).")
    ] = None,
    smoke: Annotated[
        bool, typer.Option("--smoke", help="1 sample per run: catch loading/config errors fast.")
    ] = False,
    repeat: Annotated[
        int,
        typer.Option(
            "--repeat",
            min=1,
            help="Measure K rounds of every run (rounds 1..K, e.g. for variance); rounds "
            "already stored are kept, a partial one continues. The master CSV aggregates "
            "over rounds.",
        ),
    ] = 1,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Show the runs that would execute or be skipped "
            "(and why); load nothing, write nothing.",
        ),
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help=f"Results folder (default: the plan's 'output', else ./{DEFAULT_OUTPUT}).",
            show_default=False,
        ),
    ] = None,
    fresh: Annotated[
        bool,
        typer.Option(
            "--fresh",
            help="Discard earlier results of the selected runs and "
            "run them again (default: resume).",
        ),
    ] = False,
    parallel: Annotated[
        int | None,
        typer.Option(
            "--parallel",
            "-j",
            min=1,
            help="Runs computing at once on this machine (worker slots; default 1: one "
            "after another). Network-bound runs go alongside (executor.network_workers).",
            show_default=False,
        ),
    ] = None,
    executor: Annotated[
        str | None,
        typer.Option(
            "--executor",
            help="sequential, local (worker slots, see --parallel) or ray (a Ray cluster; "
            "pip install 'fleetbench[ray]'). Default: the plan's executor, else sequential.",
            show_default=False,
        ),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            help="Ray cluster to join: auto (RAY_ADDRESS or a running local cluster, else "
            "start one), local, or ray://HOST:10001.",
            show_default=False,
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            help="Name of this batch (default batch_YYYYMMDD_HHMMSS); see `fleetbench batches`.",
            show_default=False,
        ),
    ] = None,
    resume: Annotated[
        str | None,
        typer.Option(
            "--resume",
            metavar="BATCH",
            help="Resume exactly the runs of this batch (its id or name, from `fleetbench "
            "batches`); without PLAN, the batch's plan file.",
            show_default=False,
        ),
    ] = None,
    batch_dir: Annotated[
        bool,
        typer.Option(
            "--batch-dir",
            help="Also write OUTPUT/batches/<name>/ (this batch's master CSV and "
            "batch.json); the store stays one.",
        ),
    ] = False,
    upload: Annotated[
        str | None,
        typer.Option(
            "--upload",
            help="Copy the results (store snapshot, CSVs, exports, run folders) to this fsspec "
            "URL at the end: s3://bucket/prefix, gs://..., az://..., file:///path "
            "(default: the plan's 'upload').",
            show_default=False,
        ),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            min=1,
            help="Seconds per run before its process group is "
            "killed (default: plan's timeout_s, 1800).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run every model of a plan through every task, resumably.

    Results go to OUTPUT/fleetbench.db (SQLite, one row per sample),
    OUTPUT/master_results.csv (one row per run) and OUTPUT/runs/<run_id>/
    (summary.json, results.jsonl, run.log). Re-running the same plan into the same
    folder skips what is done and resumes interrupted runs.

    A run whose samples all failed (e.g. every request answered 401) is failed; one
    with more failed samples than the plan's max_failed_share (default 0) is
    completed_with_errors.

    Exit codes: 0 all runs completed; 1 some run failed, was completed_with_errors or
    was interrupted; 2 bad input; 130 interrupted (Ctrl-C); 143 terminated (SIGTERM).
    """
    console = make_console()
    if smoke and limit is not None:
        raise ConfigError("--smoke and --limit exclude each other (--smoke means --limit 1)")
    if name is not None:
        check_name(name)
    flags = AdHoc(model_id, backend, base_url, model_path, prompts_file, tasks=task or [])
    plan_data = None
    if plan is not None and is_catalog(plan):
        plan_data = adhoc_plan(plan, flags)
    elif plan is None and (model_id is not None or model_path is not None):
        plan_data = adhoc_plan(None, flags)
    elif flags.model_flags():
        raise ConfigError(
            f"{flags.model_flags()[0]}: only for a run without a plan file (a catalogue "
            "such as models.csv, or --model-id); a plan says this in the plan"
        )
    if save_plan is not None and plan_data is None:
        raise ConfigError("--save-plan: only for a run without a plan file (a catalogue or "
                          "--model-id); a plan file is its own plan")  # fmt: skip
    resumed = None
    if resume is not None and plan is None and plan_data is None:
        resumed = find_batch((output or DEFAULT_OUTPUT).resolve(), resume)
        # A batch run without a plan file kept the plan its command line amounted to.
        plan_data = resumed.options.get("plan_data")
        plan = plan_of(resumed) if plan_data is None else None
    if plan_data is not None:
        where = str(plan) if plan is not None else "command line"
        loaded = plan_from_data(plan_data, where, Path.cwd())
    else:
        loaded = load_plan(plan)
    out = (output or loaded.plan.output or DEFAULT_OUTPUT).resolve()
    if resume is not None and resumed is None:
        resumed = find_batch(out, resume)
    if resumed is not None and limit is None and not smoke:
        limit = resumed.options.get("limit")
    model_filter = ModelFilter(
        name=name_list(model),
        model_class=model_class or [],
        task=catalog_task or [],
        reasoning=reasoning,
        max_priority=max_priority,
        category=category or [],
    )
    options = BatchOptions(
        output=out,
        filter=model_filter,
        tasks=task or [],
        limit=1 if smoke else (limit or loaded.plan.limit),
        timeout_s=timeout or loaded.plan.timeout_s,
        fresh=fresh,
        max_failed_share=loaded.plan.max_failed_share,
        executor=executor_settings(loaded.plan.executor, parallel, executor, ray_address),
        rounds=list(range(1, repeat + 1)),
        name=name or (resumed.name if resumed else ""),
        only_runs=resumed.run_ids if resumed else None,
        resumes=resumed.batch_id if resumed else None,
        batch_dir=batch_dir,
        plan_file=str(plan.resolve()) if plan is not None and plan_data is None else None,
        plan_data=plan_data,
    )
    check_output(options.output)
    upload_url = upload or loaded.plan.upload
    if upload_url:
        from fleetbench.report.upload import check_url

        check_url(upload_url)
    runs = plan_batch(loaded, options)
    if save_plan is not None and plan_data is not None:  # valid: it planned
        write_plan(save_plan, plan_data)
        console.print(f"plan saved: {save_plan} (fleetbench run {save_plan} repeats this)")
    if resumed is not None and all(r.reason.startswith(FILTERED) for r in runs):
        raise ConfigError(
            f"--resume {resume}: none of batch {resumed.batch_id}'s {len(resumed.run_ids)} "
            f"run(s) is in {loaded.source} with these filters (was the plan changed?)"
        )
    if all(r.reason.startswith(FILTERED) for r in runs):
        names = list(dict.fromkeys(r.spec.model.name for r in runs))
        listed = ", ".join(names[:8]) + (f", … ({len(names)} in all)" if len(names) > 8 else "")
        raise ConfigError(f"the filters match no model of {loaded.source}; models: {listed}")
    if dry_run:
        from fleetbench.cli.tables import plan_table

        console.print(plan_table(runs, schedule_preview(runs, options)))
        console.print(f"output: {options.output}  (dry run: nothing loaded or written)")
        return
    console.print(f"plan: {loaded.source} → {options.output}"
                  + (f"  (resuming {resumed.batch_id})" if resumed else ""))  # fmt: skip
    try:
        with _sigterm_as_interrupt(), ProgressObserver(console) as observer:
            summaries = run_batch(loaded, options, runs, observer)
    except Terminated:
        console.print("terminated: completed samples are stored; run again to resume")
        raise typer.Exit(EXIT_TERMINATED) from None
    except KeyboardInterrupt:
        console.print("interrupted: completed samples are stored; run again to resume")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    # What only the end needs loads at the end, not before the first run starts.
    from fleetbench.cli.tables import (
        ranking_lines,
        report_line,
        stars_notes,
        summary_notes,
        summary_table,
    )
    from fleetbench.report import MASTER_FILE
    from fleetbench.report.page import INDEX, REPORT_DIR

    if upload_url:
        from fleetbench.report.upload import upload as upload_to

        report_upload(console, upload_to(options.output, upload_url), upload_url)
    console.print(summary_table(summaries))
    for note in [*summary_notes(summaries), *stars_notes(summaries), *ranking_lines(summaries)]:
        console.print(note, markup=False)
    console.print(f"results: {options.output / MASTER_FILE}")
    page = options.output / REPORT_DIR / INDEX
    console.print(report_line(page if report_available() else None), markup=False)
    if any(s["status"] != "completed" for s in summaries):
        raise typer.Exit(1)


def report_upload(console: Console, result: UploadResult | None, url: str) -> None:
    """One line on how an upload went; a failure is a warning (recorded in the store's
    ``uploads`` table and retried with the next round or batch), never an exit code."""
    if result is None:
        return
    if result.ok:
        console.print(f"uploaded {result.files} file(s), {result.bytes} bytes → {url}")
    else:
        console.print(f"[yellow]warning: upload to {url} failed: {result.error}[/yellow]")


def executor_settings(
    planned: ExecutorSettings | None, parallel: int | None, kind: str | None, address: str | None
) -> ExecutorSettings | None:
    """The plan's ``executor:`` with the command line's overrides on top."""
    if kind is not None and kind not in ("sequential", "local", "ray"):
        raise ConfigError(f"--executor: unknown executor {kind!r}; valid: sequential, local, ray")
    if parallel is None and kind is None and address is None:
        return planned
    data = planned.model_dump() if planned is not None else {}
    if kind is not None:
        data["kind"] = kind
    elif address is not None:
        data["kind"] = "ray"
    elif parallel is not None and planned is None:
        data["kind"] = "local" if parallel > 1 else "sequential"
    if parallel is not None:
        data["workers"] = parallel
    if address is not None:
        data["address"] = address
    return ExecutorSettings.model_validate(data)


def schedule_preview(
    runs: list[PlannedRun], options: BatchOptions
) -> dict[str, tuple[Estimate, Placed]] | None:
    """Slots and expected durations for the dry run of a parallel batch."""
    settings = options.executor
    if settings is None or settings.kind == "sequential":
        return None
    todo = [Work(r.spec, r.total) for r in runs if r.action != SKIP]
    db = options.output / DB_NAME
    store = Store(db) if db.is_file() else None
    try:
        return preview(settings, todo, store)
    finally:
        if store is not None:
            store.close()
