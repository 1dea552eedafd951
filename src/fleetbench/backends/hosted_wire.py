"""The ``hosted`` backend's options and pure parts: configuration checks, settings ->
request keywords, any-llm replies -> results, exceptions -> retry verdicts. No network
here, and no SDK import beyond any-llm's provider lookup. Error texts go into the
verdicts whole: the request engine scrubs secrets out before it cuts them."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from fleetbench.backends.apikeys import NOT_A_NAME, hide_non_name, not_a_name_problem
from fleetbench.backends.base import GenerationResult, GenerationSettings
from fleetbench.backends.engine import (
    EngineOptions,
    RequestFailure,
    is_retryable_status,
    parse_retry_after,
    retry_after_from_headers,
)
from fleetbench.urlauth import hide_userinfo

BEDROCK = "bedrock"
ANTHROPIC_LIKE = frozenset({"anthropic", "azureanthropic", "vertexaianthropic"})
_NO_SEED = ANTHROPIC_LIKE | {BEDROCK}  # their APIs reject a seed

# Error types and codes that mean "try again later" even without an HTTP status:
# Anthropic reports mid-stream errors inside a 200, Bedrock names them in the body.
_TRANSIENT_TYPES = frozenset(
    {
        "overloaded_error",
        "rate_limit_error",
        "api_error",
        "timeout_error",
        "ThrottlingException",
        "ServiceUnavailableException",
        "ModelNotReadyException",
        "InternalServerException",
        "ModelTimeoutException",
    }
)
# Exception class names (any-llm's and the SDK's) of transport failures.
_TRANSIENT_NAMES = ("Timeout", "Connection", "RemoteProtocol", "ReadError", "RateLimit")
_AWS_CREDENTIAL_VARS = (
    "AWS_BEARER_TOKEN_BEDROCK",
    "AWS_ACCESS_KEY_ID",
    "AWS_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


class HostedOptions(EngineOptions):
    """Concurrency and retries are the request engine's (``EngineOptions``)."""

    provider: str = Field("anthropic", description="any-llm provider: anthropic, bedrock, ...")
    model: str | None = Field(None, description="provider's model id; default: the entry's id")
    api_key_env: str | None = Field(
        None, description="variable holding the key; default: the provider's (bedrock: AWS chain)"
    )
    api_base: str | None = Field(None, description="override the provider's endpoint")
    region: str | None = Field(None, description="bedrock: AWS region (else AWS_REGION)")
    aws_profile: str | None = Field(None, description="bedrock: AWS profile (else AWS_PROFILE)")
    stream: bool = True
    timeout_s: float = Field(120.0, gt=0, description="longest one attempt")
    extra: dict[str, Any] = Field(default_factory=dict, description="more request fields")

    @field_validator("provider")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.strip().lower()

    @field_validator("api_base")
    @classmethod
    def _no_credentials(cls, value: str | None) -> str | None:
        return hide_userinfo(value)

    @field_validator("api_key_env", mode="before")
    @classmethod
    def _hide_non_names(cls, value: Any) -> Any:
        return hide_non_name(value)


# -- configuration checks (no network) -------------------------------------------------


def provider_class(provider: str) -> Any:
    """any-llm's class for ``provider`` (its SDK import is guarded); raises if unknown."""
    from any_llm import AnyLLM

    return AnyLLM.get_provider_class(provider)


def key_variable(options: HostedOptions) -> str | None:
    """The variable that holds the key; None for bedrock's AWS credential chain."""
    if options.api_key_env:
        return options.api_key_env
    if options.provider == BEDROCK:
        return None
    if options.provider == "anthropic":
        return "ANTHROPIC_API_KEY"
    try:
        name = getattr(provider_class(options.provider), "ENV_API_KEY_NAME", None)
    except Exception:
        name = None
    return name if isinstance(name, str) and name else f"{options.provider.upper()}_API_KEY"


def bedrock_problem(
    options: HostedOptions, env: Mapping[str, str], chain: Any = None
) -> str | None:
    """Why bedrock has no credentials or region: from the environment and AWS files,
    then boto3's own chain (which also finds instance roles) if that is available."""
    region = options.region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if env.get("AWS_ACCESS_KEY_ID") and not env.get("AWS_SECRET_ACCESS_KEY"):
        return "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not (bedrock)"
    files = (
        env.get("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials"),
        env.get("AWS_CONFIG_FILE", "~/.aws/config"),
    )
    found = bool(options.aws_profile or any(env.get(v) for v in _AWS_CREDENTIAL_VARS))
    found = found or any(Path(f).expanduser().is_file() for f in files)
    if (not found or not region) and (chain or importlib.util.find_spec("boto3")):
        has_credentials, chain_region = (chain or _boto_chain)(options)
        found, region = found or has_credentials, region or chain_region
    if not found:
        return (
            "no AWS credentials for bedrock: set AWS_BEARER_TOKEN_BEDROCK, or "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"
        )
    if not region:
        return "no AWS region for bedrock: set AWS_REGION or options.region"
    return None


def _boto_chain(options: HostedOptions) -> tuple[bool, str | None]:
    boto3: Any = importlib.import_module("boto3")
    session = boto3.Session(profile_name=options.aws_profile, region_name=options.region)
    return session.get_credentials() is not None, session.region_name


def preflight_problem(options: HostedOptions, env: Mapping[str, str]) -> str | None:
    """A configuration problem that must stop the batch before anything runs."""
    if options.api_key_env == NOT_A_NAME:
        return not_a_name_problem("ANTHROPIC_API_KEY")
    if options.provider == BEDROCK and not options.api_key_env:
        return bedrock_problem(options, env)
    name = key_variable(options)
    if name and not env.get(name):
        return (
            f"environment variable {name} is not set (API key for hosted provider "
            f"{options.provider}); export {name}=... or set options.api_key_env"
        )
    return None


def request_kwargs(
    provider: str, settings: GenerationSettings, effort: str | None, extra: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """Keywords for any-llm's ``acompletion``, and the non-default settings this
    provider cannot take (they are not sent; the caller warns). ``extra`` wins."""
    s = settings
    kw: dict[str, Any] = {"temperature": s.temperature, "max_tokens": s.max_tokens}
    if s.top_p < 1.0:
        kw["top_p"] = s.top_p
    if s.stop:
        kw["stop"] = list(s.stop)
    if provider not in _NO_SEED:
        kw["seed"] = s.seed
    if effort:
        kw["reasoning_effort"] = effort
    ignored = []
    if s.top_k > 0:
        if provider in ANTHROPIC_LIKE:
            kw["top_k"] = s.top_k
        else:
            ignored.append("top_k")
    if s.min_p > 0.0:
        ignored.append("min_p")
    if s.min_tokens > 0:
        ignored.append("min_tokens")
    if s.repeat_penalty != 1.0:
        ignored.append("repeat_penalty")
    kw.update(extra)
    return kw, [name for name in ignored if name not in extra]


def classify(exc: BaseException) -> RequestFailure:
    """Our retry verdict for an any-llm (unified) or provider SDK exception."""
    if isinstance(exc, RequestFailure):
        return exc
    original = getattr(exc, "original_exception", None) or exc
    status = getattr(exc, "status_code", None)
    code = getattr(exc, "error_type", None) or getattr(exc, "code", None)
    names = f"{type(exc).__name__} {type(original).__name__}"
    detail = _body_detail(getattr(original, "body", None))
    detail = detail or str(getattr(exc, "message", None) or exc)
    retry_after = parse_retry_after(getattr(exc, "retry_after", None))
    headers = getattr(getattr(original, "response", None), "headers", None)
    if retry_after is None and isinstance(headers, Mapping):
        retry_after = retry_after_from_headers(headers)
    if isinstance(exc, TimeoutError):
        return RequestFailure("timeout", detail or "attempt timed out", retryable=True)
    if isinstance(status, int) and status >= 300:  # mid-stream errors carry the 200
        retryable = is_retryable_status(status) or code in _TRANSIENT_TYPES
        kind = f"HTTP {status}"
    elif code in _TRANSIENT_TYPES:
        retryable, kind = True, str(code)
    elif any(n in names for n in _TRANSIENT_NAMES):
        retryable, kind = True, "timeout" if "Timeout" in names else "connection error"
    else:
        retryable, kind = False, type(exc).__name__
    return RequestFailure(
        kind, detail, retryable=retryable, retry_after_s=retry_after if retryable else None
    )


@dataclass
class Reply:
    """One attempt's reply, fed chunk by chunk (streamed) or whole. Times are
    ``time.perf_counter()`` readings."""

    start: float
    content: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    first: float | None = None
    last: float | None = None
    chunks: int = 0  # chunks that carried text
    finish: str | None = None
    usage: Any = None
    end: float | None = None

    def feed_chunk(self, chunk: Any, now: float) -> None:
        if getattr(chunk, "usage", None) is not None:
            self.usage = chunk.usage
        for choice in (getattr(chunk, "choices", None) or [])[:1]:
            self._take(choice.delta, now)
            self.finish = choice.finish_reason or self.finish

    def feed_completion(self, completion: Any, now: float) -> None:
        self.usage = getattr(completion, "usage", None)
        if completion.choices:
            self._take(completion.choices[0].message, None)
            self.finish = completion.choices[0].finish_reason
        self.end = now

    def _take(self, part: Any, now: float | None) -> None:
        text = getattr(part, "content", None) or ""
        thought = getattr(getattr(part, "reasoning", None), "content", None) or ""
        self.content.append(text)
        self.reasoning.append(thought)
        if (text or thought) and now is not None:
            self.first = self.first if self.first is not None else now
            self.last, self.chunks = now, self.chunks + 1

    def result(self, index: int, max_tokens: int, retries: int) -> GenerationResult:
        """The sample's result. Reasoning goes back in ``<think>`` tags, as for every
        backend, so the runner splits it the same way. ITL is per output token when
        the usage gives the count, else per text-bearing chunk."""
        prompt = _count(self.usage, "prompt_tokens") or None  # a prompt has tokens
        completion = _count(self.usage, "completion_tokens")
        thought, text = "".join(self.reasoning), "".join(self.content)
        if completion == 0 and (thought or text):
            completion = None  # a placeholder 0 beside a reply is unknown, not a count
        finish = self.finish
        if finish == "stop" and completion is not None and completion >= max_tokens:
            finish = "length"  # any-llm reports every Anthropic stream as "stop"
        steps = (completion - 1) if completion else (self.chunks - 1)
        itl = None
        if self.first is not None and self.last is not None and steps > 0:
            itl = (self.last - self.first) / steps
        return GenerationResult(
            index=index,
            text=f"<think>{thought}</think>{text}" if thought else text,
            prompt_tokens=prompt,
            completion_tokens=completion,
            latency_s=None if self.end is None else self.end - self.start,
            ttft_s=None if self.first is None else self.first - self.start,
            itl_s=itl,
            finish_reason=finish,
            token_source="usage" if prompt is not None or completion is not None else None,
            retries=retries,
        )


def _body_detail(body: Any) -> str | None:
    """``type: message`` of an error body (Anthropic nests it under ``error``)."""
    error = body.get("error", body) if isinstance(body, dict) else None
    if not isinstance(error, dict) or not error.get("message"):
        return None
    kind = error.get("type")
    return f"{kind}: {error['message']}" if kind else str(error["message"])


def _count(usage: Any, name: str) -> int | None:
    value = getattr(usage, name, None)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value
