"""What the loopback test servers share: an HTTP server on 127.0.0.1 (a free port)
served from a daemon thread, and a quiet handler that reads and answers JSON.

Each server keeps its own handler (its routes and wire format) and its own
``protocol_version``: HTTP/1.0, the default, ends a reply without a length when the
connection closes, which the streaming servers rely on.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def serve(
    handler: type[BaseHTTPRequestHandler],
    server_class: type[ThreadingHTTPServer] = ThreadingHTTPServer,
) -> ThreadingHTTPServer:
    """Start ``handler`` on 127.0.0.1, a free port, in a daemon thread (each request in
    a daemon thread of its own: ``ThreadingHTTPServer.daemon_threads``)."""
    httpd = server_class(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def root_url(httpd: ThreadingHTTPServer | None) -> str:
    """``http://127.0.0.1:PORT`` of a started server."""
    assert httpd is not None
    return f"http://127.0.0.1:{httpd.server_address[1]}"


def stop(httpd: ThreadingHTTPServer | None) -> None:
    """Stop serving and close the socket (nothing to do if never started)."""
    if httpd is not None:
        httpd.shutdown()
        httpd.server_close()


class QuietHandler(BaseHTTPRequestHandler):
    """A handler that logs nothing (quiet test output) and speaks JSON."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def read_body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def read_json(self) -> Any:
        return json.loads(self.read_body())

    def send_body(
        self,
        status: int,
        body: bytes,
        kind: str = "application/json",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """A whole reply: status, type, length, any ``headers``, then ``body``."""
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def send_json(
        self, status: int, payload: Any, headers: Mapping[str, str] | None = None
    ) -> None:
        self.send_body(status, json.dumps(payload).encode(), headers=headers)
