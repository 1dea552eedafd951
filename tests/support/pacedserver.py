"""A loopback OpenAI-compatible server with fixed delays, for timing tests.

It generates nothing: every streamed chat reply is ``tokens`` chunks (``"t0 "``,
``"t1 "``, …), the first ``ttft_s`` after the request arrived and one every ``gap_s``
after it, then a ``finish_reason`` chunk (with ``usage`` unless ``usage=False``) and
``[DONE]``. Each request gets its own thread, so concurrent requests overlap fully —
unlike ``llama_cpp.server``, which serialises them — and the server's throughput is
known in advance; ``capacity=N`` serves at most N at once, the rest wait for a free
slot (a server of known capacity: N ÷ one reply's time requests per
second). It records, server side, when each request arrived and when its
reply ended (``time.time()``) and the most requests in flight at once. ``GET
/v1/models`` lists ``MODEL``.

Used where a test needs timings it can compute by hand (throughput under concurrency);
replies and token counts of a real model come from ``llamaserver``.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any

import loopback

MODEL = "paced"


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # open-loop bursts: no connection refused by the backlog


@dataclass
class Served:
    arrived: float
    ended: float = 0.0


@dataclass
class PacedServer:
    ttft_s: float = 0.3
    gap_s: float = 0.05
    tokens: int = 10
    usage: bool = True
    capacity: int | None = None
    served: list[Served] = field(default_factory=list)
    max_in_flight: int = 0
    _in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _httpd: ThreadingHTTPServer | None = None
    _slots: threading.Semaphore | None = None

    def reply_s(self) -> float:
        """One reply's time once it is served: first token, then the gaps."""
        return self.ttft_s + (self.tokens - 1) * self.gap_s

    @property
    def base_url(self) -> str:
        return loopback.root_url(self._httpd) + "/v1"

    def window_s(self) -> float:
        """First request arrived -> last reply ended, as the server saw it."""
        return max(s.ended for s in self.served) - min(s.arrived for s in self.served)

    def __enter__(self) -> PacedServer:
        server = self

        class Handler(loopback.QuietHandler):
            def do_GET(self) -> None:
                if self.path.rstrip("/") != "/v1/models":
                    self.send_error(404)
                    return
                self.send_json(200, {"object": "list", "data": [{"id": MODEL, "object": "model"}]})

            def do_POST(self) -> None:
                record = Served(arrived=time.time())
                self.read_body()
                if self.path != "/v1/chat/completions":
                    self.send_error(404)
                    return
                if server._slots is not None:
                    server._slots.acquire()
                server._enter()
                try:
                    self._stream()
                finally:
                    record.ended = time.time()
                    server._leave(record)
                    if server._slots is not None:
                        server._slots.release()

            def _stream(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                time.sleep(server.ttft_s)
                for i in range(server.tokens):
                    if i:
                        time.sleep(server.gap_s)
                    self._event({"choices": [{"index": 0, "delta": {"content": f"t{i} "}}]})
                last: dict[str, Any] = {
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]
                }
                if server.usage:
                    last["usage"] = {"prompt_tokens": 5, "completion_tokens": server.tokens}
                self._event(last)
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()

            def _event(self, payload: dict[str, Any]) -> None:
                self.wfile.write(f"data: {json.dumps(payload)}\n\n".encode())
                self.wfile.flush()

        if self.capacity is not None:
            self._slots = threading.Semaphore(self.capacity)
        self._httpd = loopback.serve(Handler, _Server)
        return self

    def __exit__(self, *exc: object) -> None:
        loopback.stop(self._httpd)

    def _enter(self) -> None:
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def _leave(self, record: Served) -> None:
        with self._lock:
            self._in_flight -= 1
            self.served.append(record)
