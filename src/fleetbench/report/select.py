"""Choosing stored runs from the command line: by id (or a unique prefix), model and task."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from fleetbench.errors import ConfigError
from fleetbench.store import Store


def split_ids(values: Iterable[str] | None) -> list[str]:
    """``--runs a,b --runs c`` -> ``[a, b, c]``."""
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]


def resolve_runs(store: Store, run_ids: list[str]) -> list[sqlite3.Row]:
    """The runs named by id or by a prefix matching exactly one run, in the order given."""
    rows = store.runs()
    by_id = {r["run_id"]: r for r in rows}
    chosen: list[sqlite3.Row] = []
    for wanted in run_ids:
        row = by_id.get(wanted)
        if row is None:
            matches = [r for r in rows if r["run_id"].startswith(wanted)]
            if len(matches) > 1:
                names = ", ".join(r["run_id"] for r in matches[:4])
                raise ConfigError(f"run id {wanted!r} is ambiguous: it starts {names}")
            if not matches:
                known = ", ".join(r["run_id"] for r in rows[:5])
                more = f", … ({len(rows)} in all)" if len(rows) > 5 else ""
                raise ConfigError(
                    f"unknown run id {wanted!r} in {store.path}; known: {known or 'none'}{more}"
                )
            row = matches[0]
        if row["run_id"] in {r["run_id"] for r in chosen}:
            raise ConfigError(f"run {row['run_id']} is given twice")
        chosen.append(row)
    return chosen


def select_task_runs(
    store: Store, task: str | None, run_ids: list[str], models: list[str]
) -> tuple[str, list[sqlite3.Row]]:
    """The runs of one task: ``run_ids`` (in that order) or all, narrowed by model name."""
    runs = resolve_runs(store, run_ids) if run_ids else store.runs()
    if models:
        wanted = [m.lower() for m in models]
        runs = [r for r in runs if any(w in r["model_name"].lower() for w in wanted)]
    if not runs:
        raise ConfigError(f"no stored run matches the filters in {store.path}")
    tasks = list(dict.fromkeys(r["task"] for r in runs))
    if task is None:
        if len(tasks) > 1:
            raise ConfigError(
                f"the selected runs are of several tasks ({', '.join(tasks)}); choose one with "
                "--task"
            )
        return tasks[0], runs
    if run_ids and (other := [r for r in runs if r["task"] != task]):
        raise ConfigError(f"run {other[0]['run_id']} is a {other[0]['task']} run, not {task}")
    runs = [r for r in runs if r["task"] == task]
    if not runs:
        raise ConfigError(f"no selected run of task {task!r}; tasks here: {', '.join(tasks)}")
    return task, runs
