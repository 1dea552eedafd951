"""The task interface: samples, prompt building, scoring."""

from __future__ import annotations

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
    """A task turns its options into samples and messages, and scores results."""

    name: ClassVar[str]
    Options: ClassVar[type[BaseModel]]

    def samples(self) -> list[Sample]: ...

    def messages(self, sample: Sample, system_prompt: str | None) -> list[Message]: ...

    def score(self, sample: Sample, result: GenerationResult) -> dict[str, float] | None:
        """Quality metrics for one sample, or None for tasks without a score."""
        ...


def chat_messages(prompt: str, system_prompt: str | None) -> list[Message]:
    """The plain chat shape most tasks use: optional system message, one user turn."""
    messages = [Message(role="system", content=system_prompt)] if system_prompt else []
    messages.append(Message(role="user", content=prompt))
    return messages
