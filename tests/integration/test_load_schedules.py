"""Open-loop load profiles against a slow loopback server: requests go out on schedule,
not when earlier replies are in (no coordinated omission)."""

from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import Any

import pytest
from backendctx import make_context
from pacedserver import MODEL, PacedServer

from fleetbench.backends import GenerationRequest, GenerationResult, GenerationSettings, Message
from fleetbench.backends.load import LoadProfile, arrival_offsets
from fleetbench.backends.openai_http import OpenAIBackend, OpenAIOptions

N = 8
SLACK_S = 0.04  # loopback connect + thread start, on a busy 2-core host


def generate(server: PacedServer, run_dir: Path, load: dict[str, Any]) -> list[GenerationResult]:
    options = OpenAIOptions(base_url=server.base_url, model=MODEL, api_key_env="", load=load)
    backend = OpenAIBackend(options, make_context(run_dir))
    settings = GenerationSettings(max_tokens=4)
    reqs = [
        GenerationRequest(
            index=i, messages=[Message(role="user", content=f"q{i}")], settings=settings
        )
        for i in range(N)
    ]
    backend.load()
    try:
        results = list(backend.generate(reqs))
    finally:
        backend.close()
    assert sorted(r.index for r in results) == list(range(N))
    assert all(r.ok for r in results), [r.error for r in results]
    return sorted(results, key=lambda r: r.index)


@pytest.mark.parametrize("profile", ["constant", "poisson"])
def test_open_loop_sends_on_schedule_under_a_slow_server(tmp_path: Path, profile: str) -> None:
    """Each reply takes ~0.65 s; at 10 requests/s a closed loop of one lane would send
    one request per 0.65 s. Open loop, the server sees them arrive on the schedule."""
    load = LoadProfile(profile=profile, rate_rps=10, seed=3)  # type: ignore[arg-type]
    due = list(islice(arrival_offsets(load), N))
    with PacedServer(ttft_s=0.5, gap_s=0.05, tokens=4) as server:
        results = generate(server, tmp_path, load.model_dump())
    intended = [r.intended_send_at for r in results]
    actual = [r.actual_send_at for r in results]
    assert all(t is not None for t in intended + actual)
    start = intended[0]
    assert start is not None
    # The intended times are the schedule itself; the actual ones keep to it.
    for k, (i, a) in enumerate(zip(intended, actual, strict=True)):
        assert i is not None and a is not None
        assert i - start == pytest.approx(due[k], abs=1e-6)
        assert 0 <= a - i < SLACK_S, (k, a - i)
    # Server side: arrivals follow the schedule, and many replies overlapped.
    arrived = sorted(s.arrived for s in server.served)
    assert [t - arrived[0] for t in arrived] == pytest.approx(due, abs=SLACK_S)
    assert arrived[-1] - arrived[0] < due[-1] + SLACK_S < N * server.reply_s() / 2
    assert server.max_in_flight >= 3
    # Latency is the server's reply time: nothing queued in the client.
    for r in results:
        assert r.latency_s == pytest.approx(server.reply_s(), abs=0.1)


def test_warmup_requests_are_sent_first_and_not_returned(tmp_path: Path) -> None:
    load = {"profile": "constant", "rate_rps": 20, "warmup_requests": 3}
    with PacedServer(ttft_s=0.05, gap_s=0.01, tokens=3) as server:
        results = generate(server, tmp_path, load)
    assert len(server.served) == N + 3
    first_measured = min(r.actual_send_at or 0.0 for r in results)
    warm_ended = sorted(s.ended for s in server.served)[2]
    assert warm_ended <= first_measured  # the schedule starts after the warm-up


def test_closed_loop_records_actual_send_times_only(tmp_path: Path) -> None:
    with PacedServer(ttft_s=0.05, gap_s=0.01, tokens=3) as server:
        results = generate(server, tmp_path, {"profile": "concurrent", "concurrency": 2})
    assert server.max_in_flight == 2
    assert all(r.intended_send_at is None and r.actual_send_at is not None for r in results)
