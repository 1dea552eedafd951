"""Fault injection: a scripted proxy between the ``openai`` backend and a real server.

Every sample must end either succeeded or failed with its reason; nothing is lost,
retries are counted, and the time spent is bounded by the retry policy.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from backendctx import make_context
from faultproxy import (
    Action,
    DropBeforeResponse,
    DropMidStream,
    FaultProxy,
    Stall,
    Status,
)
from llamaserver import ALIAS, LlamaServer, llama_server  # noqa: F401  (fixture)

from fleetbench.backends import GenerationRequest, GenerationResult, GenerationSettings, Message
from fleetbench.backends.openai_http import OpenAIBackend, OpenAIOptions

SETTINGS = GenerationSettings(max_tokens=6, temperature=0.0, repeat_penalty=1.0)
# Short timeouts and waits keep the suite fast; the policy bounds every sample. The
# server generates one request at a time and a queued stream hears nothing until its
# turn, so the read timeout must exceed the queue wait (3 x 6 tokens, on a busy box).
# On a very busy machine a queued request may still time out once: that is a real,
# correctly counted retry, so retries are checked against the attempts the proxy saw.
# Tests without stalls use a long read timeout (QUIET).
READ_TIMEOUT = 6.0
FAST = {
    "read_timeout_s": READ_TIMEOUT,
    "request_timeout_s": 20.0,
    "max_retries": 3,
    "backoff_base_s": 0.05,
    "backoff_max_s": 0.2,
}
QUIET = {"read_timeout_s": 120.0}


@pytest.fixture
def proxy(llama_server: LlamaServer) -> Iterator[FaultProxy]:  # noqa: F811
    with FaultProxy(llama_server.root_url) as p:
        yield p


def run(
    proxy: FaultProxy, tmp_path: Path, rules: dict[str, list[Action]], n: int, **options: Any
) -> tuple[dict[int, GenerationResult], float]:
    """Generate for prompts tagged [s0]..[sN-1] through the scripted proxy."""
    proxy.script(rules)
    opts = OpenAIOptions(
        preset="llamacpp-server", base_url=proxy.base_url, model=ALIAS, **{**FAST, **options}
    )
    backend = OpenAIBackend(opts, make_context(tmp_path))
    backend.load()
    reqs = [
        GenerationRequest(
            index=i,
            messages=[Message(role="user", content=f"[s{i}] Name a colour.")],
            settings=SETTINGS,
        )
        for i in range(n)
    ]
    started = time.monotonic()
    try:
        results = list(backend.generate(reqs))
    finally:
        backend.close()
    elapsed = time.monotonic() - started
    by_index = {r.index: r for r in results}
    assert len(results) == n and sorted(by_index) == list(range(n))  # nothing lost or doubled
    for r in results:
        assert r.ok or r.error  # succeeded, or failed with its reason
        assert not (r.ok and r.error)
    return by_index, elapsed


@pytest.mark.parametrize("stream", [True, False])
def test_mixed_faults_at_concurrency_4(proxy: FaultProxy, tmp_path: Path, stream: bool) -> None:
    rules: dict[str, list[Action]] = {
        "[s0]": [Status(500), Status(502)],
        "[s1]": [Status(429, retry_after="1")],
        "[s2]": [Stall(60)],
        "[s3]": [DropBeforeResponse()],
        "[s4]": [DropMidStream(after_events=3 if stream else 0)],
        "[s5]": [Status(503)] * 4,
        "[s6]": [Status(400, body='{"error": {"message": "bad request"}}')],
        "[s7]": [Status(504), DropBeforeResponse(), Status(500)],
    }
    results, elapsed = run(proxy, tmp_path, rules, n=9, stream=stream, concurrency=4)
    injected = {0: 2, 1: 1, 2: 1, 3: 1, 4: 1, 7: 3, 8: 0}
    for i, faults in injected.items():
        r = results[i]
        assert r.ok, (i, r.error)
        assert r.retries == proxy.attempts(f"[s{i}]") - 1, i  # every attempt counted
        assert r.retries >= faults, i  # == faults unless the box was too busy (see top)
        assert r.text and r.completion_tokens
    assert results[5].error and results[5].error.startswith("HTTP 503 after 4 attempts: injected")
    assert results[5].retries == 3 and results[5].retryable
    assert results[6].error == "HTTP 400: bad request" and results[6].retries == 0
    assert not results[6].retryable
    assert proxy.pending() == 0  # every scripted fault was hit
    # bounded: one read timeout, one Retry-After (1 s), small backoffs, generation
    assert elapsed < 60


def test_retry_after_is_honoured_as_seconds_and_dates(proxy: FaultProxy, tmp_path: Path) -> None:
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=2), usegmt=True)
    rules: dict[str, list[Action]] = {
        "[s0]": [Status(429, retry_after="1.5")],
        "[s1]": [Status(503, retry_after=soon)],
    }
    started = time.monotonic()
    results, _ = run(proxy, tmp_path, rules, n=2, concurrency=2, **QUIET)
    assert all(r.ok and r.retries == 1 for r in results.values())
    assert time.monotonic() - started >= 1.0  # waited as told, not the 0.05 s backoff


def test_retry_after_is_capped(proxy: FaultProxy, tmp_path: Path) -> None:
    rules: dict[str, list[Action]] = {"[s0]": [Status(429, retry_after="3600")]}
    results, elapsed = run(proxy, tmp_path, rules, n=1, retry_after_max_s=0.2, **QUIET)
    assert results[0].ok and results[0].retries == 1 and elapsed < 20


def test_exhausted_timeouts_and_drops_fail_with_their_reason(
    proxy: FaultProxy, tmp_path: Path
) -> None:
    rules: dict[str, list[Action]] = {
        "[s0]": [Stall(60)] * 2,
        "[s1]": [DropMidStream(after_events=2)] * 2,
        "[s2]": [DropBeforeResponse()] * 2,
        "[s3]": [Stall(60, after_events=2)] * 2,  # silent in the middle of a stream
    }
    # concurrency 2: the two stalling samples hold their lanes without using the server,
    # so the others never queue long enough to time out
    results, elapsed = run(proxy, tmp_path, rules, n=5, concurrency=2, max_retries=1)
    assert results[0].error == (
        f"timeout after 2 attempts: no data from the server for {READ_TIMEOUT:g} s"
    )
    assert (results[1].error or "").startswith("connection dropped mid-stream after 2 attempts")
    assert (results[2].error or "").startswith("connection error after 2 attempts")
    assert (results[3].error or "").startswith("timeout after 2 attempts")
    assert all(results[i].retries == 1 and results[i].retryable for i in range(4))
    assert results[4].ok and results[4].retries == proxy.attempts("[s4]") - 1
    assert elapsed < 4 * READ_TIMEOUT + 30


def test_whole_attempt_timeout(proxy: FaultProxy, tmp_path: Path) -> None:
    rules: dict[str, list[Action]] = {"[s0]": [Stall(60, after_events=2)]}
    results, elapsed = run(
        proxy, tmp_path, rules, n=1, read_timeout_s=30, request_timeout_s=2, max_retries=0
    )
    assert results[0].error == "timeout after 1 attempt: attempt exceeded 2 s"
    assert elapsed < 15


@pytest.mark.parametrize("status", [401, 403, 404, 422])
def test_client_errors_fail_at_once(proxy: FaultProxy, tmp_path: Path, status: int) -> None:
    rules: dict[str, list[Action]] = {"": [Status(status)] * 5}
    results, elapsed = run(proxy, tmp_path, rules, n=2, concurrency=2, **QUIET)
    for r in results.values():
        assert r.error == f"HTTP {status}: injected failure" and r.retries == 0
    assert proxy.pending() == 3 and elapsed < 10  # one attempt each, no backoff


def test_exactly_n_requests_in_flight(proxy: FaultProxy, tmp_path: Path) -> None:
    results, _ = run(proxy, tmp_path, {}, n=7, concurrency=3, **QUIET)
    assert all(r.ok for r in results.values())
    assert proxy.max_in_flight == 3
    chats = [s for s in proxy.seen if s.path == "/v1/chat/completions"]
    assert len(chats) == 7
