"""A batch: plan -> planned runs (run / resume / skip, and why) -> executor -> outputs.

Everything that can be checked is checked before the first byte is written: a bad
plan, an unknown backend or a missing prompts file fails with a one-line error and an
untouched output folder.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from fleetbench.catalog import ModelFilter
from fleetbench.errors import ConfigError
from fleetbench.meters import host_info
from fleetbench.report.exports import export_results, run_dir
from fleetbench.runner.executor import Executor, SequentialExecutor
from fleetbench.runner.job import Event, RunJob, RunOutcome
from fleetbench.runner.plan import LoadedPlan, RunSpec
from fleetbench.store import COMPLETED, DB_NAME, FAILED, Store
from fleetbench.store.lock import OutputLock
from fleetbench.tasks import get_task_class

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


@dataclass
class PlannedRun:
    spec: RunSpec
    planned: int
    stored: int
    action: str
    reason: str

    @property
    def run_id(self) -> str:
        return self.spec.run_id


class BatchObserver(Protocol):
    """What the batch tells its display (the CLI's progress bars, or nothing)."""

    def batch_started(self, runs: list[PlannedRun]) -> None: ...

    def run_started(self, run: PlannedRun) -> None: ...

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
            stored = _stored_count(store, spec.run_id, n, options.fresh)
            planned.append(_decide(spec, n, stored, options))
    finally:
        if store is not None:
            store.close()
    for run in planned:
        # e.g. an API key variable that is not set: one clear error before anything runs.
        if run.action != SKIP and run.spec.preflight_error is not None:
            raise ConfigError(run.spec.preflight_error)
    return planned


def _stored_count(store: Store | None, run_id: str, planned: int, fresh: bool) -> int:
    if store is None or fresh:
        return 0
    return len([i for i in store.done_indices(run_id) if i < planned])


def _check_task_names(loaded: LoadedPlan, selected: list[str]) -> None:
    names = list(dict.fromkeys(t.name for t in loaded.plan.tasks))
    unknown = [t for t in selected if t not in names]
    if unknown:
        raise ConfigError(
            f"--task {unknown[0]!r}: not a task of {loaded.source}; its tasks: {', '.join(names)}"
        )


def _decide(spec: RunSpec, planned: int, stored: int, options: BatchOptions) -> PlannedRun:
    rejected = options.filter.why_not(spec.model)
    if rejected is None and options.tasks and spec.task.name not in options.tasks:
        rejected = f"task {spec.task.name} not in --task {','.join(options.tasks)}"
    if rejected is not None:
        return PlannedRun(spec, planned, stored, SKIP, f"{FILTERED}: {rejected}")
    if spec.skip_reason is not None:
        return PlannedRun(spec, planned, stored, SKIP, spec.skip_reason)
    if stored >= planned:
        return PlannedRun(spec, planned, stored, SKIP, f"completed ({stored}/{planned} stored)")
    where = f"; {spec.placement_note}" if spec.placement_note else ""
    if stored:
        return PlannedRun(spec, planned, stored, RESUME, f"{stored}/{planned} stored{where}")
    return PlannedRun(spec, planned, stored, RUN, spec.placement_note or "")


def run_batch(
    loaded: LoadedPlan,
    options: BatchOptions,
    runs: list[PlannedRun],
    observer: BatchObserver,
    executor: Executor | None = None,
) -> list[dict[str, object]]:
    """Execute the planned runs; returns the summaries of this batch's runs."""
    selected = [r for r in runs if r.action != SKIP or r.reason.startswith("completed")]
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
    try:
        store.begin_batch(
            batch_id,
            loaded.plan.name,
            loaded.source,
            loaded.plan.model_dump(mode="json"),
            {
                **options.__dict__,
                "output": str(options.output),
                "filter": options.filter.model_dump(),
            },
            host_info(),
        )
        for run in selected:
            store.upsert_run(_run_record(run.spec), batch_id, run.planned)
        if options.fresh:
            _forget(store, options.output, [r.run_id for r in todo])
        by_id = {r.run_id: r for r in todo}
        jobs = [
            RunJob(
                spec=r.spec,
                planned_samples=r.planned,
                batch_id=batch_id,
                db_path=store.path,
                run_dir=run_dir(options.output, r.run_id),
                timeout_s=options.timeout_s,
                parent_pid=os.getpid(),
            )
            for r in todo
        ]

        def finished(outcome: RunOutcome) -> None:
            export_results(store, options.output, [outcome.run_id])
            observer.run_finished(by_id[outcome.run_id], outcome)

        observer.batch_started(runs)
        status = FAILED
        try:
            (executor or SequentialExecutor()).execute(
                jobs,
                store,
                on_start=lambda job: observer.run_started(by_id[job.spec.run_id]),
                on_event=observer.run_event,
                on_outcome=finished,
            )
            status = COMPLETED
        except KeyboardInterrupt:
            status = "interrupted"
            _mark_interrupted(store, [r.run_id for r in todo])
            raise
        finally:
            store.finish_batch(batch_id, status)
            exported = export_results(store, options.output, [])
        by_id_summary = {s["run_id"]: s for s in exported}
        return [by_id_summary[r.run_id] for r in selected]
    finally:
        store.close()


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


def _mark_interrupted(store: Store, run_ids: list[str]) -> None:
    for run_id in run_ids:
        row = store.get_run(run_id)
        if row is not None and row["status"] == "running":
            store.set_run_status(run_id, FAILED, "interrupted by the user; re-run to resume")
