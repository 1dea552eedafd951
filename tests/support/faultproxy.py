"""A scripted HTTP proxy that injects faults in front of a real server.

It runs an asyncio server in a thread on 127.0.0.1 and forwards requests to the
upstream server, except where a script says otherwise. Scripts are per request: each
rule is a substring of the request body (say, a marker in the prompt; ``""`` matches
any request) with a list of actions, consumed one per matching request in arrival
order; without a pending action a request passes through unchanged. Only requests to
``fault_path`` (the chat completions) are scripted; tokenize calls always pass.

Actions: ``Status`` (an error reply, optionally with Retry-After), ``Stall`` (no
reply for N seconds, optionally after a few stream events), ``DropBeforeResponse``
(close the socket after reading the request), ``DropMidStream`` (relay a few stream
events, then cut the connection in the middle of the body).
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class Pass:
    pass


@dataclass(frozen=True)
class Status:
    code: int
    retry_after: str | None = None
    body: str = '{"error": {"message": "injected failure", "type": "server_error"}}'
    # "{auth}" in the body is replaced by the request's Authorization header (a server
    # that echoes the key in an error: the client must scrub it).


@dataclass(frozen=True)
class Stall:
    seconds: float = 60.0
    after_events: int | None = None  # None: before any reply; N: after N stream events


@dataclass(frozen=True)
class DropBeforeResponse:
    pass


@dataclass(frozen=True)
class DropMidStream:
    after_events: int = 3  # 0: cut the first body chunk in half (non-streamed replies)


Action = Pass | Status | Stall | DropBeforeResponse | DropMidStream


@dataclass(frozen=True)
class Seen:
    path: str
    action: str
    rule: str | None
    authorization: str | None
    body: str
    at: float = 0.0  # time.time() when the request arrived (its head and body read)


_DROP = {"host", "connection", "content-length", "transfer-encoding", "keep-alive"}


class FaultProxy:
    def __init__(self, upstream_root: str, fault_path: str = "/v1/chat/completions") -> None:
        self.upstream = upstream_root.rstrip("/")
        self.fault_path = fault_path
        self.port = 0
        self.seen: list[Seen] = []
        self.in_flight = 0  # scripted-path requests being answered now
        self.max_in_flight = 0
        self._rules: dict[str, list[Action]] = {}
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> str:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self.base_url

    async def _start(self) -> None:
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(300.0))
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    def __enter__(self) -> FaultProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def script(self, rules: dict[str, list[Action]]) -> None:
        """Replace the script; see the module docstring."""
        with self._lock:
            self._rules = {key: list(actions) for key, actions in rules.items()}
            self.seen = []
            self.max_in_flight = self.in_flight

    def attempts(self, marker: str) -> int:
        """Scripted-path requests whose body contained ``marker``."""
        with self._lock:
            return sum(1 for s in self.seen if s.path == self.fault_path and marker in s.body)

    def pending(self) -> int:
        with self._lock:
            return sum(len(actions) for actions in self._rules.values())

    def _choose(self, path: str, body: bytes, auth: str | None) -> Action:
        text = body.decode("utf-8", errors="replace")
        with self._lock:
            action: Action = Pass()
            rule = None
            if path == self.fault_path:
                for key, actions in self._rules.items():
                    if key in text and actions:
                        action, rule = actions.pop(0), key
                        break
            self.seen.append(Seen(path, type(action).__name__, rule, auth, text, time.time()))
            return action

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while await self._one(reader, writer):
                pass
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:  # the proxy is stopping
            pass
        finally:
            self._tasks.discard(task)
            writer.transport.abort()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        request_line, *lines = head.rstrip("\r\n").split("\r\n")
        method, target, _ = request_line.split(" ", 2)
        headers = dict(_header(line) for line in lines if ":" in line)
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        path = target.split("?")[0]
        action = self._choose(path, body, headers.get("authorization"))
        counted = path == self.fault_path
        if counted:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._act(action, method, target, headers, body, writer)
        finally:
            if counted:
                self.in_flight -= 1

    async def _act(
        self,
        action: Action,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes,
        writer: asyncio.StreamWriter,
    ) -> bool:
        if isinstance(action, Status):
            text = action.body.replace("{auth}", headers.get("authorization", ""))
            extra = f"retry-after: {action.retry_after}\r\n" if action.retry_after else ""
            payload = text.encode()
            writer.write(
                f"HTTP/1.1 {action.code} Injected\r\ncontent-type: application/json\r\n"
                f"content-length: {len(payload)}\r\n{extra}\r\n".encode()
                + payload
            )
            await writer.drain()
            return True
        if isinstance(action, DropBeforeResponse):
            return False
        if isinstance(action, Stall) and action.after_events is None:
            await asyncio.sleep(action.seconds)
            return False
        return await self._forward(method, target, headers, body, writer, action)

    async def _forward(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes,
        writer: asyncio.StreamWriter,
        action: Action,
    ) -> bool:
        assert self._client is not None
        upstream_headers = {k: v for k, v in headers.items() if k not in _DROP}
        request = self._client.build_request(
            method, self.upstream + target, headers=upstream_headers, content=body
        )
        response = await self._client.send(request, stream=True)
        try:
            head = f"HTTP/1.1 {response.status_code} {response.reason_phrase}\r\n"
            for key, value in response.headers.items():
                if key.lower() not in _DROP:
                    head += f"{key}: {value}\r\n"
            writer.write((head + "transfer-encoding: chunked\r\n\r\n").encode("latin-1"))
            events = 0
            async for chunk in response.aiter_raw():
                events += chunk.count(b"data:")
                cut = isinstance(action, DropMidStream) and events >= action.after_events
                if cut:  # announce the whole chunk, send half of it, hang up
                    writer.write(f"{len(chunk):x}\r\n".encode() + chunk[: len(chunk) // 2])
                    await writer.drain()
                    return False
                writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                await writer.drain()
                if isinstance(action, Stall) and events >= (action.after_events or 0):
                    await asyncio.sleep(action.seconds)  # mid-stream silence
                    return False
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            return True
        finally:
            await response.aclose()


def _header(line: str) -> tuple[str, str]:
    key, _, value = line.partition(":")
    return key.strip().lower(), value.strip()
