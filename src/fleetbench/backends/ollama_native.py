"""The wire format of Ollama's native chat API (``POST /api/chat``), for the ``openai``
backend's ``api: native`` mode.

Why a second wire format: Ollama's OpenAI-compatible ``/v1`` endpoint says nothing of
how the server spent the time, while the native reply's final object (``done: true``)
carries ``load_duration``, ``prompt_eval_count``, ``prompt_eval_duration``,
``eval_count``, ``eval_duration`` and ``total_duration`` (nanoseconds). Those become
the result's ``server_timing`` (seconds) and its token counts (``usage``), so a run
records the model load time and the server's own prompt-eval and eval tokens/s beside
the client-side latency, TTFT and ITL.

The stream is NDJSON: one JSON object a line, ``message.content`` (and
``message.thinking`` for reasoning models) per chunk, the last with ``done: true``.
Sampling goes into ``options`` under Ollama's names (``num_predict`` for max_tokens);
the native API takes top_k, min_p and repeat_penalty, which its ``/v1`` ignores.
No I/O here: ``openai_http`` sends the requests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fleetbench.backends.base import GenerationRequest
from fleetbench.backends.engine import RequestFailure
from fleetbench.backends.openai_wire import BodySpec, Reply, merge_extra_body, stream_error

CHAT_PATH = "api/chat"
TAGS_PATH = "api/tags"
_NS = 1e-9
# Ollama's duration fields (nanoseconds) and counts -> server_timing keys.
_TIMING = {
    "load_duration": "load_s",
    "prompt_eval_count": "prompt_eval_tokens",
    "prompt_eval_duration": "prompt_eval_s",
    "eval_count": "eval_tokens",
    "eval_duration": "eval_s",
    "total_duration": "total_s",
}


def native_root(base_url: str) -> str:
    """The server root of an Ollama ``/v1`` base URL (``http://host:11434/v1`` ->
    ``http://host:11434``): the native endpoints live beside ``/v1``."""
    root = base_url.rstrip("/")
    return root[: -len("/v1")] if root.endswith("/v1") else root


def build_native_body(request: GenerationRequest, spec: BodySpec) -> dict[str, Any]:
    s = request.settings
    options: dict[str, Any] = {
        "temperature": s.temperature,
        "top_p": s.top_p,
        "top_k": s.top_k,  # 0: all tokens, as in fleetbench
        "min_p": s.min_p,
        "repeat_penalty": s.repeat_penalty,
        "num_predict": s.max_tokens,
        "seed": s.seed,
    }
    if s.stop:
        options["stop"] = list(s.stop)
    body: dict[str, Any] = {
        "model": spec.model,
        "messages": [m.model_dump() for m in request.messages],
        "stream": spec.stream,
        "options": options,
    }
    # Reasoning: Ollama's ``think`` takes a bool, or an effort for models that have one.
    think = request.chat_template_kwargs.get("enable_thinking")
    if spec.reasoning_effort is not None:
        think = spec.reasoning_effort
    if think is not None:
        body["think"] = think
    return merge_extra_body(body, spec.extra_body)


@dataclass
class NativeReply(Reply):
    """A native reply, streamed (NDJSON) or whole; ``done`` marks the final object."""

    server_timing: dict[str, float] | None = None

    def feed_native_line(self, line: str, now: float) -> None:
        if not line.strip():
            return
        try:
            chunk = json.loads(line)
        except ValueError:
            detail = f"unparseable line {line!r}"
            raise RequestFailure("bad stream", detail, retryable=True) from None
        self.feed_native(chunk, now)

    def feed_native(self, chunk: Any, now: float | None) -> None:
        """One object of the stream, or the whole reply (``now`` None: not streamed)."""
        if not isinstance(chunk, dict):
            raise RequestFailure("bad reply", "a reply line is not an object", retryable=True)
        if chunk.get("error") is not None:
            raise stream_error(chunk["error"])
        message = chunk.get("message") or {}
        got = self._take(message.get("content"), self.content)
        got = self._take(message.get("thinking"), self.reasoning) or got
        if got and now is not None:
            self.first_token = self.first_token if self.first_token is not None else now
            self.last_token = now
            self.token_chunks += 1
        if chunk.get("done"):
            self.done = True
            self.finish_reason = str(chunk.get("done_reason") or "stop")
            self.server_timing = timing(chunk)
            prompt, completion = chunk.get("prompt_eval_count"), chunk.get("eval_count")
            if isinstance(completion, int) and not isinstance(completion, bool):
                self.usage = {"completion_tokens": completion, "prompt_tokens": prompt}


def timing(final: dict[str, Any]) -> dict[str, float] | None:
    """The final object's counts and durations (ns -> s); None if it has none."""
    out: dict[str, float] = {}
    for wire, key in _TIMING.items():
        value = final.get(wire)
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            out[key] = int(value) if key.endswith("_tokens") else value * _NS
    return out or None
