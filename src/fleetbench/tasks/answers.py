"""How one stored answer reads when runs are compared or combined.

Each task says how its answers read with its ``read_answer`` hook (``Task.read_answer``:
an answer's *key*, i.e. its normalised form, whether it is *blank*, and the confidence
the model reported); this module adds what holds for every task: a failed generation
has no answer at all (it never wins a vote and counts as blank), and a plugin task
without the hook reads its answers with the default.
"""

from __future__ import annotations

from typing import Any

from fleetbench.tasks.base import NO_ANSWER, Answer, Sample, Task, plain_answer

__all__ = ["NO_ANSWER", "Answer", "read_answer", "task_of_run"]


def read_answer(task: Task, sample: Sample, text: str, error: str | None) -> Answer:
    """``task`` is the task object that built ``sample``; ``text`` the visible answer."""
    if error is not None:
        return NO_ANSWER
    hook = getattr(task, "read_answer", None)
    return hook(sample, text) if callable(hook) else plain_answer(text)


def task_of_run(task_name: str, config: dict[str, Any]) -> Task:
    """The task object a stored run used, rebuilt from its recorded options."""
    from fleetbench.tasks import get_task_class

    cls = get_task_class(task_name)
    task: Task = cls(cls.Options.model_validate(config.get("task_options") or {}))
    return task
