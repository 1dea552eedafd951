"""The hosted backend's pure parts: options, preflight (Anthropic key, Bedrock's AWS
credentials and region: no AWS here, so Bedrock is tested only this far), request
keywords, retry verdicts on any-llm's real exception classes, reply accounting."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("any_llm", reason="needs the [hosted] extra")

from any_llm.exceptions import (
    AuthenticationError,
    InvalidRequestError,
    ProviderError,
    RateLimitError,
)

from fleetbench.backends import GenerationSettings, get_backend_class
from fleetbench.backends import hosted as hosted_mod
from fleetbench.backends.hosted import NEEDS_EXTRA, HostedBackend
from fleetbench.backends.hosted_wire import (
    HostedOptions,
    Reply,
    bedrock_problem,
    classify,
    preflight_problem,
    request_kwargs,
)
from fleetbench.catalog.spec import ModelSpec

KEY = "sk-ant-api03-PLANTED-not-a-real-key"
MODEL = ModelSpec(id="claude-x")


def test_registered_and_remote() -> None:
    assert get_backend_class("hosted") is HostedBackend
    assert not hasattr(HostedBackend, "placement")  # nothing local to fit-check


def test_options_normalise_provider_and_never_keep_a_pasted_key() -> None:
    o = HostedOptions(provider=" Anthropic ", api_key_env=KEY)
    assert o.provider == "anthropic"
    assert KEY not in o.model_dump_json()
    problem = preflight_problem(o, {})
    assert problem and "NAME of an environment variable" in problem and KEY not in problem


def test_anthropic_key_variable_default_and_override() -> None:
    problem = preflight_problem(HostedOptions(), {})
    assert problem and problem.startswith("environment variable ANTHROPIC_API_KEY is not set")
    assert preflight_problem(HostedOptions(), {"ANTHROPIC_API_KEY": KEY}) is None
    custom = HostedOptions(api_key_env="TEAM_CLAUDE_KEY")
    assert "TEAM_CLAUDE_KEY" in (preflight_problem(custom, {"ANTHROPIC_API_KEY": KEY}) or "")
    assert preflight_problem(custom, {"TEAM_CLAUDE_KEY": KEY}) is None


def no_aws_files(tmp_path: Path, **env: str) -> dict[str, str]:
    return {
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        **env,
    }


def test_bedrock_credentials_and_region(tmp_path: Path) -> None:
    o = HostedOptions(provider="bedrock")
    nothing = lambda _o: (False, None)  # noqa: E731  (boto3's chain, stubbed: no AWS here)
    assert "no AWS credentials for bedrock" in (
        bedrock_problem(o, no_aws_files(tmp_path), nothing) or ""
    )
    half = no_aws_files(tmp_path, AWS_ACCESS_KEY_ID="AKIA", AWS_REGION="eu-west-1")
    assert "AWS_SECRET_ACCESS_KEY is not" in (bedrock_problem(o, half, nothing) or "")
    keys = no_aws_files(tmp_path, AWS_ACCESS_KEY_ID="AKIA", AWS_SECRET_ACCESS_KEY="s")
    assert "no AWS region" in (bedrock_problem(o, keys, nothing) or "")
    assert bedrock_problem(o, {**keys, "AWS_DEFAULT_REGION": "us-east-1"}, nothing) is None
    bearer = no_aws_files(tmp_path, AWS_BEARER_TOKEN_BEDROCK="t")
    assert bedrock_problem(o.model_copy(update={"region": "us-west-2"}), bearer, nothing) is None
    profile = o.model_copy(update={"aws_profile": "lab", "region": "us-west-2"})
    assert bedrock_problem(profile, no_aws_files(tmp_path), nothing) is None
    role = lambda _o: (True, "eu-central-1")  # noqa: E731  (an instance role via the chain)
    assert bedrock_problem(o, no_aws_files(tmp_path), role) is None
    (tmp_path / "credentials").write_text("[default]\n")
    files = {"AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"), "AWS_REGION": "x"}
    assert bedrock_problem(o, files, nothing) is None


def test_bedrock_with_a_named_token_variable_checks_that_variable() -> None:
    o = HostedOptions(provider="bedrock", api_key_env="AWS_BEARER_TOKEN_BEDROCK")
    assert "AWS_BEARER_TOKEN_BEDROCK is not set" in (preflight_problem(o, {}) or "")


def test_availability_and_unknown_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    assert HostedBackend.unavailable_reason(HostedOptions(), MODEL) is None
    bedrock = HostedOptions(provider="bedrock")
    if importlib.util.find_spec("boto3") is None:
        assert HostedBackend.unavailable_reason(bedrock, MODEL) == (
            "hosted provider bedrock needs its SDK: pip install 'any-llm-sdk[bedrock]'"
        )
    else:
        assert HostedBackend.unavailable_reason(bedrock, MODEL) is None
    bogus = HostedBackend.preflight_error(HostedOptions(provider="nosuch"), MODEL) or ""
    assert bogus.startswith("unknown hosted provider 'nosuch'; valid:") and "anthropic" in bogus
    real_find = hosted_mod.importlib.util.find_spec
    monkeypatch.setattr(
        hosted_mod.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "any_llm" else real_find(name, *a),
    )
    assert HostedBackend.unavailable_reason(HostedOptions(), MODEL) == NEEDS_EXTRA
    assert HostedBackend.preflight_error(HostedOptions(), MODEL) is None  # skipped instead


def test_request_kwargs_per_provider() -> None:
    s = GenerationSettings(
        temperature=0.3, top_p=0.9, top_k=20, min_p=0.1, max_tokens=64, seed=9, stop=["END"]
    )
    kw, ignored = request_kwargs("anthropic", s, "high", {})
    assert kw == {
        "temperature": 0.3,
        "max_tokens": 64,
        "top_p": 0.9,
        "stop": ["END"],
        "reasoning_effort": "high",
        "top_k": 20,
    }
    assert ignored == ["min_p"]
    kw, ignored = request_kwargs("mistral", s, None, {"min_p": 0.1})
    assert kw["seed"] == 9 and "top_k" not in kw and kw["min_p"] == 0.1
    assert ignored == ["top_k"]
    kw, ignored = request_kwargs("bedrock", GenerationSettings(), None, {})
    assert kw == {"temperature": 0.0, "max_tokens": 128} and ignored == []


def test_classify_statuses_types_and_retry_after() -> None:
    limited = classify(RateLimitError("slow down", status_code=429, retry_after="2"))
    assert (limited.kind, limited.retryable, limited.retry_after_s) == ("HTTP 429", True, 2.0)
    assert classify(ProviderError("Overloaded", status_code=529)).retryable
    assert classify(ProviderError("bad gateway", status_code=502)).retryable
    mid = classify(ProviderError("x", status_code=200, error_type="overloaded_error"))
    assert (mid.kind, mid.retryable) == ("overloaded_error", True)
    bad = classify(InvalidRequestError("max_tokens: too big", status_code=400))
    assert (bad.kind, bad.retryable, bad.detail) == ("HTTP 400", False, "max_tokens: too big")
    assert not classify(AuthenticationError("invalid x-api-key", status_code=401)).retryable
    assert classify(TimeoutError()).kind == "timeout"
    assert not classify(ValueError("nope")).retryable
    throttled = classify(ProviderError("Too many", code="ThrottlingException"))
    assert throttled.retryable


class APIConnectionError(Exception):  # named like the SDK's own
    pass


def test_classify_reads_the_sdk_exception_under_any_llm() -> None:
    response = SimpleNamespace(headers={"retry-after": "3"})
    body = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    sdk = SimpleNamespace(response=response, body=body)
    failure = classify(
        ProviderError(
            "Error code: 529 - {...}",
            original_exception=sdk,  # type: ignore[arg-type]
            status_code=529,
        )
    )
    assert (failure.retry_after_s, failure.detail) == (3.0, "overloaded_error: Overloaded")
    dropped = classify(ProviderError("Connection error.", original_exception=APIConnectionError()))
    assert (dropped.kind, dropped.retryable) == ("connection error", True)


def chunk(
    text: str | None = None,
    finish: str | None = None,
    usage: Any = None,
    thought: str | None = None,
) -> SimpleNamespace:
    reasoning = SimpleNamespace(content=thought) if thought else None
    delta = SimpleNamespace(content=text, reasoning=reasoning)
    return SimpleNamespace(
        choices=[SimpleNamespace(delta=delta, finish_reason=finish)], usage=usage
    )


def test_streamed_reply_timings_and_usage() -> None:
    reply = Reply(start=10.0)
    reply.feed_chunk(chunk(""), 10.1)  # content_block_start: no text yet
    reply.feed_chunk(chunk(thought="hmm"), 10.4)
    reply.feed_chunk(chunk("Hel"), 10.6)
    reply.feed_chunk(chunk("lo"), 11.0)
    usage = SimpleNamespace(prompt_tokens=12, completion_tokens=5)
    reply.feed_chunk(chunk(finish="stop", usage=usage), 11.1)
    reply.end = 11.2
    r = reply.result(index=3, max_tokens=5, retries=1)
    assert (r.text, r.prompt_tokens, r.completion_tokens, r.token_source) == (
        "<think>hmm</think>Hello",
        12,
        5,
        "usage",
    )
    assert r.ttft_s == pytest.approx(0.4) and r.latency_s == pytest.approx(1.2)
    assert r.itl_s == pytest.approx(0.6 / 4)  # per output token, not per chunk
    assert (r.finish_reason, r.retries) == ("length", 1)  # hit max_tokens


def test_reply_without_usage_or_stream() -> None:
    reply = Reply(start=0.0)
    for t, text in ((0.5, "a"), (0.7, "b"), (1.1, "c")):
        reply.feed_chunk(chunk(text), t)
    reply.feed_chunk(chunk(finish="stop"), 1.2)
    reply.end = 1.2
    r = reply.result(0, 100, 0)
    assert (r.completion_tokens, r.token_source, r.finish_reason) == (None, None, "stop")
    assert r.itl_s == pytest.approx(0.3)  # per chunk without a token count

    whole = Reply(start=0.0)
    message = SimpleNamespace(content="Hi", reasoning=None)
    whole.feed_completion(
        SimpleNamespace(
            choices=[SimpleNamespace(message=message, finish_reason="stop")],
            usage=SimpleNamespace(prompt_tokens=4, completion_tokens=2),
        ),
        now=0.8,
    )
    r = whole.result(0, 100, 0)
    assert (r.text, r.latency_s, r.ttft_s, r.itl_s, r.completion_tokens) == (
        "Hi",
        0.8,
        None,
        None,
        2,
    )


def test_a_zero_count_beside_a_reply_is_unknown() -> None:
    reply = Reply(start=0.0)
    reply.feed_chunk(chunk("Hi"), 0.5)
    reply.feed_chunk(
        chunk(finish="stop", usage=SimpleNamespace(prompt_tokens=0, completion_tokens=0)), 0.6
    )
    r = reply.result(0, 100, 0)
    assert (r.prompt_tokens, r.completion_tokens, r.token_source) == (None, None, None)
    empty = Reply(start=0.0)
    empty.feed_chunk(
        chunk(finish="stop", usage=SimpleNamespace(prompt_tokens=9, completion_tokens=0)), 0.6
    )
    r = empty.result(0, 100, 0)
    assert (r.prompt_tokens, r.completion_tokens, r.token_source) == (9, 0, "usage")
