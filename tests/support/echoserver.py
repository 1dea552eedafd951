"""A hostile loopback OpenAI-compatible server that echoes the client's credentials.

Every chat request fails, in the way the marker ``[KIND OFFSET]`` in its last message
asks, with the request's credential placed ``OFFSET`` characters into the text (after
a filler without whitespace, so offsets are exact after whitespace is collapsed):

* ``json``: HTTP 401 with ``{"error": {"message": ...}}`` (fails at once);
* ``text``: HTTP 500 with a plain-text body (retryable: retried, then failed);
* ``event``: a 200 stream whose data line is not JSON (retryable);
* ``sse``: a 200 stream with an error event ``{"error": {"message": ...}}`` (retryable).

The credential is the bearer token of the Authorization header, or for Basic auth the
decoded ``user:password`` (what a server could echo). ``GET .../models`` lists
``MODEL``, except under a path ``/refuse-OFFSET/``: then it answers 401 with the
credential at that offset. Requests are recorded (path, Authorization header).
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import loopback

MODEL = "echo"
KINDS = ("json", "text", "event", "sse")
FILLER = "abcdefghijklmnopqrstuvwxyz0123456789" * 40
_MARKER = re.compile(r"\[(json|text|event|sse) (\d+)\]")
_REFUSE = re.compile(r"/refuse-(\d+)/")


def credential(authorization: str) -> str:
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "basic":
        return base64.b64decode(value).decode()
    return value


def placed(secret: str, offset: int) -> str:
    return FILLER[:offset] + secret + " (echoed back)"


@dataclass
class EchoServer:
    seen: list[tuple[str, str]] = field(default_factory=list)
    _httpd: ThreadingHTTPServer | None = None

    @property
    def root_url(self) -> str:
        return loopback.root_url(self._httpd)

    @property
    def base_url(self) -> str:
        return self.root_url + "/v1"

    def __enter__(self) -> EchoServer:
        self._httpd = loopback.serve(_handler(self))
        return self

    def __exit__(self, *exc: object) -> None:
        loopback.stop(self._httpd)
        self._httpd = None


def _handler(server: EchoServer) -> type[BaseHTTPRequestHandler]:
    class Handler(loopback.QuietHandler):
        protocol_version = "HTTP/1.1"

        def _secret(self) -> str:
            auth = self.headers.get("authorization", "")
            server.seen.append((self.path, auth))
            return credential(auth)

        def do_GET(self) -> None:
            secret = self._secret()
            refuse = _REFUSE.search(self.path)
            if refuse:
                error = {"error": {"message": placed(secret, int(refuse.group(1)))}}
                self.send_json(401, error)
                return
            self.send_json(200, {"data": [{"id": MODEL}]})

        def do_POST(self) -> None:
            secret = self._secret()
            body = self.read_json()
            marker = _MARKER.search(body["messages"][-1]["content"])
            if marker is None:
                self.send_body(400, b'{"error": {"message": "no marker"}}')
                return
            kind, text = marker.group(1), placed(secret, int(marker.group(2)))
            if kind == "json":
                self.send_json(401, {"error": {"message": text}})
            elif kind == "text":
                self.send_body(500, text.encode(), "text/plain")
            elif kind == "event":
                self.send_body(200, f"data: {text}\n\n".encode(), "text/event-stream")
            else:
                event = json.dumps({"error": {"message": text}})
                self.send_body(200, f"data: {event}\n\n".encode(), "text/event-stream")

    return Handler
