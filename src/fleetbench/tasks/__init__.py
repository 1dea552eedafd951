"""Tasks, registered by name; a plan may also name a plugin (see ``fleetbench.plugins``)."""

from __future__ import annotations

from typing import Any

from fleetbench.plugins import PlugPoint
from fleetbench.tasks.base import (
    NO_ANSWER,
    Answer,
    ChatFn,
    Interaction,
    Sample,
    Task,
    apply_affixes,
    chat_messages,
    mean_scores,
)

__all__ = [
    "NO_ANSWER",
    "TASKS",
    "Answer",
    "ChatFn",
    "Interaction",
    "Sample",
    "Task",
    "apply_affixes",
    "chat_messages",
    "get_task_class",
    "mean_scores",
    "primary_metric",
    "retrieval_corpus",
    "run_files",
    "run_scores",
    "task_names",
]

_BUILTIN: dict[str, str] = {
    "textgen": "fleetbench.tasks.textgen:TextGenTask",
    "wattbot": "fleetbench.tasks.wattbot:WattBotTask",
    "custom": "fleetbench.tasks.custom:CustomTask",
    "humaneval": "fleetbench.tasks.humaneval:HumanEvalTask",
    "code_io": "fleetbench.tasks.code_io:CodeIOTask",
    "repo_task": "fleetbench.tasks.repo_task:RepoTask",
}


TASKS: PlugPoint[Task] = PlugPoint(
    kind="task",
    group="fleetbench.tasks",
    builtin=_BUILTIN,
    required=("name", "Options", "samples", "messages", "score"),
    protocol="fleetbench.tasks.Task",
)


def task_names() -> list[str]:
    return TASKS.names()


def run_scores(task_name: str, scores: list[dict[str, Any] | None]) -> dict[str, float]:
    """A run's quality metrics: the task's own aggregation, else means."""
    aggregate = getattr(get_task_class(task_name), "aggregate_scores", None)
    return dict(aggregate(scores)) if aggregate else mean_scores(scores)


def primary_metric(task_name: str) -> str | None:
    return getattr(get_task_class(task_name), "primary_metric", None)


def retrieval_corpus(task_name: str, options: dict[str, Any]) -> str:
    """What a run's model was given to read (``closed-book``, ``oracle_passages``, a corpus
    folder), from its recorded task options; "" for tasks without the hook."""
    hook = getattr(get_task_class(task_name), "retrieval_corpus", None)
    return str(hook(options)) if hook else ""


def run_files(task_name: str, records: list[dict[str, Any]]) -> dict[str, str]:
    """Extra files a task writes into a run's folder (name -> text)."""
    files = getattr(get_task_class(task_name), "run_files", None)
    return dict(files(records)) if files else {}


def get_task_class(name: str) -> type[Task]:
    """Resolve a task name (or ``package.module:Class``) to its class; ConfigError if unknown."""
    return TASKS.resolve(name)
