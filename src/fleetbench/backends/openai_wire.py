"""The wire format of OpenAI-compatible chat completions.

Request bodies with explicit sampling (and ``tools`` when the request offers them), the
server-sent-event stream (timings measured as chunks arrive; streamed tool-call deltas
joined by their index), replies without streaming, and the messages of error replies. No
I/O here: ``openai_http`` does the requests. Server text goes into failures whole:
the request engine scrubs secrets out of it before it cuts it (``engine.clean``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fleetbench.backends.base import FunctionCall, GenerationRequest, ToolCall
from fleetbench.backends.engine import RequestFailure
from fleetbench.backends.presets import Preset, ReasoningParam


@dataclass(frozen=True)
class BodySpec:
    """Everything besides the request that shapes a body."""

    model: str
    preset: Preset
    extras: Mapping[str, str]  # fleetbench setting -> request field
    reasoning_param: ReasoningParam
    reasoning_effort: str | None
    stream: bool
    extra_body: Mapping[str, Any] = field(default_factory=dict)


def build_body(request: GenerationRequest, spec: BodySpec) -> dict[str, Any]:
    s = request.settings
    body: dict[str, Any] = {
        "model": spec.model,
        "messages": [m.model_dump() for m in request.messages],
        "temperature": s.temperature,
        "top_p": s.top_p,
        spec.preset.max_tokens_field: s.max_tokens,
        "seed": s.seed,
        "stream": spec.stream,
    }
    if s.stop:
        body["stop"] = list(s.stop)
    if request.tools:
        # "auto" said outright: llama_cpp.server's function-calling formats only
        # consider the tools when a tool_choice is given.
        body["tools"] = request.tools
        body["tool_choice"] = "auto"
    if spec.stream and spec.preset.stream_usage:
        body["stream_options"] = {"include_usage": True}
    values = {
        "top_k": s.top_k,
        "min_p": s.min_p,
        "repeat_penalty": s.repeat_penalty,
        "min_tokens": s.min_tokens,
    }
    for setting, wire in spec.extras.items():
        value = values[setting]
        if setting == "top_k" and value == 0:
            if spec.preset.top_k_off is None:
                continue
            value = spec.preset.top_k_off
        body[wire] = value
    kwargs = dict(request.chat_template_kwargs)
    if spec.reasoning_effort is not None:
        if spec.reasoning_param == "reasoning_effort":
            body["reasoning_effort"] = spec.reasoning_effort
        elif spec.reasoning_param == "chat_template_kwargs":
            kwargs.setdefault("reasoning_effort", spec.reasoning_effort)
    if kwargs and sends_template_kwargs(spec):
        body["chat_template_kwargs"] = kwargs
    return merge_extra_body(body, spec.extra_body)


def merge_extra_body(body: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Lay the entry's ``extra_body`` over a request body; a dict merges into a dict
    already there (e.g. ``options``) instead of replacing it."""
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(body.get(key), dict):
            body[key] = {**body[key], **value}
        else:
            body[key] = value
    return body


def sends_template_kwargs(spec: BodySpec) -> bool:
    return spec.preset.template_kwargs or spec.reasoning_param == "chat_template_kwargs"


@dataclass
class Reply:
    """One completed reply, streamed or not. Times are ``perf_counter`` seconds."""

    start: float  # when the request goes out: the HTTP backend stamps its first network step
    content: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    first_token: float | None = None
    last_token: float | None = None
    token_chunks: int = 0
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    # tool calls by their index: id, name and the arguments' pieces as they arrived
    calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    began: bool = False  # a 200 stream started
    done: bool = False  # "data: [DONE]" seen
    end: float | None = None

    @property
    def text(self) -> str:
        """The answer, with separately delivered reasoning put back in ``<think>`` tags
        so that the runner's reasoning split treats every server alike."""
        content = "".join(self.content)
        if self.reasoning:
            return f"<think>{''.join(self.reasoning)}</think>{content}"
        return content

    @property
    def ttft_s(self) -> float | None:
        return None if self.first_token is None else self.first_token - self.start

    @property
    def itl_s(self) -> float | None:
        """Mean gap between token-bearing chunks after the first. A chunk usually holds
        one token, but servers may pack several into one (then this overstates ITL)."""
        if self.first_token is None or self.last_token is None or self.token_chunks < 2:
            return None
        return (self.last_token - self.first_token) / (self.token_chunks - 1)

    @property
    def latency_s(self) -> float | None:
        return None if self.end is None else self.end - self.start

    def feed_line(self, line: str, now: float) -> None:
        """Consume one SSE line; raises RequestFailure for an error event."""
        if not line.startswith("data:"):
            return  # blank separators, ": ping" comments, "event:" names
        payload = line[5:].strip()
        if payload == "[DONE]":
            self.done = True
            return
        try:
            chunk = json.loads(payload)
        except ValueError:
            raise RequestFailure(
                "bad stream", f"unparseable event {payload!r}", retryable=True
            ) from None
        if not isinstance(chunk, dict):
            return
        if chunk.get("error") is not None:
            raise stream_error(chunk["error"])
        self._usage(chunk)
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            got = self._take(delta.get("content"), self.content)
            got = self._take(_reasoning(delta), self.reasoning) or got
            got = self._take_calls(delta.get("tool_calls")) or got
            if got:
                self.first_token = self.first_token if self.first_token is not None else now
                self.last_token = now
                self.token_chunks += 1
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]

    def feed_json(self, reply: Any) -> None:
        """A whole reply (``stream: false``)."""
        if not isinstance(reply, dict) or not reply.get("choices"):
            if isinstance(reply, dict) and reply.get("error") is not None:
                raise stream_error(reply["error"])
            raise RequestFailure("bad reply", "no choices in the reply", retryable=True)
        message = reply["choices"][0].get("message") or {}
        self._take(message.get("content"), self.content)
        self._take(_reasoning(message), self.reasoning)
        self._take_calls(message.get("tool_calls"))
        self.finish_reason = reply["choices"][0].get("finish_reason")
        self._usage(reply)

    @property
    def tool_calls(self) -> list[ToolCall] | None:
        """The reply's tool calls in index order (None: there were none). A call the
        server sent without an id gets one, so its answer can still name it."""
        if not self.calls:
            return None
        return [
            ToolCall(
                id=call["id"] or f"call_{index}",
                function=FunctionCall(name=call["name"], arguments="".join(call["arguments"])),
            )
            for index, call in sorted(self.calls.items())
        ]

    def _take_calls(self, value: Any) -> bool:
        """Add a reply's ``tool_calls`` (whole, or one stream chunk's deltas: the first
        of an index brings its id and name, later ones more of the arguments)."""
        if not isinstance(value, list):
            return False
        got = False
        for position, item in enumerate(value):
            if not isinstance(item, dict):
                continue
            index = item.get("index", position)
            index = index if isinstance(index, int) else position
            call = self.calls.setdefault(index, {"id": "", "name": "", "arguments": []})
            function = item.get("function") or {}
            if isinstance(item.get("id"), str) and item["id"]:
                call["id"] = item["id"]
            if isinstance(function, dict):
                name = function.get("name")
                if isinstance(name, str) and name and name != call["name"]:
                    call["name"] += name  # some servers repeat the name in every delta
                arguments = function.get("arguments")
                if isinstance(arguments, dict):  # a server that sends an object
                    arguments = json.dumps(arguments)
                if isinstance(arguments, str) and arguments:
                    call["arguments"].append(arguments)
            got = True
        return got

    def _usage(self, obj: dict[str, Any]) -> None:
        usage = obj.get("usage") or (obj.get("x_groq") or {}).get("usage")
        if isinstance(usage, dict) and usage.get("completion_tokens") is not None:
            self.usage = usage

    @staticmethod
    def _take(value: Any, into: list[str]) -> bool:
        if isinstance(value, str) and value:
            into.append(value)
            return True
        return False


def _reasoning(obj: Mapping[str, Any]) -> Any:
    # vLLM, DeepSeek and llama-server say reasoning_content; OpenRouter and Ollama reasoning
    return obj.get("reasoning_content") or obj.get("reasoning")


def stream_error(error: Any) -> RequestFailure:
    """An error object inside a 200 reply: retryable unless it names a client error."""
    message = error.get("message") if isinstance(error, dict) else error
    code = error.get("code") if isinstance(error, dict) else None
    status = code if isinstance(code, int) else None
    retryable = status is None or not 400 <= status < 500 or status in (408, 429)
    return RequestFailure("stream error", str(message), retryable=retryable)


def error_detail(text: str) -> str:
    """The message of an error body (OpenAI ``{"error": {"message"}}``, FastAPI
    ``{"detail"}``, plain text), whole: not scrubbed, not cut."""
    try:
        obj = json.loads(text)
    except ValueError:
        return text
    if isinstance(obj, dict):
        err = obj.get("error", obj)
        if isinstance(err, dict):
            for key in ("message", "detail", "error"):
                if err.get(key):
                    return str(err[key])
        elif err:
            return str(err)
    return text
