"""``openai``: any OpenAI-compatible chat-completions server, over HTTP.

This backend builds a request body, sends it on one ``httpx.AsyncClient`` and
classifies what went wrong; the request engine (``engine.RequestEngine``) runs the
lanes that keep exactly ``concurrency`` requests in flight, the retries and the
whole-attempt timeout. Timings are client side: TTFT is the first content or
reasoning chunk, ITL the mean gap between later chunks, latency the whole reply, all
of the final attempt (retries are counted apart, so backoff waits never pollute the
speed figures).

Token counts come from the reply's ``usage``; without it, from the model's GGUF
tokenizer client side when fleetbench knows the file (counted off the lane, while the
next request is out), else from the server's tokenize endpoint after the batch's last
reply (``openai_tokens``: never while generation is being timed); with neither they
stay unknown (None, never 0) and the run log says once how to get them.

The API key is read from the environment variable the options name, at load time,
and lives only in the client's Authorization header: never in options, LoadInfo,
logs, reprs or error messages (server text is scrubbed of it before it is recorded).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel

from fleetbench.backends.base import (
    MANAGED_SERVER,
    BackendContext,
    EnergyScope,
    GenerationRequest,
    GenerationResult,
    LoadInfo,
    ToolSupport,
    server_scope,
)
from fleetbench.backends.engine import (
    AfterWindow,
    FollowUp,
    RequestEngine,
    RequestFailure,
    is_retryable_status,
    redact_url,
    retry_after_from_headers,
)
from fleetbench.backends.managed import ManagedServer
from fleetbench.backends.ollama_native import (
    CHAT_PATH,
    TAGS_PATH,
    NativeReply,
    build_native_body,
    native_root,
)
from fleetbench.backends.openai_options import OpenAIOptions, key_problem
from fleetbench.backends.openai_tokens import (
    EndpointMissing,
    GgufTokenizer,
    ServerTokenizer,
    gguf_in_command,
)
from fleetbench.backends.openai_wire import (
    BodySpec,
    Reply,
    build_body,
    error_detail,
    sends_template_kwargs,
)
from fleetbench.backends.presets import GENERIC, PRESETS, Preset
from fleetbench.catalog.embedded import EMBEDDED_MODEL_ID, embedded_model_path
from fleetbench.catalog.spec import ModelSpec
from fleetbench.errors import BackendError
from fleetbench.urlauth import userinfo_secrets, with_userinfo

__all__ = ["OpenAIBackend", "OpenAIOptions"]

log = logging.getLogger("fleetbench.backends.openai")

NO_COUNTS = (
    "the server's replies carry no token usage and no tokenizer is configured: prompt "
    "and completion tokens (so tokens/s, tokens per joule and cost) stay unknown for this "
    "run; set options.tokenizer_path to the model's GGUF, or use the preset of a server "
    "with a tokenize endpoint (llamacpp-server, vllm, tgi)"
)
AFTER_WINDOW = (
    "counting tokens with the server's tokenize endpoint after each round's last reply "
    "(asked while replies stream, llama_cpp.server would serialise it with generation), "
    "so samples are recorded then; give the model's GGUF as tokenizer_path to "
    "count client side as replies arrive"
)


class OpenAIBackend:
    name: ClassVar[str] = "openai"
    Options: ClassVar[type[BaseModel]] = OpenAIOptions

    def __init__(self, options: OpenAIOptions, context: BackendContext) -> None:
        self.options = options
        self.context = context
        self.preset: Preset = PRESETS.get(options.preset or "", GENERIC)
        # Ollama's own API (ollama_native): same server, the server's timings recorded.
        self.native = options.api == "native"
        self.model = options.model or context.model.id or context.model.name
        self.base_url = options.base_url or ""  # user-info hidden until load()
        self._client: httpx.AsyncClient | None = None
        self._server: ManagedServer | None = None
        self._local: GgufTokenizer | None = None
        self._remote: ServerTokenizer | None = None
        self._spec: BodySpec | None = None  # built on the first request, then reused
        self._engine = RequestEngine(
            options, self, attempt_timeout_s=options.request_timeout_s, log=log
        )

    def __repr__(self) -> str:
        return f"OpenAIBackend(model={self.model!r}, base_url={redact_url(self.base_url)!r})"

    @staticmethod
    def preflight_error(options: OpenAIOptions, model: ModelSpec) -> str | None:
        """A missing API key stops the batch before anything runs."""
        return key_problem(options, model)

    # -- load / close ---------------------------------------------------------------

    def load(self) -> LoadInfo:
        start = time.perf_counter()
        problem = key_problem(self.options, self.context.model)
        if problem is not None:
            raise BackendError(problem)
        key = os.environ.get(self.options.api_key_env, "") if self.options.api_key_env else ""
        self.base_url = with_userinfo(self.base_url)
        self._engine.secrets = tuple(s for s in (key, *userinfo_secrets(self.base_url)) if s)
        startup_s: float | None = None
        try:
            if self.options.server is not None:
                self._server = ManagedServer(
                    self.options.server,
                    self.context.run_dir,
                    model_name=self.model,
                    secrets=self._engine.secrets,
                )
                self.base_url = self._server.start()
                startup_s = self._server.startup_s
            loop = self._engine.start()
            self._client = loop.run(self._make_client(key))
            served = loop.run(self._check_server())
            self._tokenizers()
        except BaseException:
            self.close()
            raise
        if served and self.model not in served:
            listed = self._engine.clean(str(served[:10]))  # ids from the server: outside text
            log.warning("model %r is not in the server's list %s", self.model, listed)
        return LoadInfo(
            load_time_s=time.perf_counter() - start,
            startup_s=startup_s,
            details={
                "base_url": redact_url(self.base_url),
                "model": self.model,
                "preset": self.options.preset,
                "stream": self.options.stream,
                "concurrency": self.options.lanes(),
                **({"tokenizer": str(self._local.path)} if self._local else {}),
            },
        )

    async def _make_client(self, key: str) -> httpx.AsyncClient:
        o = self.options
        pool = o.pool_size() + 2  # + the health check and tokenize calls
        headers = {"User-Agent": "fleetbench"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        root = native_root(self.base_url) if self.native else self.base_url
        return httpx.AsyncClient(
            base_url=root.rstrip("/") + "/",
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
        """The server must answer GET /models (native: /api/tags); returns the model ids
        it lists."""
        assert self._client is not None
        path = TAGS_PATH if self.native else "models"
        url = redact_url(str(self._client.base_url) + path)
        o = self.options
        quick = httpx.Timeout(o.connect_timeout_s, read=min(o.read_timeout_s, 30.0))
        try:
            response = await self._client.get(path, timeout=quick)
        except httpx.HTTPError as exc:
            raise BackendError(
                f"no server answers at {url}: {type(exc).__name__}: "
                f"{self._engine.clean(str(exc)) or 'no detail'}; start it or fix options.base_url"
            ) from None
        if response.status_code in (401, 403):
            whose = (
                f"the API key from ${o.api_key_env}"
                if o.api_key_env
                else "the request: it needs an API key (set options.api_key_env)"
            )
            raise BackendError(
                f"{url} refused {whose} (HTTP {response.status_code}): "
                f"{self._engine.clean(error_detail(response.text))}"
            )
        if response.status_code != 200:
            log.warning("GET %s returned HTTP %d", url, response.status_code)
            return []
        try:
            if self.native:
                return [str(m["name"]) for m in response.json().get("models", [])]
            return [str(m["id"]) for m in response.json().get("data", [])]
        except (ValueError, TypeError, KeyError, AttributeError):
            return []

    def _tokenizers(self) -> None:
        if self.preset.tokenize is not None:
            self._remote = ServerTokenizer(self.preset.tokenize, self.base_url, self.model)
        if self.options.tokenizer_path is not None:  # asked for: its problems are errors
            self._local = GgufTokenizer(self.options.tokenizer_path)
            return
        path = self._known_gguf()
        if path is not None:
            try:
                self._local = GgufTokenizer(path)
            except BackendError as exc:  # found, not asked for: fall back to the server
                log.warning("not counting tokens with %s: %s", path, exc)

    def _known_gguf(self) -> Path | None:
        """The GGUF fleetbench knows the server serves: the one it starts the managed
        server with, or the embedded model's (the catalogue id says so)."""
        if self._server is not None:
            found = gguf_in_command(self._server.argv())
            if found is not None:
                return found
        if self.context.model.id == EMBEDDED_MODEL_ID:
            try:
                return embedded_model_path()
            except BackendError:
                return None
        return None

    def close(self) -> None:
        client, self._client = self._client, None
        self._engine.stop(client.aclose() if client is not None else None)
        if self._local is not None:
            self._local.close()
            self._local = None
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def tool_calling(self) -> ToolSupport:
        """Tools are sent on /v1 (not Ollama's native API); known to work where the
        model entry's ``tool_calling`` or else the preset says so."""
        if self.native:
            return "unavailable"
        known = self.options.tool_calling
        known = self.preset.tool_calling if known is None else known
        return "supported" if known else "untested"

    def energy_scope(self) -> EnergyScope:
        """A server this backend started is metered with the worker's process tree; a
        local one someone else started is not (only the client is); others are remote."""
        return MANAGED_SERVER if self._server is not None else server_scope(self.base_url)

    # -- generate: build, send, classify (the engine does the rest) -----------------

    def generate(self, requests: Iterable[GenerationRequest]) -> Iterator[GenerationResult]:
        return self._engine.generate(requests)

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
            self._engine.warn_once(
                "effort", "reasoning_effort %r is not sent (reasoning_param: none)", effort
            )
        return spec

    def prepare(self, request: GenerationRequest) -> dict[str, Any]:
        if self._spec is None:  # constant for the run; its warning comes once, here
            self._spec = self._body_spec()
        if request.chat_template_kwargs and not sends_template_kwargs(self._spec):
            self._engine.warn_once("kwargs", "chat_template_kwargs are not sent to this server")
        if self.native:
            if request.settings.min_tokens:
                self._engine.warn_once("min_tokens", "Ollama's API has no min_tokens: not sent")
            return build_native_body(request, self._spec)
        return build_body(request, self._spec)

    async def send(self, request: GenerationRequest, body: dict[str, Any]) -> GenerationResult:
        if self.native:
            native = NativeReply(start=time.perf_counter())
            await self._native(body, native)
            return self._result(request, native)
        reply = Reply(start=time.perf_counter())
        if body["stream"]:
            await self._stream(body, reply)
        else:
            await self._plain(body, reply)
        return self._result(request, reply)

    def classify(self, exc: Exception) -> RequestFailure | None:
        if isinstance(exc, RequestFailure):
            return exc
        if isinstance(exc, httpx.TimeoutException):
            return RequestFailure("timeout", _timeout_detail(exc, self.options), retryable=True)
        if isinstance(exc, httpx.TransportError):
            retryable = not isinstance(exc, httpx.UnsupportedProtocol)
            detail = f"{type(exc).__name__}: {exc}"
            return RequestFailure("connection error", detail, retryable=retryable)
        if isinstance(exc, ValueError | httpx.DecodingError):  # a truncated or garbled body
            return RequestFailure("bad reply", f"{type(exc).__name__}: {exc}", retryable=True)
        return None  # a bug: the engine records it as an internal error

    async def _feed_lines(
        self, path: str, body: dict[str, Any], feed: Callable[[str, float], object], reply: Reply
    ) -> None:
        """POST a streamed request and hand each line to ``feed`` with its arrival
        time; a transport error after the headers is a retryable mid-stream drop."""
        assert self._client is not None
        sending = _stamp_send(reply)
        async with self._client.stream("POST", path, json=body, extensions=sending) as response:
            if response.status_code != 200:
                await response.aread()
                raise self._http_failure(response)
            try:
                async for line in response.aiter_lines():
                    feed(line, time.perf_counter())
            except httpx.TimeoutException:
                raise
            except httpx.TransportError as exc:
                detail = f"{type(exc).__name__}: {exc}"
                raise RequestFailure(
                    "connection dropped mid-stream", detail, retryable=True
                ) from None

    async def _stream(self, body: dict[str, Any], reply: Reply) -> None:
        await self._feed_lines("chat/completions", body, reply.feed_line, reply)
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

    async def _native(self, body: dict[str, Any], reply: NativeReply) -> None:
        """Ollama's /api/chat: NDJSON when streamed, one object when not; either way
        the final object (``done: true``) carries the server's timings."""
        assert self._client is not None
        if not body["stream"]:
            response = await self._client.post(CHAT_PATH, json=body, extensions=_stamp_send(reply))
            if response.status_code != 200:
                raise self._http_failure(response)
            reply.feed_native(response.json(), None)
        else:
            await self._feed_lines(CHAT_PATH, body, reply.feed_native_line, reply)
        reply.end = time.perf_counter()
        if not reply.done:
            raise RequestFailure(
                "connection dropped mid-stream",
                "the reply ended before its done object",
                retryable=True,
            )

    async def _plain(self, body: dict[str, Any], reply: Reply) -> None:
        assert self._client is not None
        response = await self._client.post(
            "chat/completions", json=body, extensions=_stamp_send(reply)
        )
        if response.status_code != 200:
            raise self._http_failure(response)
        reply.feed_json(response.json())
        reply.end = time.perf_counter()

    def _http_failure(self, response: httpx.Response) -> RequestFailure:
        status = response.status_code
        retryable = is_retryable_status(status)
        return RequestFailure(
            f"HTTP {status}",
            error_detail(response.text),  # whole: the engine scrubs, then cuts
            retryable=retryable,
            retry_after_s=retry_after_from_headers(response.headers) if retryable else None,
        )

    # -- results and token counts ---------------------------------------------------

    def _result(self, request: GenerationRequest, reply: Reply) -> GenerationResult:
        # Wall-clock send/receive times: counting tokens afterwards must not stretch the
        # run's generation window (throughput = tokens ÷ first send -> last reply).
        wall = time.time() - time.perf_counter()
        result = GenerationResult(
            index=request.index,
            text=reply.text,
            tool_calls=getattr(reply, "tool_calls", None),  # native replies have none
            sent_at=reply.start + wall,
            received_at=None if reply.end is None else reply.end + wall,
            latency_s=reply.latency_s,
            ttft_s=reply.ttft_s,  # None unless streamed: no chunks, no first token
            itl_s=reply.itl_s,
            finish_reason=reply.finish_reason,
            server_timing=getattr(reply, "server_timing", None),
        )
        usage = reply.usage
        if usage is not None:
            completion = _count_or_none(usage.get("completion_tokens"))
            if completion == 0 and result.text:
                completion = None  # a placeholder 0 beside a reply: not a count
            result.completion_tokens = completion
            if completion is not None:
                result.prompt_tokens = _count_or_none(usage.get("prompt_tokens")) or None
                result.token_source = "usage"
        return result

    def follow_up(self, request: GenerationRequest, result: GenerationResult) -> FollowUp | None:
        if result.token_source is not None:
            return None
        if self._local is not None:  # client side: costs the server nothing
            return self._count_local(request, result)
        if self._remote is not None:
            self._engine.warn_once("after-window", AFTER_WINDOW)
            return AfterWindow(self._count_remote(result))
        self._engine.warn_once("no-counts", NO_COUNTS)
        return None

    async def _count_local(self, request: GenerationRequest, result: GenerationResult) -> None:
        # In a thread, not on the loop: this task first runs at the next request's first
        # await, after its start was stamped and before it is sent, so counting on the
        # loop added the count (1-10 ms on a busy host) to that request's TTFT and
        # latency (and to the chunks of any other lane in flight).
        assert self._local is not None
        await asyncio.to_thread(_count_with, self._local, request, result)

    async def _count_remote(self, result: GenerationResult) -> None:
        """Completion tokens by the server's endpoint (no template: prompt unknown)."""
        if self._remote is None or self._client is None:  # the endpoint went missing
            self._engine.warn_once("no-counts", NO_COUNTS)
            return
        try:
            result.completion_tokens = await self._remote.count(self._client, result.text)
            result.token_source = "tokenize"
        except EndpointMissing as exc:
            log.warning("no tokenize endpoint (%s)", self._engine.clean(str(exc)))
            self._remote = None
            self._engine.warn_once("no-counts", NO_COUNTS)
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            self._engine.warn_once("tokenize", "tokenize endpoint failed: %s", type(exc).__name__)

    @property
    def count_tokens(self) -> Any:
        """Tokens of a text in the model's tokenizer, for the runner's reasoning-token
        counts: a callable when a local tokenizer or tokenize endpoint exists, else None
        (the runner then leaves reasoning tokens unknown)."""
        local, remote, loop, client = self._local, self._remote, self._engine.loop, self._client
        if local is not None:
            return local.count
        if remote is not None and loop is not None and client is not None:

            def count(text: str) -> int:
                return loop.run(remote.count(client, text), timeout=self.options.read_timeout_s)

            return count
        return None


def _stamp_send(reply: Reply) -> dict[str, Any]:
    """httpx extensions that move ``reply.start`` to the request's first network step
    (its connect, or its headers on a kept-alive connection), from httpcore's trace.
    Between the backend's decision to send and that step the process may be busy
    elsewhere (the worker recording the previous result, a count in another thread, a
    busy host): measured through the serving-agreement proxy, 1-11 ms that were counted
    into TTFT and latency as if the server had taken them."""
    stamped = False

    async def trace(name: str, info: dict[str, Any]) -> None:
        nonlocal stamped
        if not stamped:
            stamped = True
            reply.start = time.perf_counter()

    return {"trace": trace}


def _count_with(local: GgufTokenizer, request: GenerationRequest, result: GenerationResult) -> None:
    kwargs = request.chat_template_kwargs
    if request.tools:  # templates that know tools render them into the prompt
        kwargs = {**kwargs, "tools": request.tools}
    prompt_text = local.render(request.messages, kwargs)
    # A tool call's name and arguments are generated tokens too.
    calls = "".join(c.function.name + c.function.arguments for c in result.tool_calls or [])
    result.completion_tokens = local.count(result.text + calls)
    if prompt_text is not None:
        result.prompt_tokens = local.count(prompt_text)
    result.token_source = "tokenizer"


def _count_or_none(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return int(value)


def _timeout_detail(exc: httpx.TimeoutException, o: OpenAIOptions) -> str:
    if isinstance(exc, httpx.ConnectTimeout):
        return f"no connection within {o.connect_timeout_s:g} s"
    if isinstance(exc, httpx.ReadTimeout):
        return f"no data from the server for {o.read_timeout_s:g} s"
    if isinstance(exc, httpx.PoolTimeout):
        return "no free connection in the pool"
    return f"{type(exc).__name__}"
