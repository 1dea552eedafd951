"""Retry policy for HTTP backends: which failures to retry, and how long to wait.

A failure is retryable when trying again may succeed: rate limits (429), overloaded
or restarting servers (500, 502, 503, 504 and their proxy cousins), timeouts and
dropped connections, also in the middle of a stream. Anything else (400 bad request,
401/403 bad key, 404 unknown model, 422 invalid parameters...) fails the sample at
once: repeating it only burns time and quota.

Waits grow exponentially with "equal jitter" (half fixed, half random), so that many
clients released by the same outage do not return in lockstep, yet never wait less
than half the nominal delay. A server's ``Retry-After`` (seconds or an HTTP date)
replaces the computed wait, capped so one header cannot stall a run for an hour.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# 408 request timeout, 425 too early, 429 rate limited, 5xx transient, and the
# Cloudflare/Anthropic-style 52x/529 that hosted APIs return when overloaded.
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524, 529})


def is_retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUS


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


class RequestFailure(Exception):
    """One failed attempt. ``kind`` is short ("HTTP 503", "timeout", ...); ``detail``
    is the scrubbed server text or exception message."""

    def __init__(
        self, kind: str, detail: str, *, retryable: bool, retry_after_s: float | None = None
    ) -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
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
