"""``hosted``: hosted APIs that are not OpenAI-compatible (Anthropic, AWS Bedrock, and
the other providers of any-llm) through the ``any-llm-sdk`` adapter (extra ``[hosted]``).

any-llm drives each provider's official SDK and hands back OpenAI-shaped chunks with
the provider's ``usage``, so token counts (and so cost) come from the provider.
Timings are client side, of the final attempt: TTFT is the first text or reasoning
chunk, latency the whole reply, ITL the decode time per output token.

Retries are ours, not the SDK's (switched off where it allows), so that each is
counted and bounded: rate limits, overload (429, 5xx, Anthropic's 529 and mid-stream
``overloaded_error``), timeouts and dropped connections are retried with backoff that
honours ``Retry-After``; anything else fails the sample at once.

The key is read from the environment at load time and handed only to the SDK client:
never to options, LoadInfo, logs or error messages (errors are scrubbed of it).
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import logging
import os
import queue
import random
import time
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

from pydantic import BaseModel

from fleetbench.backends._loopthread import LoopThread
from fleetbench.backends.base import (
    BackendContext,
    EnergyScope,
    GenerationRequest,
    GenerationResult,
    LoadInfo,
    server_scope,
)
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
from fleetbench.backends.openai_wire import redact_url, scrub
from fleetbench.backends.retry import RequestFailure, RetryPolicy
from fleetbench.catalog.spec import ModelSpec
from fleetbench.errors import BackendError, BackendUnavailable

log = logging.getLogger("fleetbench.backends.hosted")

NEEDS_EXTRA = "hosted backend needs the [hosted] extra: pip install 'fleetbench[hosted]'"


# -- the backend -----------------------------------------------------------------------


class HostedBackend:
    name: ClassVar[str] = "hosted"
    Options: ClassVar[type[BaseModel]] = HostedOptions

    def __init__(self, options: HostedOptions, context: BackendContext) -> None:
        self.options = options
        self.context = context
        self._provider: Any = None
        self._secret = ""  # only to scrub error text
        self._loop: LoopThread | None = None
        self._warned: set[str] = set()
        self._rng = random.Random()
        self._policy = RetryPolicy(
            max_retries=options.max_retries,
            backoff_base_s=options.backoff_base_s,
            backoff_max_s=options.backoff_max_s,
            retry_after_max_s=options.retry_after_max_s,
        )

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
        self._secret = os.environ.get(name, "") if name else ""
        kwargs: dict[str, Any] = {"unified_exceptions": True, "max_retries": 0}
        if o.provider == BEDROCK:
            kwargs.update(
                {k: v for k, v in (("region_name", o.region), ("profile_name", o.aws_profile)) if v}
            )
            kwargs.pop("max_retries")  # boto3 retries are configured apart; ours still apply
        start = time.perf_counter()
        self._loop = LoopThread()

        async def create() -> Any:  # on the loop, so the SDK's client binds to it
            return AnyLLM.create(
                o.provider, api_key=self._secret or None, api_base=o.api_base, **kwargs
            )

        try:
            self._provider = self._loop.run(create(), timeout=60)
        except Exception as exc:
            raise BackendError(self._scrub(f"cannot set up {o.provider}: {exc}")) from None
        return LoadInfo(
            load_time_s=time.perf_counter() - start,
            model_path=f"{o.provider}:{self._model()}",
            details={
                "provider": o.provider,
                "model": self._model(),
                "api_base": redact_url(o.api_base) if o.api_base else None,
                "stream": o.stream,
                "concurrency": o.concurrency,
                "adapter": f"any-llm-sdk {_version('any-llm-sdk')}",
            },
        )

    def _model(self) -> str:
        model = self.options.model or self.context.model.id
        if not model:
            raise BackendError("hosted needs a model: set options.model or the entry's id")
        return model

    def generate(self, requests: Iterable[GenerationRequest]) -> Iterator[GenerationResult]:
        if self._provider is None:
            raise BackendError("generate() called before load()")
        todo = list(requests)
        out: queue.SimpleQueue[GenerationResult | None] = queue.SimpleQueue()
        assert self._loop is not None
        future = self._loop.submit(self._run_all(todo, out))
        try:
            while (item := out.get()) is not None:
                yield item
            future.result()  # re-raise a bug in the loop itself
        finally:
            future.cancel()

    async def _run_all(
        self, todo: list[GenerationRequest], out: queue.SimpleQueue[GenerationResult | None]
    ) -> None:
        pending = iter(todo)

        async def lane() -> None:
            for request in pending:  # one shared iterator: each request is taken once
                out.put(await self._one(request))

        try:
            await asyncio.gather(*(lane() for _ in range(min(self.options.concurrency, len(todo)))))
        finally:
            out.put(None)

    async def _one(self, request: GenerationRequest) -> GenerationResult:
        kwargs, ignored = request_kwargs(
            self.options.provider,
            request.settings,
            self.context.model.reasoning_effort,
            self.options.extra,
        )
        for name in ignored:
            self._warn_once(name, f"{name} is not sent to {self.options.provider} (unsupported)")
        if request.chat_template_kwargs:
            self._warn_once("ctk", "chat_template_kwargs are not sent to hosted APIs")
        retries = 0
        while True:
            try:
                reply = await self._attempt(request, kwargs)
                return reply.result(request.index, request.settings.max_tokens, retries)
            except Exception as exc:
                failure = classify(exc)
            if not failure.retryable or retries >= self._policy.max_retries:
                return GenerationResult(
                    index=request.index,
                    retries=retries,
                    error=self._scrub(failure.describe(retries + 1)),
                    retryable=failure.retryable,
                )
            log.info("sample %d: %s; retrying", request.index, self._scrub(str(failure)))
            await asyncio.sleep(self._policy.delay(retries, failure.retry_after_s, self._rng))
            retries += 1

    async def _attempt(self, request: GenerationRequest, kwargs: dict[str, Any]) -> Reply:
        o = self.options
        messages = [m.model_dump() for m in request.messages]
        reply = Reply(start=time.perf_counter())
        async with asyncio.timeout(o.timeout_s):
            answer = await self._provider.acompletion(
                model=self._model(),
                messages=messages,
                stream=o.stream,
                timeout=o.timeout_s,
                **kwargs,
            )
            if not o.stream:
                reply.feed_completion(answer, time.perf_counter())
                return reply
            async for chunk in answer:
                reply.feed_chunk(chunk, time.perf_counter())
        reply.end = time.perf_counter()
        if reply.finish is None:
            raise RequestFailure(
                "incomplete stream", "ended without a finish reason", retryable=True
            )
        return reply

    def _scrub(self, text: str) -> str:
        return scrub(text, (self._secret,))

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message)

    def energy_scope(self) -> EnergyScope:
        """The provider's API (or, with a loopback ``api_base``, a local stand-in)."""
        return server_scope(self.options.api_base)

    def close(self) -> None:
        loop, provider = self._loop, self._provider
        self._provider = None
        if loop is None:
            return
        client_close = getattr(getattr(provider, "client", None), "close", None)
        if client_close is not None and asyncio.iscoroutinefunction(client_close):
            try:
                loop.run(client_close(), timeout=5)
            except Exception as exc:  # closing must never fail a run
                log.debug("closing the client: %s", type(exc).__name__)
        loop.stop(timeout=5)
        self._loop = None


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"
