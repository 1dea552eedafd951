"""A loopback server speaking Ollama's model API (Ollama is not installable here).

``GET /api/tags`` lists ``models`` in Ollama's shape and ``POST /api/show`` answers
each one's details and ``model_info`` (an unknown model: 404, as Ollama does). With
an ``upstream`` (a real OpenAI-compatible server, e.g. llama_cpp.server on the
embedded model), ``/v1/...`` requests are relayed there with the served model name
replaced by the upstream's, so a discovered model really runs. Requests are recorded.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

MODELS: list[dict[str, Any]] = [
    {
        "name": "smollm2:135m",
        "model": "smollm2:135m",
        "size": 270898672,
        "digest": "9077fe9d2ae1a4a41a868836b56b8163731a8fe16621397028c2c76f838c6907",
        "details": {
            "format": "gguf",
            "family": "llama",
            "parameter_size": "134.52M",
            "quantization_level": "F16",
        },
        "context_length": 8192,
    },
    {
        "name": "qwen3:0.6b",
        "model": "qwen3:0.6b",
        "size": 522653767,
        "digest": "7df6b6e09427a769808717c0a93cadc4ae99ed4eb8bf5ca557c90846becea435",
        "details": {
            "format": "gguf",
            "family": "qwen3",
            "parameter_size": "751.63M",
            "quantization_level": "Q4_K_M",
        },
        "context_length": 40960,
    },
]


@dataclass
class OllamaServer:
    models: list[dict[str, Any]] = field(default_factory=lambda: list(MODELS))
    upstream: str | None = None  # OpenAI base URL ending in /v1
    upstream_model: str = ""
    seen: list[str] = field(default_factory=list)
    _httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> OllamaServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _reply(self, code: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                server.seen.append(f"GET {self.path}")
                if self.path == "/api/tags":
                    listed = [{k: v for k, v in m.items() if k != "context_length"}
                              for m in server.models]  # fmt: skip
                    self._reply(200, {"models": listed})
                elif self.path == "/api/version":
                    self._reply(200, {"version": "0.6.0"})
                elif self.path.startswith("/v1/"):
                    self._relay(None)
                else:
                    self._reply(404, {"error": "not found"})

            def do_POST(self) -> None:
                server.seen.append(f"POST {self.path}")
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path == "/api/show":
                    wanted = json.loads(body or b"{}").get("model")
                    found = [m for m in server.models if m["name"] == wanted]
                    if not found:
                        self._reply(404, {"error": f"model '{wanted}' not found"})
                        return
                    m = found[0]
                    family = m["details"]["family"]
                    self._reply(200, {
                        "details": m["details"],
                        "model_info": {"general.architecture": family,
                                       f"{family}.context_length": m["context_length"]},
                    })  # fmt: skip
                elif self.path.startswith("/v1/"):
                    self._relay(body)
                else:
                    self._reply(404, {"error": "not found"})

            def _relay(self, body: bytes | None) -> None:
                if server.upstream is None:
                    self._reply(404, {"error": "no upstream"})
                    return
                url = server.upstream + self.path[len("/v1") :]
                if body:
                    data = json.loads(body)
                    data["model"] = server.upstream_model or data.get("model")
                    body = json.dumps(data).encode()
                reply = httpx.request(
                    "POST" if body is not None else "GET",
                    url,
                    content=body,
                    headers={"Content-Type": "application/json"},
                    timeout=300,
                )
                self.send_response(reply.status_code)
                self.send_header("Content-Type", reply.headers.get("content-type", "text/plain"))
                self.send_header("Content-Length", str(len(reply.content)))
                self.end_headers()
                self.wfile.write(reply.content)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._httpd is not None
        self._httpd.shutdown()
        self._httpd.server_close()
