"""A run's outcome from its stored samples' errors, and the threshold that tolerates some."""

from __future__ import annotations

import pytest

from fleetbench.runner.outcome import Settled, settle


def test_no_failure_is_completed() -> None:
    assert settle([None, None, None], 0.0) == Settled("completed", None)
    assert settle([], 0.0) == Settled("completed", None)


def test_all_failed_is_failed_with_the_most_common_error() -> None:
    errors: list[str | None] = ["HTTP 401: bad key", "timeout", "HTTP 401: bad key"]
    assert settle(errors, 0.0) == Settled("failed", "HTTP 401: bad key")
    # Even a threshold of 1 (every failure tolerated) does not make nothing a success.
    assert settle(errors, 1.0).status == "failed"


def test_some_failed_beyond_the_threshold_is_completed_with_errors() -> None:
    errors: list[str | None] = [None] * 17 + ["HTTP 500: boom", "HTTP 500: boom", "timeout"]
    assert settle(errors, 0.0) == Settled(
        "completed_with_errors", "3/20 samples failed: HTTP 500: boom"
    )
    assert settle(errors, 0.1).status == "completed_with_errors"  # 0.15 > 0.1


@pytest.mark.parametrize("share", [0.15, 0.5, 1.0])
def test_failures_within_the_threshold_complete_with_a_summary(share: float) -> None:
    errors: list[str | None] = [None] * 17 + ["HTTP 500: boom"] * 3
    settled = settle(errors, share)
    assert settled.status == "completed"
    within = f"(within max_failed_share {share:g})"
    assert settled.error == f"3/20 samples failed: HTTP 500: boom {within}"
