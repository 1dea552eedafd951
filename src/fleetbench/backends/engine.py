"""The request engine of the network backends (``openai``, ``hosted``), in one place.

inspect_ai's split: a backend only builds, sends and classifies one request (the
``Provider`` it hands the engine); the engine owns everything around that, once for
every network backend, with the same options, defaults and limits (``EngineOptions``):

* **Lanes.** ``concurrency`` coroutines on one asyncio loop in a helper thread
  (``LoopThread``) take requests from one shared iterator, so exactly that many are in
  flight; results go onto a queue that ``generate()`` yields from as they complete, so
  the runner's thread sees a plain iterator. A consumer that stops early cancels the
  requests in flight.
* **Schedules.** With an open-loop ``load`` profile (``backends.load``: constant or
  Poisson arrivals) there are no lanes: each request is sent at its due time whether or
  not earlier replies are in, and its result records the intended and actual send
  times. Warm-up requests, if any, go first and are not yielded.
* **Retries.** A failed attempt is classified by the provider (``RequestFailure``:
  retryable or not, and the server's Retry-After). Retryable failures are repeated with
  exponential backoff and equal jitter (half fixed, half random, so clients released by
  one outage do not return in lockstep) up to ``max_retries``; a ``Retry-After``
  replaces the computed wait, capped at ``retry_after_max_s``. Every attempt beyond the
  first is counted in the result, and each attempt is bounded by a whole-attempt
  timeout. Retryable: rate limits (429), overloaded or restarting servers (5xx and the
  52x/529 of hosted APIs), timeouts, dropped connections (also mid-stream). Any other
  4xx fails the sample at once: repeating it only burns time and quota.
* **Scrubbing.** Every text from outside (server bodies, exception messages) that
  reaches a result, an exception or the log passes ``clean()`` or ``scrub()`` here:
  secrets are replaced FIRST, on the whole text, and only then is it cut, so a key
  echoed near the cut point never survives in part. Fragments of a secret that a
  server itself truncated (8 characters or more) are replaced too.
* **Follow-ups.** Work that completes a result (counting its tokens) runs off the
  lane, while the next request is out; work that would compete with generation on the
  server (its tokenize endpoint: llama_cpp.server serialises those calls with
  generation) comes wrapped in ``AfterWindow`` and waits until the batch's last reply
  is in, so no timing window contains it. Those results are yielded after it.
* **Warn once.** A backend's warnings about a run's configuration come once per run.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import random
import re
import threading
import time
import traceback
from collections.abc import Coroutine, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from fleetbench.backends.base import GenerationRequest, GenerationResult
from fleetbench.backends.load import LoadProfile, SloTargets, arrival_offsets
from fleetbench.errors import BackendError

T = TypeVar("T")

DETAIL_CHARS = 300  # the longest server text kept in an error
_FRAGMENT_CHARS = 8  # a run of a secret this long is scrubbed even when not whole


class EngineOptions(BaseModel):
    """Options every network backend shares (its ``Options`` extend these)."""

    model_config = ConfigDict(extra="forbid")

    concurrency: int = Field(1, ge=1, le=512, description="requests in flight")
    max_retries: int = Field(4, ge=0, le=20, description="attempts beyond the first")
    backoff_base_s: float = Field(0.5, ge=0)
    backoff_max_s: float = Field(30.0, ge=0)
    retry_after_max_s: float = Field(60.0, ge=0, description="cap on a server's Retry-After")
    load: LoadProfile | None = Field(None, description="how requests are sent (backends.load)")
    slo: SloTargets | None = Field(None, description="latency targets for goodput")

    def lanes(self) -> int:
        """Requests in flight, closed loop."""
        return (self.load.concurrency if self.load else None) or self.concurrency

    def pool_size(self) -> int:
        """Connections a client needs: open loop, as many as the server keeps waiting
        (up to 512), so the client's pool never holds a request back."""
        return 512 if self.load is not None and self.load.open_loop else self.lanes()


# -- failures and the retry policy ----------------------------------------------------

# 408 request timeout, 425 too early, 429 rate limited, 5xx transient, and the
# Cloudflare/Anthropic-style 52x/529 that hosted APIs return when overloaded.
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524, 529})


def is_retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUS


class RequestFailure(Exception):
    """One failed attempt. ``kind`` is short ("HTTP 503", "timeout", ...); ``detail``
    is the server's text or the exception's message, raw: the engine scrubs and cuts
    it before it goes anywhere."""

    def __init__(
        self, kind: str, detail: str, *, retryable: bool, retry_after_s: float | None = None
    ) -> None:
        super().__init__(kind)  # never the raw detail: it may hold an echoed secret
        self.kind = kind
        self.detail = detail
        self.retryable = retryable
        self.retry_after_s = retry_after_s

    def describe(self, attempts: int) -> str:
        """The sample's error: ``HTTP 503 after 4 attempts: overloaded``."""
        head = (
            self.kind
            if attempts == 1 and not self.retryable
            else (f"{self.kind} after {attempts} attempt{'s' if attempts != 1 else ''}")
        )
        return f"{head}: {self.detail}" if self.detail else head


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 4  # attempts beyond the first
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    retry_after_max_s: float = 60.0

    def delay(
        self, retry: int, retry_after_s: float | None = None, rng: random.Random | None = None
    ) -> float:
        """Seconds to wait before retry number ``retry`` (0 for the first retry)."""
        if retry_after_s is not None:
            return max(0.0, min(retry_after_s, self.retry_after_max_s))
        nominal = min(self.backoff_max_s, self.backoff_base_s * 2.0**retry)
        return nominal / 2 + (rng or random).uniform(0.0, nominal / 2)


_SECONDS = re.compile(r"^\s*\d+(\.\d+)?\s*$")


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; None if absent
    or unparseable. Dates in the past give 0."""
    if value is None or not value.strip():
        return None
    if _SECONDS.match(value):
        return float(value)
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def retry_after_from_headers(headers: Mapping[str, str]) -> float | None:
    """``retry-after-ms`` (OpenAI) or ``Retry-After``, in seconds; None if neither."""
    millis = headers.get("retry-after-ms")
    if millis is not None and _SECONDS.match(millis):
        return float(millis) / 1000.0
    return parse_retry_after(headers.get("retry-after"))


# -- scrubbing: secrets out first, then cut --------------------------------------------


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret (so also its Bearer form) replaced by ``***``, and any
    run of 8+ characters of a secret (a key the server itself cut short)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
            if len(secret) > _FRAGMENT_CHARS:
                text = _scrub_fragments(text, secret)
    return text


def _scrub_fragments(text: str, secret: str) -> str:
    n = _FRAGMENT_CHARS
    grams = {secret[i : i + n] for i in range(len(secret) - n + 1)}
    out: list[str] = []
    i = start = 0
    while i <= len(text) - n:
        if text[i : i + n] in grams:
            end = i + n
            while end < len(text) and text[i : end + 1] in secret:
                end += 1
            out.append(text[start:i] + "***")
            i = start = end
        else:
            i += 1
    return "".join(out) + text[start:] if out else text


def clean(text: str, secrets: Iterable[str], limit: int = DETAIL_CHARS) -> str:
    """Outside text for a result or a log line: scrubbed, on one line, then cut."""
    secrets = tuple(secrets)
    text = " ".join(scrub(text, secrets).split())
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return scrub(text, secrets)  # the cut may leave a fragment only the whole text hid


_USERINFO = re.compile(r"(?<=://)[^/@\s]*@")


def redact_url(url: str) -> str:
    """A URL without ``user:password@``."""
    return _USERINFO.sub("", url)


# -- the helper thread with the event loop ----------------------------------------------


class LoopThread:
    """An asyncio loop in a daemon thread: the caller's thread stays synchronous."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="fleetbench-http", daemon=True
        )
        self._thread.start()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return self.submit(coro).result(timeout)

    def stop(self, timeout: float = 10) -> None:
        """Stop the loop and wait up to ``timeout`` s for the thread; close the loop if
        the thread ended. Call once."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self.loop.close()


# -- the engine --------------------------------------------------------------------------


@dataclass(frozen=True)
class AfterWindow:
    """A follow-up that must wait until the batch's last reply is in: it loads the
    server being measured (see the module docstring)."""

    work: Coroutine[Any, Any, None]


FollowUp = Coroutine[Any, Any, None] | AfterWindow


class Provider(Protocol):
    """What a network backend gives the engine: build, send, classify."""

    def prepare(self, request: GenerationRequest) -> Any:
        """What every attempt of ``request`` sends (built once, before the first)."""
        ...

    async def send(self, request: GenerationRequest, prepared: Any) -> GenerationResult:
        """One attempt; raises on failure (a ``RequestFailure`` or what ``classify``
        knows). ``retries`` of the result is set by the engine."""
        ...

    def classify(self, exc: Exception) -> RequestFailure | None:
        """The retry verdict for what ``send`` raised; None: not a request failure but
        a bug (recorded as an internal error, with its traceback in the log)."""
        ...

    def follow_up(self, request: GenerationRequest, result: GenerationResult) -> FollowUp | None:
        """Work that completes a successful result off its lane (counting tokens while
        the next request is already out), ``AfterWindow`` work for after the batch's
        last reply, or None."""
        ...


Item = GenerationResult | BaseException | None
Held = list[tuple[Coroutine[Any, Any, None], GenerationResult]]


class RequestEngine:
    """Runs a provider's requests: lanes, retries, timeouts, scrubbing, warn-once."""

    def __init__(
        self,
        options: EngineOptions,
        provider: Provider,
        *,
        attempt_timeout_s: float,
        log: logging.Logger,
    ) -> None:
        self.options = options
        self.provider = provider
        self.attempt_timeout_s = attempt_timeout_s
        self.log = log
        self.policy = RetryPolicy(
            max_retries=options.max_retries,
            backoff_base_s=options.backoff_base_s,
            backoff_max_s=options.backoff_max_s,
            retry_after_max_s=options.retry_after_max_s,
        )
        self.secrets: tuple[str, ...] = ()  # set by the backend once it reads its key
        self.loop: LoopThread | None = None
        self._rng = random.Random()
        self._warned: set[str] = set()

    # -- text ----------------------------------------------------------------------------

    def clean(self, text: str) -> str:
        return clean(text, self.secrets)

    def scrub(self, text: str) -> str:
        return scrub(text, self.secrets)

    def warn_once(self, key: str, message: str, *args: Any) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self.log.warning(message, *args)

    # -- the loop ------------------------------------------------------------------------

    def start(self) -> LoopThread:
        httpx_log = logging.getLogger("httpx")
        if httpx_log.level == logging.NOTSET:
            # One INFO line per request drowns run.log, and it quotes the whole URL,
            # user-info included.
            httpx_log.setLevel(logging.WARNING)
        if self.loop is None:
            self.loop = LoopThread()
        return self.loop

    def stop(self, closing: Coroutine[Any, Any, Any] | None = None, timeout: float = 10) -> None:
        """Cancel what is still in flight, await ``closing`` (the client's close) on
        the loop, then stop it. Idempotent; never raises (a close must not hide the
        run's own error)."""
        loop, self.loop = self.loop, None
        if loop is None:
            if closing is not None:
                closing.close()
            return
        try:
            loop.run(_shutdown(closing), timeout=timeout)
        except Exception as exc:
            self.log.warning("closing the client: %s", type(exc).__name__)
        loop.stop(timeout)

    # -- generate ------------------------------------------------------------------------

    def generate(self, requests: Iterable[GenerationRequest]) -> Iterator[GenerationResult]:
        """One result per request as each completes (order may differ)."""
        loop = self.loop
        if loop is None:
            raise BackendError("generate() called before load()")
        out: queue.SimpleQueue[Item] = queue.SimpleQueue()
        future = loop.submit(self._run_all(iter(requests), out))
        try:
            while (item := out.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            future.cancel()  # a consumer that stops early stops the requests in flight

    async def _run_all(
        self, requests: Iterator[GenerationRequest], out: queue.SimpleQueue[Item]
    ) -> None:
        load = self.options.load
        held: Held = []  # AfterWindow follow-ups, with their results
        try:
            async with asyncio.TaskGroup() as group:
                if load is not None and load.warmup_requests:
                    requests = await self._warm_up(requests, load.warmup_requests)
                if load is not None and load.open_loop:
                    await self._open_loop(requests, load, out, group, held)
                else:
                    for _ in range(self.options.lanes()):
                        group.create_task(self._lane(requests, out, group, held))
            # The last reply is in: nothing measured is running any more.
            while held:
                await self._finish(*held.pop(0), out)
        except* Exception as exc:  # e.g. the request iterable itself failed
            out.put(exc.exceptions[0])
        finally:
            for work, _ in held:  # a cancelled or failed batch: never started
                work.close()
            out.put(None)

    async def _lane(
        self,
        requests: Iterator[GenerationRequest],
        out: queue.SimpleQueue[Item],
        group: asyncio.TaskGroup,
        held: Held,
    ) -> None:
        """Closed loop: the next request goes out when this lane's reply is in."""
        for request in requests:  # lanes share the iterator: each takes the next one
            await self._deliver(request, None, out, group, held)

    async def _open_loop(
        self,
        requests: Iterator[GenerationRequest],
        load: LoadProfile,
        out: queue.SimpleQueue[Item],
        group: asyncio.TaskGroup,
        held: Held,
    ) -> None:
        """Open loop: each request is sent at its due time, replies or not. The due
        times are offsets from one start on the loop's monotonic clock; the wall-clock
        intended time is the same offset from the start's wall time."""
        loop = asyncio.get_running_loop()
        start, start_wall = loop.time(), time.time()
        for request, offset in zip(requests, arrival_offsets(load), strict=False):
            delay = start + offset - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            group.create_task(self._deliver(request, start_wall + offset, out, group, held))

    async def _warm_up(
        self, requests: Iterator[GenerationRequest], count: int
    ) -> Iterator[GenerationRequest]:
        """``count`` unrecorded requests (the first requests again, in turn), closed loop
        at the engine's concurrency, before anything is measured."""
        pending = list(requests)
        if pending:
            warm = iter([pending[i % len(pending)] for i in range(count)])

            async def lane() -> None:
                for request in warm:
                    await self._one(request)

            await asyncio.gather(*(lane() for _ in range(self.options.lanes())))
        return iter(pending)

    async def _deliver(
        self,
        request: GenerationRequest,
        intended: float | None,
        out: queue.SimpleQueue[Item],
        group: asyncio.TaskGroup,
        held: Held,
    ) -> None:
        actual = time.time()
        result = await self._one(request)
        result.intended_send_at, result.actual_send_at = intended, actual
        follow = self.provider.follow_up(request, result) if result.ok else None
        if follow is None:
            out.put(result)
        elif isinstance(follow, AfterWindow):
            held.append((follow.work, result))
        else:  # off the lane: the next request goes out now
            group.create_task(self._finish(follow, result, out))

    async def _finish(
        self,
        follow: Coroutine[Any, Any, None],
        result: GenerationResult,
        out: queue.SimpleQueue[Item],
    ) -> None:
        try:
            await follow
        except Exception as exc:  # a nicety: never lose the sample over it
            self.warn_once("follow-up", "completing a result failed: %s", type(exc).__name__)
        out.put(result)

    async def _one(self, request: GenerationRequest) -> GenerationResult:
        try:
            prepared = self.provider.prepare(request)
        except Exception as exc:
            return self._internal(request, exc, 0)
        retries = 0
        while True:
            timer = asyncio.timeout(self.attempt_timeout_s)
            try:
                async with timer:
                    result = await self.provider.send(request, prepared)
            except Exception as exc:
                if timer.expired():
                    limit = self.attempt_timeout_s
                    failure = RequestFailure(
                        "timeout", f"attempt exceeded {limit:g} s", retryable=True
                    )
                else:
                    verdict = self.provider.classify(exc)
                    if verdict is None:
                        return self._internal(request, exc, retries)
                    failure = verdict
            else:
                result.retries = retries
                return result
            if not failure.retryable or retries >= self.policy.max_retries:
                return GenerationResult(
                    index=request.index,
                    error=self.clean(failure.describe(retries + 1)),
                    retries=retries,
                    retryable=failure.retryable,
                )
            delay = self.policy.delay(retries, failure.retry_after_s, self._rng)
            self.log.info(
                "request %d: %s; retry %d in %.2f s",
                request.index,
                self.clean(failure.describe(retries + 1)),
                retries + 1,
                delay,
            )
            await asyncio.sleep(delay)
            retries += 1

    def _internal(
        self, request: GenerationRequest, exc: Exception, retries: int
    ) -> GenerationResult:
        """A bug, not a request failure: never lose the sample to it, record it."""
        trace = "".join(traceback.format_exception(exc))
        self.log.error("request %d: internal error\n%s", request.index, self.scrub(trace))
        detail = self.clean(f"{type(exc).__name__}: {exc}")
        return GenerationResult(
            index=request.index, error=f"internal error: {detail}", retries=retries
        )


async def _shutdown(closing: Coroutine[Any, Any, Any] | None) -> None:
    current = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if closing is not None:
        await closing
