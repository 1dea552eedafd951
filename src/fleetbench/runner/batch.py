"""A batch: plan -> planned runs (run / resume / skip, and why) -> executor -> outputs.

Everything that can be checked is checked before the first byte is written: a bad
plan, an unknown backend or a missing prompts file fails with a one-line error and an
untouched output folder.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from fleetbench.catalog import ModelFilter
from fleetbench.errors import ConfigError
from fleetbench.meters import host_info
from fleetbench.report.paths import run_dir
from fleetbench.report.render import report_available, stop_plot_worker, warm_up
from fleetbench.runner.batches import batch_info, default_name, write_batch_dir
from fleetbench.runner.executors import Executor, make_executor
from fleetbench.runner.job import Event, RunJob, RunOutcome
from fleetbench.runner.outcome import Settled, settle, settle_stored
from fleetbench.runner.plan import ExecutorSettings, LoadedPlan, RunSpec
from fleetbench.store import COMPLETED, DB_NAME, FAILED, INTERRUPTED, Store
from fleetbench.store.lock import OutputLock
from fleetbench.tasks import get_task_class

if TYPE_CHECKING:
    from fleetbench.report.exports import ResultsExporter

RUN = "run"
RESUME = "resume"
SKIP = "skip"
FILTERED = "filtered out"


@dataclass
class BatchOptions:
    output: Path
    filter: ModelFilter = field(default_factory=ModelFilter)
    tasks: list[str] = field(default_factory=list)  # run only these of the plan's tasks
    limit: int | None = None
    timeout_s: float = 1800.0
    fresh: bool = False
    max_failed_share: float = 0.0  # see runner/outcome.py
    executor: ExecutorSettings | None = None  # --parallel/--executor; else the plan's
    # The rounds this batch makes sure are stored: --repeat K is 1..K, a schedule's tick
    # its one round. Rounds already complete are skipped; a partial one continues.
    rounds: list[int] = field(default_factory=lambda: [1])
    name: str = ""  # --name; default batch_YYYYMMDD_HHMMSS (runner/batches.py)
    only_runs: list[str] | None = None  # --resume BATCH: exactly that batch's runs
    resumes: str | None = None  # the batch id being resumed
    batch_dir: bool = False  # also write OUTPUT/batches/<name>/
    plan_file: str | None = None  # the plan's absolute path, for --resume without a plan
    plan_data: dict[str, Any] | None = None  # a plan-less run's plan (runner/adhoc.py)


@dataclass
class PlannedRun:
    spec: RunSpec
    planned: int  # samples per round
    stored: int  # over the batch's rounds
    action: str
    reason: str
    done: bool = False  # every planned sample is stored: skipped, but still reported
    rounds: list[int] = field(default_factory=lambda: [1])

    @property
    def run_id(self) -> str:
        return self.spec.run_id

    @property
    def total(self) -> int:
        """Samples over the batch's rounds."""
        return self.planned * len(self.rounds)


class BatchObserver(Protocol):
    """What the batch tells its display (the CLI's progress bars, or nothing)."""

    def batch_started(self, runs: list[PlannedRun]) -> None: ...

    def run_started(self, run: PlannedRun, slot: str | None = None) -> None: ...

    def run_event(self, run_id: str, event: Event) -> None: ...

    def run_finished(self, run: PlannedRun, outcome: RunOutcome) -> None: ...


def plan_batch(loaded: LoadedPlan, options: BatchOptions) -> list[PlannedRun]:
    """Decide, for every run of the plan, whether to run, resume or skip it. Loads no model."""
    _check_task_names(loaded, options.tasks)
    db = options.output / DB_NAME
    store = Store(db) if db.exists() else None
    counts: dict[str, int] = {}
    planned: list[PlannedRun] = []
    try:
        for spec in loaded.runs:
            key = json.dumps([spec.task.name, spec.task_options], sort_keys=True)
            if key not in counts:
                task_cls = get_task_class(spec.task.name)
                counts[key] = len(
                    task_cls(task_cls.Options.model_validate(spec.task_options)).samples()
                )
            n = min(counts[key], options.limit) if options.limit else counts[key]
            cap = spec.request_cap()  # a load profile's max_requests / duration x rate
            n = min(n, cap) if cap is not None else n
            stored = _stored_count(store, spec.run_id, n, options)
            outcome = None
            if stored >= n * len(options.rounds):  # shown as the skip reason
                errors = store.sample_errors(spec.run_id, n) if store and stored else []
                outcome = settle(errors, options.max_failed_share)
            planned.append(_decide(spec, n, stored, options, outcome))
    finally:
        if store is not None:
            store.close()
    for run in planned:
        # e.g. an API key variable that is not set: one clear error before anything runs.
        if run.action != SKIP and run.spec.preflight_error is not None:
            raise ConfigError(run.spec.preflight_error)
    return planned


def _stored_count(store: Store | None, run_id: str, planned: int, options: BatchOptions) -> int:
    if store is None or options.fresh:
        return 0
    return store.count_stored(run_id, options.rounds, planned)


def _check_task_names(loaded: LoadedPlan, selected: list[str]) -> None:
    names = list(dict.fromkeys(t.name for t in loaded.plan.tasks))
    unknown = [t for t in selected if t not in names]
    if unknown:
        raise ConfigError(
            f"--task {unknown[0]!r}: not a task of {loaded.source}; its tasks: {', '.join(names)}"
        )


def _decide(
    spec: RunSpec,
    planned: int,
    stored: int,
    options: BatchOptions,
    outcome: Settled | None,
) -> PlannedRun:
    rounds = list(options.rounds)
    total = planned * len(rounds)
    rejected = options.filter.why_not(spec.model)
    if rejected is None and options.only_runs is not None and spec.run_id not in options.only_runs:
        rejected = f"not a run of batch {options.resumes}"
    if rejected is None and options.tasks and spec.task.name not in options.tasks:
        rejected = f"task {spec.task.name} not in --task {','.join(options.tasks)}"
    if rejected is not None:
        return PlannedRun(spec, planned, stored, SKIP, f"{FILTERED}: {rejected}", rounds=rounds)
    if spec.skip_reason is not None:
        return PlannedRun(spec, planned, stored, SKIP, spec.skip_reason, rounds=rounds)
    if outcome is not None:
        reason = f"{outcome.status} ({stored}/{total} stored{_rounds_note(rounds)})"
        if outcome.status != COMPLETED:
            reason += "; --fresh runs it again"
        return PlannedRun(spec, planned, stored, SKIP, reason, done=True, rounds=rounds)
    where = f"; {spec.placement_note}" if spec.placement_note else ""
    if stored:
        reason = f"{stored}/{total} stored{_rounds_note(rounds)}{where}"
        return PlannedRun(spec, planned, stored, RESUME, reason, rounds=rounds)
    return PlannedRun(spec, planned, stored, RUN, spec.placement_note or "", rounds=rounds)


def _rounds_note(rounds: list[int]) -> str:
    if rounds == [1]:
        return ""
    if len(rounds) == 1:
        return f", round {rounds[0]}"
    return f", rounds {rounds[0]}-{rounds[-1]}"


def run_batch(
    loaded: LoadedPlan,
    options: BatchOptions,
    runs: list[PlannedRun],
    observer: BatchObserver,
    executor: Executor | None = None,
) -> list[dict[str, object]]:
    """Execute the planned runs; returns the summaries of this batch's runs."""
    selected = [r for r in runs if r.action != SKIP or r.done]
    todo = [r for r in runs if r.action != SKIP]
    with OutputLock(options.output):
        return _run_locked(loaded, options, runs, selected, todo, observer, executor)


def _run_locked(
    loaded: LoadedPlan,
    options: BatchOptions,
    runs: list[PlannedRun],
    selected: list[PlannedRun],
    todo: list[PlannedRun],
    observer: BatchObserver,
    executor: Executor | None,
) -> list[dict[str, object]]:
    store = Store.in_dir(options.output)
    batch_id = f"b-{uuid.uuid4().hex[:12]}"
    options.name = options.name or default_name()
    try:
        store.interrupt_dead()  # we hold the lock: whatever still says "running" is dead
        store.begin_batch(
            batch_id,
            loaded.plan.name,
            loaded.source,
            loaded.plan.model_dump(mode="json"),
            {
                **options.__dict__,
                "output": str(options.output),
                "filter": options.filter.model_dump(),
                "executor": options.executor.model_dump() if options.executor else None,
                "run_ids": [r.run_id for r in selected],
            },
            host_info(),
        )
        for run in selected:
            store.upsert_run(_run_record(run.spec), batch_id, run.planned)
            if run.done:  # e.g. max_failed_share changed since it ran
                settle_stored(store, run.run_id, run.planned, options.max_failed_share)
        if options.fresh:
            _forget(store, options.output, [r.run_id for r in todo])
        by_id = {r.run_id: r for r in todo}
        jobs = [
            RunJob(
                spec=r.spec,
                planned_samples=r.planned,
                rounds=r.rounds,
                batch_id=batch_id,
                db_path=store.path,
                run_dir=run_dir(options.output, r.run_id),
                timeout_s=options.timeout_s,
                parent_pid=os.getpid(),
            )
            for r in todo
        ]

        exports = _Exports(store, options.output)

        settings = options.executor or loaded.plan.executor
        # A parallel batch warms the report up while its runs execute (a sequential one
        # keeps the CPU to its run), once its first runs are up: the warm-up's imports
        # hold this process's GIL, which the first runs' supervisors need to start them.
        # It starts a second vl-convert too (report/plotworker.py): the report renders two
        # plots at once.
        warm = _AfterFirstWave(
            functools.partial(warm_up, plot_worker=True)
            if report_available() and _parallel(settings)
            else None
        )

        def started(job: RunJob) -> None:
            warm.run_started(job.spec.run_id)
            observer.run_started(by_id[job.spec.run_id], job.slot)

        def relay(run_id: str, event: Event) -> None:
            warm.run_up(run_id)
            observer.run_event(run_id, event)

        def finished(outcome: RunOutcome) -> None:
            warm.run_up(outcome.run_id)
            if outcome.status == COMPLETED:  # every sample stored: judge them
                settled = settle_stored(
                    store, outcome.run_id, by_id[outcome.run_id].planned, options.max_failed_share
                )
                outcome = outcome.model_copy(
                    update={"status": settled.status, "error": settled.error}
                )
            exports.export([outcome.run_id])
            observer.run_finished(by_id[outcome.run_id], outcome)

        observer.batch_started(runs)
        status = FAILED
        try:
            (executor or make_executor(settings)).execute(
                jobs, store, on_start=started, on_event=relay, on_outcome=finished
            )
            status = COMPLETED
        except KeyboardInterrupt:
            status = INTERRUPTED
            store.interrupt_running(batch_id, "interrupted by the user; re-run to resume")
            raise
        finally:
            store.finish_batch(batch_id, status)
            exported = exports.export([])
        if report_available():  # the HTML report of the whole store (fleetbench[report])
            from fleetbench.report.page import write_report

            write_report(store, options.output, exported)
        if options.batch_dir:
            write_batch_dir(options.output, batch_info(store, batch_id), exported)
        by_id_summary = {s["run_id"]: s for s in exported}
        return [by_id_summary[r.run_id] for r in selected]
    finally:
        stop_plot_worker()
        store.close()


class _AfterFirstWave:
    """Calls ``action`` (if any) once, when every run started so far has been heard
    from (an event of its worker, or its outcome)."""

    def __init__(self, action: Callable[[], None] | None) -> None:
        self.action = action
        self._started: set[str] = set()

    def run_started(self, run_id: str) -> None:
        if self.action is not None:
            self._started.add(run_id)

    def run_up(self, run_id: str) -> None:
        if self.action is None:
            return
        self._started.discard(run_id)
        if not self._started:
            action, self.action = self.action, None
            action()


class _Exports:
    """The batch's ``ResultsExporter``, made at the first export: its modules load after
    the first runs have started, not before (benchmarks/makespan.py)."""

    def __init__(self, store: Store, output: Path) -> None:
        self.store, self.output = store, output
        self._exporter: ResultsExporter | None = None

    def export(self, run_ids: list[str]) -> list[dict[str, Any]]:
        if self._exporter is None:
            from fleetbench.report.exports import ResultsExporter

            self._exporter = ResultsExporter(self.store, self.output)
        return self._exporter.export(run_ids)


def _parallel(settings: ExecutorSettings | None) -> bool:
    return settings is not None and settings.kind != "sequential"


def apply_plan_settings(store: Store, loaded: LoadedPlan) -> int:
    """``fleetbench report --plan``: the plan's energy settings (carbon region and
    intensity, stars reference) replace its stored runs' ones, as a batch of the plan
    would; the number of stored runs updated."""
    return sum(
        store.set_run_energy(spec.run_id, spec.energy.model_dump(mode="json"))
        for spec in loaded.runs
    )


def _run_record(spec: RunSpec) -> dict[str, object]:
    return {
        "run_id": spec.run_id,
        "model_name": spec.model.name,
        "model_class": spec.model.model_class,
        "task": spec.task.name,
        "reasoning_state": spec.model.reasoning_state,
        "backend": spec.model.backend,
        "settings_label": spec.settings_label,
        "config": spec.model_dump(mode="json"),
    }


def _forget(store: Store, output: Path, run_ids: list[str]) -> None:
    store.delete_results(run_ids)
    for run_id in run_ids:
        shutil.rmtree(run_dir(output, run_id), ignore_errors=True)
