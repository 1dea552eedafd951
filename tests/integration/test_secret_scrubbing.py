"""No part of a key survives in an error or a log line, wherever a server echoes it.

A hostile loopback server (``echoserver``) puts the request's key at every offset of
its error bodies and stream lines, across every point where fleetbench cuts such text;
the results and the log must not hold any 12 characters of the key. The same for the
server check at load time, and for the credentials of a ``base_url``.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from backendctx import make_context
from echoserver import KINDS, EchoServer

from fleetbench.backends import GenerationRequest, GenerationSettings, Message
from fleetbench.backends.openai_http import OpenAIBackend, OpenAIOptions
from fleetbench.errors import BackendError

KEY = "SK-PLANTED-QXZRWVYTUKMN"  # 23 characters like the probe's; none in the filler
OFFSETS = range(0, 340)  # the cuts: 80 (stream events, formerly) and 300 (every error)


def fragments(secret: str, n: int = 12) -> list[str]:
    return [secret[i : i + n] for i in range(len(secret) - n + 1)]


def leaked(text: str, secret: str) -> list[str]:
    return [f for f in fragments(secret) if f in text]


@pytest.fixture(scope="module")
def echo() -> Iterator[EchoServer]:
    with EchoServer() as server:
        yield server


@pytest.fixture(autouse=True)
def planted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FB_ECHO_KEY", KEY)


def backend(base_url: str, tmp_path: Path, **options: Any) -> OpenAIBackend:
    opts = OpenAIOptions(
        base_url=base_url,
        model="echo",
        api_key_env="FB_ECHO_KEY",
        max_retries=1,
        backoff_base_s=0.0,
        backoff_max_s=0.0,
        concurrency=8,
        **options,
    )
    return OpenAIBackend(opts, make_context(tmp_path, model_id="someone/echo"))


def requests(kind: str) -> list[GenerationRequest]:
    settings = GenerationSettings(max_tokens=4)
    return [
        GenerationRequest(
            index=o, messages=[Message(role="user", content=f"[{kind} {o}]")], settings=settings
        )
        for o in OFFSETS
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_key_echoed_at_every_offset_never_survives_in_part(
    echo: EchoServer, tmp_path: Path, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    caplog.set_level(logging.DEBUG)
    b = backend(echo.base_url, tmp_path, stream=kind in ("event", "sse"))
    b.load()
    try:
        results = list(b.generate(requests(kind)))
    finally:
        b.close()
    assert len(results) == len(OFFSETS)
    for r in results:
        assert r.error, r  # every request failed, with its reason ...
        assert not leaked(r.error, KEY), (r.index, r.error)  # ... and no part of the key
        assert r.retries == (0 if kind == "json" else 1)
    whole = {r.index for r in results if "***" in (r.error or "")}
    assert 0 in whole and 200 in whole  # whole keys before the cut are replaced
    assert not leaked(caplog.text, KEY)  # retry lines quote the same texts
    assert any("retry 1" in m for m in caplog.messages) == (kind != "json")
    assert ("Bearer " + KEY) in {auth for _, auth in echo.seen}  # the key was really sent


def test_server_check_never_quotes_part_of_the_key(echo: EchoServer, tmp_path: Path) -> None:
    for offset in range(240, 320):
        b = backend(f"{echo.root_url}/refuse-{offset}/v1", tmp_path)
        with pytest.raises(BackendError, match="refused the API key from") as raised:
            b.load()
        b.close()
        assert not leaked(str(raised.value), KEY), (offset, str(raised.value))


PASSWORD = "PW-9F8E7D6C5B4A39281706"


def test_base_url_credentials_are_used_but_never_kept(
    echo: EchoServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("FB_ECHO_KEY")
    url = echo.base_url.replace("http://", f"http://fbuser:{PASSWORD}@")
    options = OpenAIOptions(base_url=url, model="echo", max_retries=0)
    dumped = options.model_dump_json()
    assert PASSWORD not in dumped and "fbuser" not in dumped
    assert options.base_url == echo.base_url.replace("//", "//***@")  # what is stored
    assert OpenAIOptions.model_validate_json(dumped) == options  # the worker's copy
    b = OpenAIBackend(options, make_context(tmp_path, model_id="someone/echo"))
    assert PASSWORD not in repr(b)
    caplog.set_level(logging.DEBUG)
    echo.seen.clear()
    info = b.load()
    try:
        results = list(b.generate(requests("json")[250:300]))
    finally:
        b.close()
    basic = "Basic " + base64.b64encode(f"fbuser:{PASSWORD}".encode()).decode()
    assert {auth for _, auth in echo.seen} == {basic}  # used for /models and every request
    assert PASSWORD not in info.model_dump_json()
    for r in results:
        assert r.error and not leaked(r.error, PASSWORD), r.error
    assert not leaked(caplog.text, PASSWORD)
