"""A scripted model for multi-turn tasks (``backend: scripted:ScriptedBackend``): replays a
fixed list of replies, the n-th reply for a conversation holding n-1 of its answers.

The issue asks for it (a repo task solved end to end); it stands in for a model that
does the right thing, which the real small model cannot. ``scripts`` maps a piece of
the first user message (e.g. the task's instructions) to its replies; past the end of a
script it answers ``DONE``. Token counts are characters ÷ 4 so totals are predictable.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from fleetbench.backends import BackendContext, GenerationRequest, GenerationResult, LoadInfo


class ScriptOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scripts: dict[str, list[str]]
    fail_at_turn: int | None = None  # this turn (1-based) comes back as a backend error


class ScriptedBackend:
    name: ClassVar[str] = "scripted"
    Options: ClassVar[type[BaseModel]] = ScriptOptions

    def __init__(self, options: ScriptOptions, context: BackendContext) -> None:
        self.options = options

    def load(self) -> LoadInfo:
        return LoadInfo(load_time_s=0.0)

    def generate(self, requests: Iterable[GenerationRequest]) -> Iterator[GenerationResult]:
        for r in requests:
            first = next(m.content for m in r.messages if m.role == "user")
            script = next((s for key, s in self.options.scripts.items() if key in first), [])
            turn = sum(m.role == "assistant" for m in r.messages)
            if self.options.fail_at_turn == turn + 1:
                yield GenerationResult(index=r.index, error="injected failure", retryable=False)
                continue
            text = script[turn] if turn < len(script) else "DONE"
            prompt_chars = sum(len(m.content) for m in r.messages)
            yield GenerationResult(
                index=r.index, text=text, prompt_tokens=prompt_chars // 4,
                completion_tokens=len(text) // 4, latency_s=0.01, finish_reason="stop",
            )  # fmt: skip

    def close(self) -> None:
        pass
