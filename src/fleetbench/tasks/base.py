"""The task interface: samples, prompt building, scoring."""

from __future__ import annotations

import math
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, Field

from fleetbench.backends.base import GenerationResult, Message


class Sample(BaseModel):
    """One input of a task; ``index`` is its stable position, ``id`` its name in the dataset."""

    model_config = ConfigDict(extra="forbid")

    index: int
    id: str
    prompt: str
    reference: Any = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class Task(Protocol):
    """A task turns its options into samples and messages, and scores results.

    Optional, looked up with ``getattr`` (see ``run_scores`` and ``run_files``):

    * ``primary_metric: ClassVar[str]``: the run-level metric shown as the run's
      ``quality_score`` (default: none).
    * ``aggregate_scores(scores: list[dict | None]) -> dict[str, float]`` (static): the
      run's metrics from its samples' scores (``None`` for a sample that failed or was
      never reached); default ``mean_scores``.
    * ``run_files(records: list[dict]) -> dict[str, str]`` (static): extra files for the
      run folder (e.g. a Kaggle ``submission.csv``) from the stored sample records.
    """

    name: ClassVar[str]
    Options: ClassVar[type[BaseModel]]

    def samples(self) -> list[Sample]: ...

    def messages(self, sample: Sample, system_prompt: str | None) -> list[Message]: ...

    def score(self, sample: Sample, result: GenerationResult) -> dict[str, Any] | None:
        """Quality metrics for one sample (numbers are averaged per run by default;
        other JSON values are kept with the sample), or None for tasks without a score.
        Called for failed samples too: a task decides how an error scores."""
        ...


def mean_scores(scores: list[dict[str, Any] | None]) -> dict[str, float]:
    """Mean of every numeric metric over the samples that have it."""
    sums: dict[str, list[float]] = {}
    for score in scores:
        for key, value in (score or {}).items():
            if isinstance(value, bool | int | float) and not (
                isinstance(value, float) and math.isnan(value)
            ):
                sums.setdefault(key, []).append(float(value))
    return {key: sum(values) / len(values) for key, values in sums.items()}


def chat_messages(prompt: str, system_prompt: str | None) -> list[Message]:
    """The plain chat shape most tasks use: optional system message, one user turn."""
    messages = [Message(role="system", content=system_prompt)] if system_prompt else []
    messages.append(Message(role="user", content=prompt))
    return messages


def apply_affixes(messages: list[Message], prefix: str, suffix: str) -> list[Message]:
    """Wrap the last user turn in a model's prompt prefix/suffix (e.g. ``/think``).

    A prefix is joined to the content with one space unless it already ends in
    whitespace (``"<think>\\n"`` stays as written); a suffix likewise unless it starts
    with whitespace. Other turns and the input list are left untouched.
    """
    if not (prefix or suffix):
        return messages
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].role == "user":
            content = _join_affix(prefix, messages[i].content, at_end=False)
            content = _join_affix(suffix, content, at_end=True)
            out = list(messages)
            out[i] = messages[i].model_copy(update={"content": content})
            return out
    return messages


def _join_affix(affix: str, content: str, at_end: bool) -> str:
    if not affix:
        return content
    if at_end:
        return content + ("" if affix[0].isspace() else " ") + affix
    return affix + ("" if affix[-1].isspace() else " ") + content
