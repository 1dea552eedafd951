"""A loopback pass-through proxy that times the requests it relays, as a bare client would.

It listens on 127.0.0.1 (asyncio streams, HTTP/1.1 with keep-alive) and relays every
request to the upstream server through one bare ``httpx.AsyncClient.stream``, byte for
byte: the request body as received; each body chunk of the reply written downstream
(re-framed as one HTTP chunk) and drained as soon as it arrives, before the proxy
looks at it. So the client in front (fleetbench) and the proxy see the same requests,
and whatever the server does (stalls, drift) hits both.

For each ``POST`` to ``timed_path`` with a 200 reply it records, with ``perf_counter``:
start = its request head received; each content-bearing SSE event's arrival (the
upstream chunk that completed it); end = the upstream body exhausted, and the reply
text. Figures as the bare client defines them: TTFT = first content event - start,
inter-token = (last - first) ÷ (events - 1), latency = end - start. Other requests
(``/models``, ``/extras/tokenize``) pass through unrecorded. ``relay_s`` holds the
proxy's own time per relayed chunk (arrival -> written and drained downstream): the
delay it adds to what the client in front sees, beside the loopback hops.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

_HOP = {"host", "connection", "content-length", "transfer-encoding", "keep-alive"}


@dataclass
class Timed:
    """One relayed chat request, timed at the proxy."""

    messages: Any
    start: float
    first: float | None = None
    last: float | None = None
    events: int = 0
    end: float = 0.0
    parts: list[str] = field(default_factory=list)
    first_relay_s: float | None = None  # the proxy's own time on the first content chunk

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def figures(self) -> dict[str, float | None]:
        first, last = self.first, self.last
        return {
            "ttft_s": None if first is None else first - self.start,
            "itl_s": (last - first) / (self.events - 1)
            if first is not None and last is not None and self.events >= 2
            else None,
            "latency_s": self.end - self.start,
        }

    def feed(self, line: bytes, now: float) -> None:
        if not line.startswith(b"data:") or line[5:].strip() == b"[DONE]":
            return
        for choice in json.loads(line[5:]).get("choices") or []:
            content = (choice.get("delta") or {}).get("content")
            if content:
                self.first = now if self.first is None else self.first
                self.last, self.events = now, self.events + 1
                self.parts.append(content)


class TimingProxy:
    """Run inside the caller's event loop: ``await start()``, ``await stop()``."""

    def __init__(self, upstream_root: str, timed_path: str = "/v1/chat/completions") -> None:
        self.upstream = upstream_root.rstrip("/")
        self.timed_path = timed_path
        self.records: list[Timed] = []
        self.relay_s: list[float] = []
        self.passed: dict[str, int] = {}  # untimed requests by path
        self.port = 0
        self._server: asyncio.Server | None = None
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def start(self, connections: int) -> str:
        pool = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(900.0), limits=pool)
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.base_url

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    def take(self) -> list[Timed]:
        """The records so far, in arrival order; starts a new list."""
        records, self.records = self.records, []
        return records

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while await self._one(reader, writer):
                pass
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass  # the client hung up, or the proxy is stopping
        finally:
            self._tasks.discard(task)
            writer.transport.abort()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        head = await reader.readuntil(b"\r\n\r\n")
        start = time.perf_counter()  # the request is here (its head; the body follows)
        request_line, *lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
        method, target, _ = request_line.split(" ", 2)
        headers = dict(_header(line) for line in lines if ":" in line)
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        path = target.split("?")[0]
        timed = None
        if method == "POST" and path == self.timed_path:
            timed = Timed(json.loads(body).get("messages"), start)
        else:
            self.passed[path] = self.passed.get(path, 0) + 1
        return await self._relay(method, target, headers, body, writer, timed)

    async def _relay(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes,
        writer: asyncio.StreamWriter,
        timed: Timed | None,
    ) -> bool:
        assert self._client is not None
        upstream_headers = {k: v for k, v in headers.items() if k not in _HOP}
        async with self._client.stream(
            method, self.upstream + target, headers=upstream_headers, content=body
        ) as response:
            head = f"HTTP/1.1 {response.status_code} {response.reason_phrase}\r\n"
            for key, value in response.headers.items():
                if key.lower() not in _HOP:
                    head += f"{key}: {value}\r\n"
            writer.write((head + "transfer-encoding: chunked\r\n\r\n").encode("latin-1"))
            pending = b""
            async for chunk in response.aiter_raw():
                now = time.perf_counter()
                writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                await writer.drain()
                if timed is None:
                    continue
                relay = time.perf_counter() - now
                self.relay_s.append(relay)
                *complete, pending = (pending + chunk).split(b"\n")
                for line in complete:
                    timed.feed(line.rstrip(b"\r"), now)
                if timed.first is not None and timed.first_relay_s is None:
                    timed.first_relay_s = relay
            end = time.perf_counter()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        if timed is not None and response.status_code == 200:
            timed.feed(pending.rstrip(b"\r"), end)
            timed.end = end
            self.records.append(timed)
        return True


def _header(line: str) -> tuple[str, str]:
    key, _, value = line.partition(":")
    return key.strip().lower(), value.strip()
