"""Tasks, registered by name (``module:Class`` strings so lookups import only what is used)."""

from __future__ import annotations

import importlib
from typing import Any

from fleetbench.errors import ConfigError
from fleetbench.tasks.base import Sample, Task, apply_affixes, chat_messages

__all__ = ["Sample", "Task", "apply_affixes", "chat_messages", "get_task_class", "task_names"]

_BUILTIN: dict[str, str] = {
    "textgen": "fleetbench.tasks.textgen:TextGenTask",
}


def task_names() -> list[str]:
    return sorted(_BUILTIN)


def get_task_class(name: str) -> Any:
    target = _BUILTIN.get(name)
    if target is None:
        raise ConfigError(f"unknown task {name!r}; valid: {', '.join(task_names())}")
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)
