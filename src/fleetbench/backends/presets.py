"""Presets for OpenAI-compatible servers: where they listen and what they accept.

OpenAI-compatible servers agree on the core of ``/v1/chat/completions`` but differ in
the rest: which sampling parameters beyond the OpenAI set they take (and under which
name), how a reasoning effort is passed, whether a stream can end with ``usage``, and
whether they offer a tokenize endpoint. A preset records those facts so a catalogue
entry needs one word instead of six options; every fact can still be overridden.

Parameters a server does not know are never sent: hosted APIs reject unknown fields,
and local servers would silently apply their own defaults instead, so the preset says
which of ``top_k``, ``min_p``, ``repeat_penalty`` and ``min_tokens`` reach the server.
llama-cpp-python's server must receive all of them: its defaults (top_k 40, min_p
0.05, repeat_penalty 1.1) differ from the neutral values fleetbench means.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

# How ``reasoning_effort`` reaches the server: inside ``chat_template_kwargs`` (vLLM,
# llama.cpp servers render it in the chat template), as the top-level OpenAI field, or
# not at all.
ReasoningParam = Literal["chat_template_kwargs", "reasoning_effort", "none"]
# Which tokenize endpoint the server offers (None: none), used when a reply has no usage.
TokenizeKind = Literal["llamacpp", "vllm", "tgi"]
# fleetbench sampling settings that are not part of the OpenAI request.
SAMPLING_EXTRAS = ("top_k", "min_p", "repeat_penalty", "min_tokens")

_LLAMACPP_EXTRAS = {s: s for s in SAMPLING_EXTRAS}
_VLLM_EXTRAS = {
    "top_k": "top_k",
    "min_p": "min_p",
    "repeat_penalty": "repetition_penalty",
    "min_tokens": "min_tokens",
}
_HOSTED_EXTRAS = {"top_k": "top_k", "min_p": "min_p", "repeat_penalty": "repetition_penalty"}


@dataclass(frozen=True)
class Preset:
    name: str
    base_url: str
    api_key_env: str | None = None
    # fleetbench setting -> request field, for the sampling extras the server accepts
    extras: Mapping[str, str] = field(default_factory=dict)
    # what to send for top_k == 0 ("consider all tokens"); None: leave top_k out then
    top_k_off: int | None = 0
    reasoning_param: ReasoningParam = "reasoning_effort"
    # whether the request's chat_template_kwargs (enable_thinking, ...) can be sent
    template_kwargs: bool = False
    # whether ``stream_options: {include_usage: true}`` is accepted
    stream_usage: bool = True
    tokenize: TokenizeKind | None = None
    # OpenAI's newer models refuse ``max_tokens``
    max_tokens_field: str = "max_tokens"
    # whether the service's chat models call OpenAI tools (agentic tasks use them then)
    tool_calling: bool = False


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "openai",
            "https://api.openai.com/v1",
            "OPENAI_API_KEY",
            max_tokens_field="max_completion_tokens",
            tool_calling=True,
        ),
        Preset(
            "openrouter",
            "https://openrouter.ai/api/v1",
            "OPENROUTER_API_KEY",
            extras=_HOSTED_EXTRAS,
            top_k_off=None,
            tool_calling=True,
        ),
        Preset("groq", "https://api.groq.com/openai/v1", "GROQ_API_KEY", tool_calling=True),
        Preset(
            "together",
            "https://api.together.xyz/v1",
            "TOGETHER_API_KEY",
            extras=_HOSTED_EXTRAS,
            top_k_off=None,
            tool_calling=True,
        ),
        # Ollama's OpenAI endpoint ignores top_k/min_p/repeat_penalty (native API only).
        Preset("ollama", "http://127.0.0.1:11434/v1"),
        Preset(
            "vllm",
            "http://127.0.0.1:8000/v1",
            extras=_VLLM_EXTRAS,
            top_k_off=-1,  # older vLLM rejects 0; -1 means "all tokens" in every version
            reasoning_param="chat_template_kwargs",
            template_kwargs=True,
            tokenize="vllm",
        ),
        # llama-cpp-python's server (port 8000). Its 0.3.36 request model drops unknown
        # fields, so chat_template_kwargs and stream_options are sent but ignored there;
        # llama.cpp's own C++ llama-server (port 8080) honours chat_template_kwargs.
        Preset(
            "llamacpp-server",
            "http://127.0.0.1:8000/v1",
            extras=_LLAMACPP_EXTRAS,
            reasoning_param="chat_template_kwargs",
            template_kwargs=True,
            stream_usage=False,
            tokenize="llamacpp",
        ),
        Preset("tgi", "http://127.0.0.1:8080/v1", reasoning_param="none", tokenize="tgi"),
    )
}

# Without a preset: a generic OpenAI-compatible server, standard fields only.
GENERIC = Preset("custom", "")
