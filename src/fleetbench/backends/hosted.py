"""``hosted``: hosted APIs that are not OpenAI-compatible (Anthropic, AWS Bedrock, and
the other providers of any-llm) through the ``any-llm-sdk`` adapter (extra ``[hosted]``).

any-llm drives each provider's official SDK and hands back OpenAI-shaped chunks with
the provider's ``usage``, so token counts (and so cost) come from the provider.
Timings are client side, of the final attempt: TTFT is the first text or reasoning
chunk, latency the whole reply, ITL the decode time per output token.

This backend builds the request keywords, sends them through the SDK and classifies
its exceptions (``hosted_wire.classify``); the request engine (``engine``) runs the
lanes, the retries and the whole-attempt timeout. Retries are the engine's, not the
SDK's (switched off where it allows), so that each is counted and bounded: rate
limits, overload (429, 5xx, Anthropic's 529 and mid-stream ``overloaded_error``),
timeouts and dropped connections are retried with backoff that honours
``Retry-After``; anything else fails the sample at once.

The key is read from the environment at load time and handed only to the SDK client:
never to options, LoadInfo, logs or error messages (errors are scrubbed of it).
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import logging
import os
import time
from collections.abc import Coroutine, Iterable, Iterator
from typing import Any, ClassVar

from pydantic import BaseModel

from fleetbench.backends.base import (
    BackendContext,
    EnergyScope,
    GenerationRequest,
    GenerationResult,
    LoadInfo,
    server_scope,
)
from fleetbench.backends.engine import RequestEngine, RequestFailure, redact_url
from fleetbench.backends.hosted_wire import (
    BEDROCK,
    HostedOptions,
    Reply,
    classify,
    key_variable,
    preflight_problem,
    provider_class,
    request_kwargs,
)
from fleetbench.catalog.spec import ModelSpec
from fleetbench.errors import BackendError, BackendUnavailable
from fleetbench.urlauth import userinfo_secrets, with_userinfo

log = logging.getLogger("fleetbench.backends.hosted")

NEEDS_EXTRA = "hosted backend needs the [hosted] extra: pip install 'fleetbench[hosted]'"
# Bedrock's credentials, scrubbed from error texts like an API key.
_AWS_SECRETS = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_BEARER_TOKEN_BEDROCK")


# -- the backend -----------------------------------------------------------------------


class HostedBackend:
    name: ClassVar[str] = "hosted"
    Options: ClassVar[type[BaseModel]] = HostedOptions

    def __init__(self, options: HostedOptions, context: BackendContext) -> None:
        self.options = options
        self.context = context
        self._provider: Any = None
        self._engine = RequestEngine(options, self, attempt_timeout_s=options.timeout_s, log=log)

    def __repr__(self) -> str:
        return f"HostedBackend(provider={self.options.provider!r})"

    @staticmethod
    def unavailable_reason(options: HostedOptions, model: ModelSpec) -> str | None:
        if importlib.util.find_spec("any_llm") is None:
            return NEEDS_EXTRA
        try:
            cls = provider_class(options.provider)
        except Exception:
            return None  # unknown provider: preflight_error says so
        if getattr(cls, "MISSING_PACKAGES_ERROR", None) is not None:
            return (
                f"hosted provider {options.provider} needs its SDK: "
                f"pip install 'any-llm-sdk[{options.provider}]'"
            )
        return None

    @staticmethod
    def preflight_error(options: HostedOptions, model: ModelSpec) -> str | None:
        if importlib.util.find_spec("any_llm") is None:
            return None  # skipped as unavailable
        try:
            provider_class(options.provider)
        except Exception:
            from any_llm import AnyLLM

            valid = ", ".join(sorted(AnyLLM.get_supported_providers()))
            return f"unknown hosted provider {options.provider!r}; valid: {valid}"
        return preflight_problem(options, os.environ)

    def load(self) -> LoadInfo:
        try:
            from any_llm import AnyLLM
        except ImportError:
            raise BackendUnavailable(NEEDS_EXTRA) from None
        o = self.options
        problem = self.preflight_error(o, self.context.model)
        if problem:
            raise BackendError(problem)
        name = key_variable(o)
        key = os.environ.get(name, "") if name else ""
        api_base = with_userinfo(o.api_base) if o.api_base else None
        aws = (os.environ.get(v, "") for v in _AWS_SECRETS) if o.provider == BEDROCK else ()
        secrets = (key, *userinfo_secrets(api_base or ""), *aws)
        self._engine.secrets = tuple(s for s in secrets if s)
        kwargs: dict[str, Any] = {"unified_exceptions": True, "max_retries": 0}
        if o.provider == BEDROCK:
            kwargs.update(
                {k: v for k, v in (("region_name", o.region), ("profile_name", o.aws_profile)) if v}
            )
            kwargs.pop("max_retries")  # boto3 retries are configured apart; ours still apply
        start = time.perf_counter()
        loop = self._engine.start()

        async def create() -> Any:  # on the loop, so the SDK's client binds to it
            return AnyLLM.create(o.provider, api_key=key or None, api_base=api_base, **kwargs)

        try:
            self._provider = loop.run(create(), timeout=60)
        except Exception as exc:
            self._engine.stop()
            message = self._engine.clean(f"cannot set up {o.provider}: {exc}")
            raise BackendError(message) from None
        return LoadInfo(
            load_time_s=time.perf_counter() - start,
            model_path=f"{o.provider}:{self._model()}",
            details={
                "provider": o.provider,
                "model": self._model(),
                "api_base": redact_url(o.api_base) if o.api_base else None,
                "stream": o.stream,
                "concurrency": o.lanes(),
                "adapter": f"any-llm-sdk {_version('any-llm-sdk')}",
            },
        )

    def _model(self) -> str:
        model = self.options.model or self.context.model.id
        if not model:
            raise BackendError("hosted needs a model: set options.model or the entry's id")
        return model

    # -- generate: build, send, classify (the engine does the rest) -----------------

    def generate(self, requests: Iterable[GenerationRequest]) -> Iterator[GenerationResult]:
        return self._engine.generate(requests)

    def prepare(self, request: GenerationRequest) -> dict[str, Any]:
        kwargs, ignored = request_kwargs(
            self.options.provider,
            request.settings,
            self.context.model.reasoning_effort,
            self.options.extra,
        )
        for name in ignored:
            self._engine.warn_once(
                name, "%s is not sent to %s (unsupported)", name, self.options.provider
            )
        if request.chat_template_kwargs:
            self._engine.warn_once("ctk", "chat_template_kwargs are not sent to hosted APIs")
        return kwargs

    async def send(self, request: GenerationRequest, kwargs: dict[str, Any]) -> GenerationResult:
        o = self.options
        messages = [m.model_dump() for m in request.messages]
        reply = Reply(start=time.perf_counter())
        answer = await self._provider.acompletion(
            model=self._model(),
            messages=messages,
            stream=o.stream,
            timeout=o.timeout_s,
            **kwargs,
        )
        if not o.stream:
            reply.feed_completion(answer, time.perf_counter())
        else:
            async for chunk in answer:
                reply.feed_chunk(chunk, time.perf_counter())
            reply.end = time.perf_counter()
            if reply.finish is None:
                raise RequestFailure(
                    "incomplete stream", "ended without a finish reason", retryable=True
                )
        return reply.result(request.index, request.settings.max_tokens, retries=0)

    def classify(self, exc: Exception) -> RequestFailure:
        return classify(exc)

    def follow_up(
        self, request: GenerationRequest, result: GenerationResult
    ) -> Coroutine[Any, Any, None] | None:
        return None  # counts come with the provider's usage

    def energy_scope(self) -> EnergyScope:
        """The provider's API (or, with a loopback ``api_base``, a local stand-in)."""
        return server_scope(self.options.api_base)

    def close(self) -> None:
        provider, self._provider = self._provider, None
        client_close = getattr(getattr(provider, "client", None), "close", None)
        closing = client_close() if asyncio.iscoroutinefunction(client_close) else None
        self._engine.stop(closing, timeout=5)


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"
