"""``openai``: any OpenAI-compatible chat-completions server, over HTTP.

Requests run on one ``httpx.AsyncClient`` inside an event loop in a helper thread, so
``generate()`` stays a plain iterator for the runner while exactly ``concurrency``
requests are in flight; results are yielded as they complete. Timings are client
side: TTFT is the first content or reasoning chunk, ITL the mean gap between later
chunks, latency the whole reply, all of the final attempt (retries are counted
apart, so backoff waits never pollute the speed figures).

The API key is read from the environment variable the options name, at load time,
and lives only in the client's Authorization header: never in options, LoadInfo,
logs, reprs or error messages (server text is scrubbed of it before it is recorded).
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import random
import time
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel

from fleetbench.backends._loopthread import LoopThread, shutdown
from fleetbench.backends.base import (
    MANAGED_SERVER,
    BackendContext,
    EnergyScope,
    GenerationRequest,
    GenerationResult,
    LoadInfo,
    server_scope,
)
from fleetbench.backends.managed import ManagedServer
from fleetbench.backends.openai_options import OpenAIOptions, key_problem
from fleetbench.backends.openai_tokens import EndpointMissing, GgufTokenizer, ServerTokenizer
from fleetbench.backends.openai_wire import (
    BodySpec,
    Reply,
    build_body,
    error_detail,
    redact_url,
    scrub,
    sends_template_kwargs,
)
from fleetbench.backends.presets import (
    GENERIC,
    PRESETS,
    Preset,
)
from fleetbench.backends.retry import (
    RequestFailure,
    RetryPolicy,
    is_retryable_status,
    retry_after_from_headers,
)
from fleetbench.catalog.embedded import EMBEDDED_MODEL_ID, embedded_model_path
from fleetbench.catalog.spec import ModelSpec
from fleetbench.errors import BackendError

__all__ = ["OpenAIBackend", "OpenAIOptions"]

log = logging.getLogger("fleetbench.backends.openai")


class OpenAIBackend:
    name: ClassVar[str] = "openai"
    Options: ClassVar[type[BaseModel]] = OpenAIOptions

    def __init__(self, options: OpenAIOptions, context: BackendContext) -> None:
        self.options = options
        self.context = context
        self.preset: Preset = PRESETS.get(options.preset or "", GENERIC)
        self.model = options.model or context.model.id or context.model.name
        self.base_url = options.base_url or ""
        self._secrets: tuple[str, ...] = ()
        self._loop: LoopThread | None = None
        self._client: httpx.AsyncClient | None = None
        self._server: ManagedServer | None = None
        self._local: GgufTokenizer | None = None
        self._remote: ServerTokenizer | None = None
        self._policy = RetryPolicy(
            max_retries=options.max_retries,
            backoff_base_s=options.backoff_base_s,
            backoff_max_s=options.backoff_max_s,
            retry_after_max_s=options.retry_after_max_s,
        )
        self._rng = random.Random()
        self._warned: set[str] = set()
        self._spec: BodySpec | None = None  # built on the first request, then reused

    def __repr__(self) -> str:
        return f"OpenAIBackend(model={self.model!r}, base_url={redact_url(self.base_url)!r})"

    @staticmethod
    def preflight_error(options: OpenAIOptions, model: ModelSpec) -> str | None:
        """A missing API key stops the batch before anything runs."""
        return key_problem(options, model)

    # -- load / close ---------------------------------------------------------------

    def load(self) -> LoadInfo:
        start = time.perf_counter()
        httpx_log = logging.getLogger("httpx")
        if httpx_log.level == logging.NOTSET:  # one INFO line per request drowns run.log
            httpx_log.setLevel(logging.WARNING)
        problem = key_problem(self.options, self.context.model)
        if problem is not None:
            raise BackendError(problem)
        key = os.environ.get(self.options.api_key_env, "") if self.options.api_key_env else ""
        self._secrets = (key,) if key else ()
        startup_s: float | None = None
        try:
            if self.options.server is not None:
                self._server = ManagedServer(
                    self.options.server, self.context.run_dir, model_name=self.model
                )
                self.base_url = self._server.start()
                startup_s = self._server.startup_s
            self._loop = LoopThread()
            self._client = self._loop.run(self._make_client(key))
            served = self._loop.run(self._check_server())
            self._tokenizers()
        except BaseException:
            self.close()
            raise
        if served and self.model not in served:
            log.warning("model %r is not in the server's list %s", self.model, served[:10])
        return LoadInfo(
            load_time_s=time.perf_counter() - start,
            startup_s=startup_s,
            details={
                "base_url": redact_url(self.base_url),
                "model": self.model,
                "preset": self.options.preset,
                "stream": self.options.stream,
                "concurrency": self.options.concurrency,
                **({"tokenizer": str(self._local.path)} if self._local else {}),
            },
        )

    async def _make_client(self, key: str) -> httpx.AsyncClient:
        o = self.options
        pool = o.concurrency + 2  # + tokenize calls while replies stream
        headers = {"User-Agent": "fleetbench"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return httpx.AsyncClient(
            base_url=self.base_url.rstrip("/") + "/",
            headers=headers,
            timeout=httpx.Timeout(
                connect=o.connect_timeout_s,
                read=o.read_timeout_s,
                write=o.read_timeout_s,
                pool=o.request_timeout_s,
            ),
            limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool),
        )

    async def _check_server(self) -> list[str]:
        """The server must answer GET /models; returns the model ids it lists."""
        assert self._client is not None
        url = redact_url(self.base_url.rstrip("/") + "/models")
        o = self.options
        quick = httpx.Timeout(o.connect_timeout_s, read=min(o.read_timeout_s, 30.0))
        try:
            response = await self._client.get("models", timeout=quick)
        except httpx.HTTPError as exc:
            raise BackendError(
                f"no server answers at {url}: {type(exc).__name__}: "
                f"{self._scrub(str(exc)) or 'no detail'}; start it or fix options.base_url"
            ) from None
        if response.status_code in (401, 403):
            whose = (
                f"the API key from ${o.api_key_env}"
                if o.api_key_env
                else "the request: it needs an API key (set options.api_key_env)"
            )
            raise BackendError(
                f"{url} refused {whose} (HTTP {response.status_code}): "
                f"{self._scrub(error_detail(response.text))}"
            )
        if response.status_code != 200:
            log.warning("GET %s returned HTTP %d", url, response.status_code)
            return []
        try:
            return [str(m["id"]) for m in response.json().get("data", [])]
        except (ValueError, TypeError, KeyError, AttributeError):
            return []

    def _tokenizers(self) -> None:
        if self.preset.tokenize is not None:
            self._remote = ServerTokenizer(self.preset.tokenize, self.base_url, self.model)
        path = self.options.tokenizer_path
        if path is None and self.context.model.id == EMBEDDED_MODEL_ID:
            try:
                path = embedded_model_path()
            except BackendError:
                path = None
        if path is not None:
            self._local = GgufTokenizer(path)

    def close(self) -> None:
        loop, client = self._loop, self._client
        self._loop = self._client = None
        if loop is not None:
            try:
                loop.run(shutdown(client), timeout=10)
            except Exception as exc:  # closing must not hide the run's own error
                log.warning("closing the HTTP client: %s", type(exc).__name__)
            loop.stop()
        if self._local is not None:
            self._local.close()
            self._local = None
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def energy_scope(self) -> EnergyScope:
        """A server this backend started is metered with the worker's process tree; a
        local one someone else started is not (only the client is); others are remote."""
        return MANAGED_SERVER if self._server is not None else server_scope(self.base_url)

    # -- generate -------------------------------------------------------------------

    def generate(self, requests: Iterable[GenerationRequest]) -> Iterator[GenerationResult]:
        if self._loop is None or self._client is None:
            raise BackendError("generate() called before load()")
        out: queue.SimpleQueue[GenerationResult | BaseException | None] = queue.SimpleQueue()
        future = self._loop.submit(self._run_all(iter(requests), out))
        try:
            while (item := out.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            future.cancel()  # a consumer that stops early stops the requests in flight

    async def _run_all(
        self,
        requests: Iterator[GenerationRequest],
        out: queue.SimpleQueue[GenerationResult | BaseException | None],
    ) -> None:
        async def lane() -> None:
            for request in requests:  # lanes share the iterator: each takes the next one
                result = await self._one_safe(request)
                if result.ok and result.token_source is None and self._can_count():
                    # Count off the lane: the next request goes out now, and the count
                    # calls overlap with its generation instead of delaying it.
                    group.create_task(self._count_and_put(request, result, out))
                else:
                    out.put(result)

        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(self.options.concurrency):
                    group.create_task(lane())
        except* Exception as exc:  # e.g. the request iterable itself failed
            out.put(exc.exceptions[0])
        finally:
            out.put(None)

    async def _one_safe(self, request: GenerationRequest) -> GenerationResult:
        try:
            return await self._one(request)
        except Exception as exc:  # never lose a sample to a bug: record it
            log.exception("request %d", request.index)
            detail = self._scrub(f"{type(exc).__name__}: {exc}")
            return GenerationResult(index=request.index, error=f"internal error: {detail}")

    def _body_spec(self) -> BodySpec:
        o = self.options
        # OpenAIOptions._fill_from_preset has filled both from the preset already.
        assert o.sampling_extras is not None and o.reasoning_param is not None
        effort = self.context.model.reasoning_effort
        spec = BodySpec(
            model=self.model,
            preset=self.preset,
            extras=o.sampling_extras,
            reasoning_param=o.reasoning_param,
            reasoning_effort=effort,
            stream=o.stream,
            extra_body=o.extra_body,
        )
        if effort is not None and spec.reasoning_param == "none":
            self._warn_once(
                "effort", "reasoning_effort %r is not sent (reasoning_param: none)", effort
            )
        return spec

    async def _one(self, request: GenerationRequest) -> GenerationResult:
        if self._spec is None:  # constant for the run; its warning comes once, here
            self._spec = self._body_spec()
        spec = self._spec
        if request.chat_template_kwargs and not sends_template_kwargs(spec):
            self._warn_once("kwargs", "chat_template_kwargs are not sent to this server")
        body = build_body(request, spec)
        retries = 0
        while True:
            failure = await self._attempt_or_failure(body)
            if isinstance(failure, Reply):
                return self._result(request, failure, retries)
            if not failure.retryable or retries >= self._policy.max_retries:
                return GenerationResult(
                    index=request.index,
                    error=self._scrub(failure.describe(retries + 1)),
                    retries=retries,
                    retryable=failure.retryable,
                )
            delay = self._policy.delay(retries, failure.retry_after_s, self._rng)
            log.info(
                "request %d: %s; retry %d in %.2f s",
                request.index,
                self._scrub(failure.describe(retries + 1)),
                retries + 1,
                delay,
            )
            await asyncio.sleep(delay)
            retries += 1

    async def _attempt_or_failure(self, body: dict[str, Any]) -> Reply | RequestFailure:
        reply = Reply(start=time.perf_counter())
        try:
            async with asyncio.timeout(self.options.request_timeout_s):
                if body["stream"]:
                    await self._stream(body, reply)
                else:
                    await self._plain(body, reply)
            return reply
        except RequestFailure as failure:
            return failure
        except TimeoutError:
            limit = self.options.request_timeout_s
            return RequestFailure("timeout", f"attempt exceeded {limit:g} s", retryable=True)
        except httpx.TimeoutException as exc:
            return RequestFailure("timeout", _timeout_detail(exc, self.options), retryable=True)
        except httpx.TransportError as exc:
            kind = "connection dropped mid-stream" if reply.began else "connection error"
            retryable = not isinstance(exc, httpx.UnsupportedProtocol)
            detail = self._scrub(f"{type(exc).__name__}: {exc}")
            return RequestFailure(kind, detail, retryable=retryable)
        except (ValueError, httpx.DecodingError) as exc:  # a truncated or garbled body
            return RequestFailure("bad reply", f"{type(exc).__name__}: {exc}", retryable=True)

    async def _stream(self, body: dict[str, Any], reply: Reply) -> None:
        assert self._client is not None
        async with self._client.stream("POST", "chat/completions", json=body) as response:
            if response.status_code != 200:
                await response.aread()
                raise self._http_failure(response)
            reply.began = True
            async for line in response.aiter_lines():
                reply.feed_line(line, time.perf_counter())
        reply.end = time.perf_counter()
        if not reply.done and reply.finish_reason is None:
            raise RequestFailure(
                "connection dropped mid-stream",
                "the stream ended before [DONE]",
                retryable=True,
            )
        if reply.finish_reason is None:
            # llama-cpp-python's server cuts concurrent streams short unless started
            # with --interrupt_requests false; other servers always send a reason.
            raise RequestFailure(
                "incomplete stream",
                "[DONE] without a finish_reason (llama_cpp.server needs "
                "--interrupt_requests false for concurrent requests)",
                retryable=True,
            )

    async def _plain(self, body: dict[str, Any], reply: Reply) -> None:
        assert self._client is not None
        response = await self._client.post("chat/completions", json=body)
        if response.status_code != 200:
            raise self._http_failure(response)
        reply.feed_json(response.json())
        reply.end = time.perf_counter()

    def _http_failure(self, response: httpx.Response) -> RequestFailure:
        status = response.status_code
        retryable = is_retryable_status(status)
        return RequestFailure(
            f"HTTP {status}",
            self._scrub(error_detail(response.text)),
            retryable=retryable,
            retry_after_s=retry_after_from_headers(response.headers) if retryable else None,
        )

    # -- results and token counts ---------------------------------------------------

    def _result(self, request: GenerationRequest, reply: Reply, retries: int) -> GenerationResult:
        # Wall-clock send/receive times: counting tokens afterwards must not stretch the
        # run's generation window (throughput = tokens ÷ first send -> last reply).
        wall = time.time() - time.perf_counter()
        result = GenerationResult(
            index=request.index,
            text=reply.text,
            sent_at=reply.start + wall,
            received_at=None if reply.end is None else reply.end + wall,
            latency_s=reply.latency_s,
            ttft_s=reply.ttft_s,  # None unless streamed: no chunks, no first token
            itl_s=reply.itl_s,
            finish_reason=reply.finish_reason,
            retries=retries,
        )
        usage = reply.usage
        if usage is not None:
            result.prompt_tokens = _int_or_none(usage.get("prompt_tokens"))
            result.completion_tokens = _int_or_none(usage.get("completion_tokens"))
            result.token_source = "usage"
        return result

    def _can_count(self) -> bool:
        return self._remote is not None or self._local is not None

    async def _count_and_put(
        self,
        request: GenerationRequest,
        result: GenerationResult,
        out: queue.SimpleQueue[GenerationResult | BaseException | None],
    ) -> None:
        try:
            await self._count(request, result)
        except Exception as exc:  # a count is a nicety: never lose the sample over it
            self._warn_once("count", f"token counting failed: {type(exc).__name__}")
        out.put(result)

    async def _count(self, request: GenerationRequest, result: GenerationResult) -> None:
        prompt_text = None
        if self._local is not None:
            prompt_text = self._local.render(request.messages, request.chat_template_kwargs)
        if self._remote is not None and self._client is not None:
            try:
                result.completion_tokens = await self._remote.count(self._client, result.text)
                if prompt_text is not None:
                    result.prompt_tokens = await self._remote.count(self._client, prompt_text)
                result.token_source = "tokenize"
                return
            except EndpointMissing as exc:
                log.warning("no tokenize endpoint (%s); counting locally if possible", exc)
                self._remote = None
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                self._warn_once("tokenize", f"tokenize endpoint failed: {type(exc).__name__}")
        if self._local is not None:
            result.completion_tokens = self._local.count(result.text)
            if prompt_text is not None:
                result.prompt_tokens = self._local.count(prompt_text)
            result.token_source = "tokenizer"

    @property
    def count_tokens(self) -> Any:
        """Tokens of a text in the model's tokenizer, for the runner's reasoning-token
        counts: a callable when a local tokenizer or tokenize endpoint exists, else None
        (the runner then leaves reasoning tokens unknown)."""
        local, remote, loop, client = self._local, self._remote, self._loop, self._client
        if local is not None:
            return local.count
        if remote is not None and loop is not None and client is not None:

            def count(text: str) -> int:
                return loop.run(remote.count(client, text), timeout=self.options.read_timeout_s)

            return count
        return None

    # -- helpers --------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        return scrub(text, self._secrets)

    def _warn_once(self, key: str, message: str, *args: Any) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message, *args)


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) else None


def _timeout_detail(exc: httpx.TimeoutException, o: OpenAIOptions) -> str:
    if isinstance(exc, httpx.ConnectTimeout):
        return f"no connection within {o.connect_timeout_s:g} s"
    if isinstance(exc, httpx.ReadTimeout):
        return f"no data from the server for {o.read_timeout_s:g} s"
    if isinstance(exc, httpx.PoolTimeout):
        return "no free connection in the pool"
    return f"{type(exc).__name__}"
