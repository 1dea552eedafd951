"""The hosted backend (any-llm -> the official Anthropic SDK) against a loopback server
that speaks the Anthropic Messages API with replies from the REAL embedded SmolLM2.
Faults (529 overloaded, 429 with Retry-After, overload inside a 200 stream, 400) are
injected by that server; nothing leaves 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("any_llm", reason="needs the [hosted] extra")
from backendctx import make_context
from fake_anthropic import FakeAnthropic, Fault

from fleetbench.backends import GenerationRequest, GenerationResult, GenerationSettings, Message
from fleetbench.backends.hosted import HostedBackend
from fleetbench.backends.hosted_wire import HostedOptions
from fleetbench.backends.llamacpp import LlamaCppBackend, LlamaCppOptions

KEY = "sk-ant-api03-PLANTED-hosted-test-key"
PROMPTS = ["Say hello.", "Name a colour.", "What is 2 + 2?", "Name an animal."]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAnthropic]:
    server = FakeAnthropic().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def planted_key(monkeypatch: pytest.MonkeyPatch, fake: FakeAnthropic) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    fake.faults.clear()
    fake.requests.clear()


def requests(prompts: list[str], max_tokens: int = 12) -> list[GenerationRequest]:
    return [
        GenerationRequest(
            index=i,
            messages=[
                Message(role="system", content="Answer briefly."),
                Message(role="user", content=p),
            ],
            settings=GenerationSettings(temperature=0.0, max_tokens=max_tokens),
        )
        for i, p in enumerate(prompts)
    ]


def backend(tmp_path: Path, fake: FakeAnthropic, **options: object) -> HostedBackend:
    opts = HostedOptions.model_validate(
        {"api_base": fake.url, "backoff_base_s": 0.02, "timeout_s": 120, **options}
    )
    b = HostedBackend(opts, make_context(tmp_path / "run", model_id="claude-fake-1"))
    info = b.load()
    assert KEY not in info.model_dump_json()
    return b


def run(b: HostedBackend, reqs: list[GenerationRequest]) -> dict[int, GenerationResult]:
    try:
        return {r.index: r for r in b.generate(reqs)}
    finally:
        b.close()


def test_streamed_concurrent_with_usage_and_timings(tmp_path: Path, fake: FakeAnthropic) -> None:
    results = run(backend(tmp_path, fake, concurrency=4), requests(PROMPTS))
    assert sorted(results) == [0, 1, 2, 3]
    for r in results.values():
        assert r.ok, r.error
        assert r.token_source == "usage" and r.retries == 0
        assert 0 < r.ttft_s <= r.latency_s
        assert r.prompt_tokens > 10 and 0 < r.completion_tokens <= 12
        assert r.finish_reason in ("stop", "length") and r.text
    assert len(fake.requests) == 4
    for seen in fake.requests:
        assert seen.headers["X-Api-Key"] == KEY  # the key reaches the server ...
        assert seen.body["stream"] is True and seen.body["system"] == "Answer briefly."
        assert seen.body["temperature"] == 0.0 and "seed" not in seen.body
    for r in results.values():  # ... and nowhere else
        assert KEY not in r.model_dump_json()


def test_same_text_as_the_in_process_model(tmp_path: Path, fake: FakeAnthropic) -> None:
    reqs = requests(PROMPTS[:2], max_tokens=10)
    hosted = run(backend(tmp_path, fake, concurrency=2), reqs)
    local = LlamaCppBackend(LlamaCppOptions(n_ctx=1024), make_context(tmp_path / "local"))
    local.load()
    try:
        direct = {r.index: r for r in local.generate(reqs)}
    finally:
        local.close()
    for i in (0, 1):
        assert hosted[i].text == direct[i].text
        assert hosted[i].completion_tokens == direct[i].completion_tokens
        assert hosted[i].prompt_tokens == direct[i].prompt_tokens


def test_not_streamed(tmp_path: Path, fake: FakeAnthropic) -> None:
    r = run(backend(tmp_path, fake, stream=False), requests(PROMPTS[:1]))[0]
    assert r.ok and r.ttft_s is None and r.latency_s > 0
    assert r.token_source == "usage" and r.completion_tokens
    assert fake.requests[0].body.get("stream") in (None, False)


def test_stop_sequence_is_sent_and_honoured(tmp_path: Path, fake: FakeAnthropic) -> None:
    reqs = requests(["Count from 1 to 9."], max_tokens=40)
    reqs[0].settings.stop = ["3"]
    r = run(backend(tmp_path, fake), reqs)[0]
    assert fake.requests[0].body["stop_sequences"] == ["3"]
    assert r.ok and "2" in r.text and "3" not in r.text and r.finish_reason == "stop"


def test_overloaded_529_then_success(tmp_path: Path, fake: FakeAnthropic) -> None:
    fake.faults.append(Fault(529, "overloaded_error"))
    r = run(backend(tmp_path, fake), requests(PROMPTS[:1]))[0]
    assert r.ok and r.retries == 1 and r.token_source == "usage"
    assert len(fake.requests) == 2


def test_429_retry_after_is_honoured(tmp_path: Path, fake: FakeAnthropic) -> None:
    fake.faults.append(Fault(429, "rate_limit_error", retry_after="1"))
    r = run(backend(tmp_path, fake), requests(PROMPTS[:1]))[0]
    assert r.ok and r.retries == 1
    first, second = fake.requests
    assert second.at - first.at >= 0.95  # waited the server's second, not 0.02 s


def test_overload_inside_a_200_stream_is_retried(tmp_path: Path, fake: FakeAnthropic) -> None:
    fake.faults.append(Fault(mid_stream=True))
    r = run(backend(tmp_path, fake), requests(PROMPTS[:1]))[0]
    assert r.ok and r.retries == 1


def test_retries_are_bounded_and_the_reason_recorded(tmp_path: Path, fake: FakeAnthropic) -> None:
    fake.faults.extend(Fault(529) for _ in range(5))
    start = time.monotonic()
    r = run(backend(tmp_path, fake, max_retries=2), requests(PROMPTS[:1]))[0]
    assert not r.ok and r.retryable and r.retries == 2
    assert r.error == "HTTP 529 after 3 attempts: overloaded_error: fake overloaded_error"
    assert len(fake.requests) == 3 and time.monotonic() - start < 30


def test_bad_request_fails_fast(tmp_path: Path, fake: FakeAnthropic) -> None:
    fake.faults.append(Fault(400, "invalid_request_error"))
    results = run(backend(tmp_path, fake, concurrency=1), requests(PROMPTS[:2]))
    bad = [r for r in results.values() if not r.ok]
    assert len(bad) == 1 and bad[0].retries == 0 and not bad[0].retryable
    assert bad[0].error == "HTTP 400: invalid_request_error: fake invalid_request_error"
    assert len(fake.requests) == 3 - 1  # one failed at once, one succeeded: nothing lost


def test_wrong_key_is_not_echoed(tmp_path: Path, fake: FakeAnthropic) -> None:
    fake.faults.append(Fault(401, "authentication_error"))
    r = run(backend(tmp_path, fake), requests(PROMPTS[:1]))[0]
    assert not r.ok and not r.retryable and "HTTP 401" in r.error
    assert KEY not in r.model_dump_json()


FILLER = "abcdefghijklmnopqrstuvwxyz0123456789" * 12  # no 12 characters of KEY in it


def test_key_echoed_at_every_offset_never_survives_in_part(
    tmp_path: Path, fake: FakeAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    """Errors are scrubbed of the key before they are cut (300 characters), so a key
    echoed across the cut leaves nothing of itself: in a 401 body and mid-stream."""
    offsets = range(200, 320)
    fake.faults.extend(
        Fault(401, "authentication_error", message=FILLER[:o] + "{key} (echoed)") for o in offsets
    )
    fake.faults.extend(Fault(mid_stream=True, message=FILLER[:o] + "{key}") for o in offsets)
    caplog.set_level("INFO")
    reqs = requests(["Say hi."] * (2 * len(offsets)), max_tokens=2)
    results = run(backend(tmp_path, fake, concurrency=1, max_retries=0), reqs)
    pieces = [KEY[i : i + 12] for i in range(len(KEY) - 11)]
    for r in results.values():
        error = r.error or ""
        assert error.startswith(("HTTP 401: authentication_error: ", "overloaded_error")), error
        assert not [p for p in pieces if p in error], error
    assert "***" in (results[0].error or "") and "***" in (results[len(offsets)].error or "")
    assert not [p for p in pieces if p in caplog.text]
