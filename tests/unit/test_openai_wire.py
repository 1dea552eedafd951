"""Request bodies, stream parsing, options and key rules of the ``openai`` backend."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from fleetbench.backends import GenerationRequest, GenerationSettings, Message, get_backend_class
from fleetbench.backends.engine import RequestFailure, clean, redact_url, scrub
from fleetbench.backends.openai_http import OpenAIBackend, OpenAIOptions
from fleetbench.backends.openai_wire import (
    BodySpec,
    Reply,
    build_body,
    error_detail,
)
from fleetbench.backends.presets import PRESETS, Preset
from fleetbench.catalog.spec import ModelSpec

SETTINGS = GenerationSettings(max_tokens=9, seed=3, stop=["\n\n"])


def request(**kwargs: Any) -> GenerationRequest:
    return GenerationRequest(
        index=0, messages=[Message(role="user", content="hi")], settings=SETTINGS, **kwargs
    )


def body_for(preset: str, effort: str | None = None, **kwargs: Any) -> dict[str, Any]:
    options = OpenAIOptions(preset=preset)
    p: Preset = PRESETS[preset]
    spec = BodySpec(
        model="m",
        preset=p,
        extras=options.sampling_extras or {},
        reasoning_param=options.reasoning_param or p.reasoning_param,
        reasoning_effort=effort,
        stream=True,
    )
    return build_body(request(**kwargs), spec)


def test_registry_resolves_openai() -> None:
    assert get_backend_class("openai") is OpenAIBackend


def test_llamacpp_server_gets_every_sampling_param() -> None:
    body = body_for("llamacpp-server", chat_template_kwargs={"enable_thinking": False})
    assert body["repeat_penalty"] == 1.0  # its own default is 1.1
    assert body["top_k"] == 0 and body["min_p"] == 0.0 and body["min_tokens"] == 0
    assert body["temperature"] == 0.0 and body["top_p"] == 1.0 and body["seed"] == 3
    assert body["max_tokens"] == 9 and body["stop"] == ["\n\n"] and body["stream"] is True
    assert body["chat_template_kwargs"] == {"enable_thinking": False}
    assert "stream_options" not in body


def test_vllm_names_and_neutral_top_k() -> None:
    body = body_for("vllm", effort="high")
    assert body["repetition_penalty"] == 1.0 and "repeat_penalty" not in body
    assert body["top_k"] == -1
    assert body["chat_template_kwargs"] == {"reasoning_effort": "high"}
    assert body["stream_options"] == {"include_usage": True}


def test_openai_sends_only_standard_fields() -> None:
    body = body_for("openai", effort="low", chat_template_kwargs={"enable_thinking": True})
    for field in ("top_k", "min_p", "repeat_penalty", "min_tokens", "chat_template_kwargs"):
        assert field not in body
    assert body["reasoning_effort"] == "low"
    assert body["max_completion_tokens"] == 9 and "max_tokens" not in body


def test_hosted_extras_leave_out_disabled_top_k() -> None:
    body = body_for("together")
    assert "top_k" not in body and body["repetition_penalty"] == 1.0


def test_extra_body_wins_and_merges_dicts() -> None:
    spec = BodySpec(
        model="m",
        preset=PRESETS["vllm"],
        extras={},
        reasoning_param="chat_template_kwargs",
        reasoning_effort=None,
        stream=False,
        extra_body={"chat_template_kwargs": {"x": 1}, "temperature": 0.3},
    )
    body = build_body(request(chat_template_kwargs={"enable_thinking": False}), spec)
    assert body["chat_template_kwargs"] == {"enable_thinking": False, "x": 1}
    assert body["temperature"] == 0.3


def sse(obj: Any) -> str:
    return "data: " + json.dumps(obj)


def test_stream_timings_text_and_usage() -> None:
    reply = Reply(start=10.0)
    lines = [
        (sse({"choices": [{"index": 0, "delta": {"role": "assistant"}}]}), 10.1),
        ("", 10.1),
        (": ping", 10.15),
        (sse({"choices": [{"delta": {"reasoning_content": "hmm"}}]}), 10.2),
        (sse({"choices": [{"delta": {"content": "Hel"}}]}), 10.3),
        (sse({"choices": [{"delta": {"content": "lo"}, "finish_reason": "stop"}]}), 10.6),
        (sse({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3}}), 10.7),
        ("data: [DONE]", 10.7),
    ]
    for line, now in lines:
        reply.feed_line(line, now)
    reply.end = 10.8
    assert reply.text == "<think>hmm</think>Hello"
    assert reply.ttft_s == pytest.approx(0.2)
    assert reply.itl_s == pytest.approx(0.2)  # (10.6 - 10.2) / 2 gaps
    assert reply.latency_s == pytest.approx(0.8)
    assert reply.finish_reason == "stop" and reply.done
    assert reply.usage == {"prompt_tokens": 5, "completion_tokens": 3}


def test_groq_usage_and_error_events() -> None:
    reply = Reply(start=0.0)
    reply.feed_line(sse({"choices": [], "x_groq": {"usage": {"completion_tokens": 2}}}), 1.0)
    assert reply.usage == {"completion_tokens": 2}
    with pytest.raises(RequestFailure) as info:
        reply.feed_line(sse({"error": {"message": "overloaded", "code": 502}}), 1.0)
    assert info.value.retryable
    with pytest.raises(RequestFailure) as info:
        reply.feed_line(sse({"error": {"message": "context too long", "code": 400}}), 1.0)
    assert not info.value.retryable
    with pytest.raises(RequestFailure):
        reply.feed_line("data: {not json", 1.0)


def test_plain_reply() -> None:
    reply = Reply(start=0.0)
    reply.feed_json(
        {
            "choices": [{"message": {"content": "4", "reasoning": "2+2"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 1},
        }
    )
    assert reply.text == "<think>2+2</think>4" and reply.ttft_s is None and reply.itl_s is None


def test_error_detail_and_scrubbing() -> None:
    assert clean(error_detail('{"error": {"message": "bad\\nthing"}}'), ()) == "bad thing"
    assert error_detail('{"detail": "Not Found"}') == "Not Found"
    assert error_detail("plain text") == "plain text"
    assert len(error_detail("x" * 5000)) == 5000  # whole: scrubbed first, then cut
    assert len(clean(error_detail("x" * 5000), ())) == 300
    assert scrub("key sk-abc and Bearer sk-abc", ["sk-abc", ""]) == "key *** and Bearer ***"
    assert redact_url("https://user:pw@host/v1") == "https://host/v1"


def test_options_need_an_address_and_a_known_preset() -> None:
    with pytest.raises(ValidationError, match="set base_url"):
        OpenAIOptions()
    with pytest.raises(ValidationError, match="unknown preset 'nope'; valid: openai"):
        OpenAIOptions(preset="nope")
    with pytest.raises(ValidationError, match="unknown setting 'top_a'"):
        OpenAIOptions(base_url="http://x/v1", sampling_extras={"top_a": "top_a"})
    with pytest.raises(ValidationError):
        OpenAIOptions(base_url="http://x/v1", bogus=1)  # type: ignore[call-arg]


def test_presets_fill_and_dump_round_trips() -> None:
    o = OpenAIOptions(preset="groq")
    assert o.base_url == "https://api.groq.com/openai/v1" and o.api_key_env == "GROQ_API_KEY"
    assert OpenAIOptions.model_validate(o.model_dump(mode="json")) == o
    local = OpenAIOptions(preset="ollama")
    assert local.base_url == "http://127.0.0.1:11434/v1" and local.api_key_env == ""
    custom = OpenAIOptions(preset="openai", base_url="http://127.0.0.1:9/v1", api_key_env="")
    assert custom.base_url.startswith("http://127.0.0.1") and custom.api_key_env == ""
    expected = {
        "tgi": "http://127.0.0.1:8080/v1",
        "vllm": "http://127.0.0.1:8000/v1",
        "llamacpp-server": "http://127.0.0.1:8000/v1",
    }
    for name, url in expected.items():
        assert OpenAIOptions(preset=name).base_url == url


def test_preflight_names_the_missing_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    model = ModelSpec(name="gpt-x", id="openai/gpt-x")
    options = OpenAIOptions(preset="openai", api_key_env="FB_UNIT_KEY")
    monkeypatch.delenv("FB_UNIT_KEY", raising=False)
    message = OpenAIBackend.preflight_error(options, model)
    assert message is not None and "FB_UNIT_KEY is not set" in message and "gpt-x" in message
    monkeypatch.setenv("FB_UNIT_KEY", "sk-unit-secret")
    assert OpenAIBackend.preflight_error(options, model) is None
    assert OpenAIBackend.preflight_error(OpenAIOptions(preset="vllm"), model) is None


def test_a_pasted_key_is_never_echoed() -> None:
    options = OpenAIOptions(preset="openai", api_key_env="sk-proj-SECRET123")
    assert "SECRET" not in options.model_dump_json() and "SECRET" not in repr(options)
    message = OpenAIBackend.preflight_error(options, ModelSpec(name="m"))
    assert message is not None and "never the key itself" in message and "SECRET" not in message


def test_a_zero_count_beside_a_reply_is_unknown(tmp_path: Any) -> None:
    from backendctx import make_context

    backend = OpenAIBackend(OpenAIOptions(base_url="http://127.0.0.1:9/v1"), make_context(tmp_path))

    def result(usage: dict[str, Any], text: str = "Hello") -> Any:
        reply = Reply(start=0.0, content=[text] if text else [], usage=usage, end=1.0)
        r = backend._result(request(), reply)
        return r.prompt_tokens, r.completion_tokens, r.token_source

    assert result({"prompt_tokens": 7, "completion_tokens": 2}) == (7, 2, "usage")
    assert result({"prompt_tokens": 0, "completion_tokens": 0}) == (None, None, None)
    assert result({"prompt_tokens": 7, "completion_tokens": 0}, text="") == (7, 0, "usage")
    assert result({"prompt_tokens": 0, "completion_tokens": 3}) == (None, 3, "usage")
    assert result({"prompt_tokens": -1, "completion_tokens": True}) == (None, None, None)


def test_tools_are_sent_with_tool_choice_auto_and_tool_turns_keep_their_fields() -> None:
    from fleetbench.backends import FunctionCall, ToolCall

    tools = [{"type": "function", "function": {"name": "bash", "parameters": {}}}]
    assert "tools" not in body_for("vllm") and "tool_choice" not in body_for("vllm")
    body = body_for("vllm", tools=tools)
    assert body["tools"] == tools and body["tool_choice"] == "auto"
    call = ToolCall(id="c1", function=FunctionCall(name="bash", arguments='{"command": "ls"}'))
    turns = [Message(role="assistant", content="", tool_calls=[call]),
             Message(role="tool", content="exit code 0", tool_call_id="c1")]  # fmt: skip
    spec = BodySpec(model="m", preset=PRESETS["vllm"], extras={}, reasoning_param="none",
                    reasoning_effort=None, stream=False)  # fmt: skip
    sent = build_body(request().model_copy(update={"messages": turns}), spec)["messages"]
    assert sent == [
        {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function",
         "function": {"name": "bash", "arguments": '{"command": "ls"}'}}]},
        {"role": "tool", "content": "exit code 0", "tool_call_id": "c1"},
    ]  # fmt: skip
    assert body_for("vllm")["messages"] == [{"role": "user", "content": "hi"}]  # unchanged


def test_streamed_tool_call_deltas_are_joined_by_index() -> None:
    reply = Reply(start=0.0)
    deltas = [
        {"role": "assistant", "content": "Let me look."},
        {"tool_calls": [{"index": 0, "id": "a", "type": "function",
                         "function": {"name": "bash", "arguments": ""}}]},
        {"tool_calls": [{"index": 1, "id": "b", "function": {"name": "done"}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"comm'}}]},
        {"tool_calls": [{"index": 0, "function": {"name": "bash", "arguments": 'and": "ls"}'}}]},
    ]  # fmt: skip
    for i, delta in enumerate(deltas):
        reply.feed_line(sse({"choices": [{"index": 0, "delta": delta}]}), 1.0 + i)
    reply.feed_line(sse({"choices": [{"delta": {}, "finish_reason": "tool_calls"}]}), 9.0)
    assert reply.text == "Let me look." and reply.finish_reason == "tool_calls"
    calls = reply.tool_calls
    assert calls is not None
    assert [(c.id, c.function.name, c.function.arguments) for c in calls] == [
        ("a", "bash", '{"command": "ls"}'), ("b", "done", "")]  # fmt: skip
    assert reply.token_chunks == 5 and reply.ttft_s == pytest.approx(1.0)
    assert Reply(start=0.0).tool_calls is None


def test_plain_reply_with_tool_calls() -> None:
    reply = Reply(start=0.0)
    calls_sent = [
        {"id": "x", "type": "function", "function": {"name": "bash", "arguments": "{}"}},
        {"type": "function", "function": {"name": "done", "arguments": {"why": 1}}},
    ]
    message = {"content": None, "tool_calls": calls_sent}
    reply.feed_json({"choices": [{"finish_reason": "tool_calls", "message": message}]})
    calls = reply.tool_calls
    assert calls is not None and reply.text == ""
    assert [(c.id, c.function.name, c.function.arguments) for c in calls] == [
        ("x", "bash", "{}"), ("call_1", "done", '{"why": 1}')]  # fmt: skip


def test_tool_calling_support_from_the_entry_or_the_preset() -> None:
    from fleetbench.backends.base import BackendContext

    def support(**options: Any) -> str:
        context = BackendContext(model=ModelSpec(name="m"), run_dir=Path("."))
        return OpenAIBackend(OpenAIOptions(**options), context).tool_calling()

    assert support(base_url="http://127.0.0.1:1/v1") == "untested"
    assert support(base_url="http://127.0.0.1:1/v1", tool_calling=True) == "supported"
    assert support(preset="groq") == "supported"
    assert support(preset="openai", tool_calling=False) == "untested"
    assert support(preset="ollama", api="native", tool_calling=True) == "unavailable"
