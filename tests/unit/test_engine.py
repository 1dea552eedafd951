"""The request engine's pure parts: backoff, Retry-After parsing, status classification,
and scrubbing (secrets out before any cut)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from fleetbench.backends.engine import (
    DETAIL_CHARS,
    RequestFailure,
    RetryPolicy,
    clean,
    is_retryable_status,
    parse_retry_after,
    retry_after_from_headers,
    scrub,
)


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 529])
def test_transient_statuses_are_retryable(status: int) -> None:
    assert is_retryable_status(status)


@pytest.mark.parametrize("status", [200, 400, 401, 403, 404, 409, 413, 422, 501])
def test_client_errors_are_not(status: int) -> None:
    assert not is_retryable_status(status)


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy(backoff_base_s=1.0, backoff_max_s=8.0)
    rng = random.Random(1)
    for retry, nominal in enumerate([1, 2, 4, 8, 8, 8]):
        delays = [policy.delay(retry, rng=rng) for _ in range(200)]
        assert all(nominal / 2 <= d <= nominal for d in delays)
        assert max(delays) - min(delays) > nominal / 4  # jittered, not constant


def test_retry_after_replaces_backoff_and_is_capped() -> None:
    policy = RetryPolicy(backoff_base_s=10.0, retry_after_max_s=5.0)
    assert policy.delay(0, retry_after_s=1.5) == 1.5
    assert policy.delay(3, retry_after_s=0.0) == 0.0
    assert policy.delay(0, retry_after_s=3600) == 5.0


def test_parse_retry_after_seconds_and_dates() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 2.5 ") == 2.5
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(later, now=now) == pytest.approx(30.0)
    earlier = format_datetime(now - timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(earlier, now=now) == 0.0
    for junk in (None, "", "soon", "-5", "Mon, 99 Foo"):
        assert parse_retry_after(junk, now=now) is None


def test_retry_after_headers_prefer_milliseconds() -> None:
    assert retry_after_from_headers(httpx.Headers({"retry-after-ms": "250"})) == 0.25
    assert retry_after_from_headers(httpx.Headers({"Retry-After": "7"})) == 7.0
    assert retry_after_from_headers(httpx.Headers({})) is None


def test_failure_descriptions() -> None:
    fatal = RequestFailure("HTTP 401", "bad key", retryable=False)
    assert fatal.describe(1) == "HTTP 401: bad key"
    transient = RequestFailure("HTTP 503", "overloaded", retryable=True)
    assert transient.describe(4) == "HTTP 503 after 4 attempts: overloaded"
    assert transient.describe(1) == "HTTP 503 after 1 attempt: overloaded"
    assert RequestFailure("timeout", "", retryable=True).describe(2) == "timeout after 2 attempts"


KEY = "SK-PLANTED-QXZRWVYTUKMN"


def fragments(secret: str, n: int = 12) -> list[str]:
    return [secret[i : i + n] for i in range(len(secret) - n + 1)]


@pytest.mark.parametrize("gap", ["", " ", "  \n\t "])  # whitespace collapses before the cut
def test_clean_scrubs_before_it_cuts_at_every_offset(gap: str) -> None:
    for offset in range(DETAIL_CHARS + 5):
        text = ("x" + gap) * offset + KEY + " after"
        out = clean(text, [KEY])
        assert len(out) <= DETAIL_CHARS and "\n" not in out
        assert not [f for f in fragments(KEY) if f in out], (offset, out)


def test_scrub_replaces_whole_secrets_and_fragments_a_server_cut_short() -> None:
    assert scrub(f"Bearer {KEY}, again {KEY}", [KEY, ""]) == "Bearer ***, again ***"
    assert scrub(f"bad key {KEY[:14]}...", [KEY]) == "bad key ***..."
    assert scrub(f"ends with ...{KEY[-9:]}", [KEY]) == "ends with ...***"
    assert scrub(f"short {KEY[:7]} stays", [KEY]) == f"short {KEY[:7]} stays"  # 7 < 8
    assert scrub("nothing here", [KEY]) == "nothing here"
    assert scrub("pw is abc", ["abc"]) == "pw is ***"  # short secrets: whole only
    assert RequestFailure("HTTP 401", f"echo {KEY}", retryable=False).args == ("HTTP 401",)
