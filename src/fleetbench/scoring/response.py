"""Split a model's output into its reasoning and its visible answer.

Scorers must judge only the answer, and reasoning tokens are reported apart, so the
split has to survive what real servers return: ``<think>`` blocks whose opening tag
the chat template already wrote, generations cut off mid-thought, and gpt-oss's
harmony channels with or without their special tokens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Format = Literal["think", "harmony", "plain"]

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
_THINK_TAG = re.compile(r"</?think>")

# Harmony with its special tokens: <|channel|>NAME[ header]<|message|>BODY<|end|>...
_CHANNEL = "<|channel|>"
_MESSAGE = "<|message|>"
_BODY_END = re.compile(r"<\|(?:end|return|call|start)\|>")
# The same with special tokens stripped: "analysisWe need…assistantfinalThe answer…".
_CHANNELS = "analysis|commentary|final"
_DEGRADED_START = re.compile(rf"\s*(assistant)?({_CHANNELS})(\S)")
_DEGRADED_NEXT = re.compile(rf"assistant(?=(?:{_CHANNELS}))")


@dataclass(frozen=True)
class SplitResponse:
    """``reasoning`` is None when the output had no reasoning part at all."""

    answer: str
    reasoning: str | None
    format: Format


def split_response(text: str) -> SplitResponse:
    if _CHANNEL in text:
        return _split_harmony(text)
    if _is_degraded_harmony(text):
        return _split_degraded_harmony(text)
    if THINK_CLOSE in text or text.lstrip().startswith(THINK_OPEN):
        return _split_think(text)
    return SplitResponse(answer=text, reasoning=None, format="plain")


def _split_think(text: str) -> SplitResponse:
    """Split at the ``</think>`` that balances the opening tag.

    Without a leading ``<think>`` the template opened it (Qwen3-Next-Thinking, R1 with a
    ``<think>`` prefix). Counting depth keeps quoted tag pairs inside the reasoning; if
    the tags do not balance, the last ``</think>`` ends the reasoning, and with none the
    generation was cut off mid-thought: all reasoning, empty answer.
    """
    stripped = text.lstrip()
    start = len(text) - len(stripped)
    if stripped.startswith(THINK_OPEN):
        start += len(THINK_OPEN)
    depth = 1
    for tag in _THINK_TAG.finditer(text, start):
        depth += -1 if tag.group() == THINK_CLOSE else 1
        if depth == 0:
            return _think(text[start : tag.start()], text[tag.end() :])
    end = text.rfind(THINK_CLOSE)
    if end < start:
        return _think(text[start:], "")
    return _think(text[start:end], text[end + len(THINK_CLOSE) :])


def _think(reasoning: str, answer: str) -> SplitResponse:
    return SplitResponse(answer=answer.strip(), reasoning=reasoning.strip(), format="think")


def _split_harmony(text: str) -> SplitResponse:
    """Every channel but ``final`` is reasoning (``analysis``, ``commentary`` tool calls)."""
    segments: list[tuple[str, str]] = []
    for part in text.split(_CHANNEL)[1:]:
        header, _, body = part.partition(_MESSAGE)
        name = header.split(maxsplit=1)[0] if header.strip() else ""
        segments.append((name, _BODY_END.split(body, maxsplit=1)[0]))
    return _harmony(segments)


def _is_degraded_harmony(text: str) -> bool:
    """Glued channel names are no English; a bare leading ``analysis`` needs more proof."""
    match = _DEGRADED_START.match(text)
    if match is None:
        return False
    assistant, _, first = match.groups()
    return bool(assistant) or first.isupper() or bool(_DEGRADED_NEXT.search(text))


def _split_degraded_harmony(text: str) -> SplitResponse:
    body = text.lstrip().removeprefix("assistant")
    segments: list[tuple[str, str]] = []
    for part in _DEGRADED_NEXT.split(body):
        name = next(c for c in _CHANNELS.split("|") if part.startswith(c))
        segments.append((name, part[len(name) :]))
    return _harmony(segments)


def _harmony(segments: list[tuple[str, str]]) -> SplitResponse:
    final = [body.strip() for name, body in segments if name == "final"]
    thoughts = [body.strip() for name, body in segments if name != "final"]
    return SplitResponse(
        answer=_join(final),
        reasoning=_join(thoughts) if thoughts else None,
        format="harmony",
    )


def _join(parts: list[str]) -> str:
    return "\n\n".join(p for p in parts if p)
