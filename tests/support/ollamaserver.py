"""A loopback server speaking Ollama's model API (Ollama is not installable here).

``GET /api/tags`` lists ``models`` in Ollama's shape and ``POST /api/show`` answers
each one's details and ``model_info`` (an unknown model: 404, as Ollama does). With
an ``upstream`` (a real OpenAI-compatible server, e.g. llama_cpp.server on the
embedded model), ``/v1/...`` requests are relayed there with the served model name
replaced by the upstream's, so a discovered model really runs. Requests are recorded.

The native endpoints ``POST /api/chat`` (``messages``, reply ``message.content``) and
``POST /api/generate`` (``prompt``, reply ``response``) answer as Ollama documents
them: with ``stream`` (the default) NDJSON objects with ``done: false``, then a final
``done: true`` object with ``done_reason`` and the counts and durations (ns); without,
that final object alone with the whole reply. The text comes from the upstream,
streamed token by token; ``prompt_eval_count`` is the upstream tokenizer's count of
the messages' text, ``eval_count`` the streamed tokens, the prompt-eval duration the
time to the first token, the eval duration the rest. The upstream has the model
loaded already, so ``load_duration`` is ``load_ns`` on a model's first request and
``LOADED_NS`` after it, as Ollama reports a model already in memory. Every final
object is kept in ``finals``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any

import httpx
import loopback

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


LOADED_NS = 20_000  # load_duration of a request to a model already in memory


@dataclass
class OllamaServer:
    models: list[dict[str, Any]] = field(default_factory=lambda: list(MODELS))
    upstream: str | None = None  # OpenAI base URL ending in /v1
    upstream_model: str = ""
    seen: list[str] = field(default_factory=list)
    load_ns: int = 250_000_000  # load_duration of a model's first request
    finals: list[dict[str, Any]] = field(default_factory=list)
    _loaded: set[str] = field(default_factory=set)
    _httpd: ThreadingHTTPServer | None = None

    def native(self, path: str, body: dict[str, Any], started: float) -> Any:
        """The objects of a native reply, as they are produced (a generator), or an
        (HTTP status, error object) pair when the request cannot be answered."""
        name = body.get("model")
        if not any(m["name"] == name for m in self.models):
            return 404, {"error": f"model '{name}' not found"}
        if self.upstream is None:
            return 500, {"error": "no upstream"}
        chat = path == "/api/chat"
        messages = body.get("messages") if chat else [
            {"role": "user", "content": str(body.get("prompt") or "")}]  # fmt: skip
        if not isinstance(messages, list):
            return 400, {"error": "messages: expected a list"}
        return self._generate(name, chat, messages, body.get("options") or {}, started)

    def _generate(
        self, name: str, chat: bool, messages: list[dict[str, Any]],
        options: dict[str, Any], started: float,
    ) -> Any:  # fmt: skip
        assert self.upstream is not None
        load = self.load_ns if name not in self._loaded else LOADED_NS
        self._loaded.add(name)
        root = self.upstream.removesuffix("/v1")
        text = "\n".join(str(m.get("content") or "") for m in messages)
        tokens = httpx.post(f"{root}/extras/tokenize", json={"input": text}, timeout=60)
        prompt_count = len(tokens.json()["tokens"])
        request = {
            "model": self.upstream_model or name,
            "messages": messages,
            "stream": True,
            "max_tokens": options.get("num_predict", 128),
            **{k: options[k] for k in ("temperature", "top_p", "top_k", "min_p",
                                        "repeat_penalty", "seed", "stop") if k in options},
        }  # fmt: skip
        first: float | None = None
        count, reason = 0, "stop"
        with httpx.stream("POST", f"{self.upstream}/chat/completions", json=request,
                          timeout=300) as reply:  # fmt: skip
            for line in reply.iter_lines():
                if not line.startswith("data:") or line[5:].strip() == "[DONE]":
                    continue
                choice = (json.loads(line[5:]).get("choices") or [{}])[0]
                piece = (choice.get("delta") or {}).get("content")
                if piece:
                    first = first if first is not None else time.perf_counter()
                    count += 1
                    yield _chunk(name, chat, piece, done=False)
                if choice.get("finish_reason"):
                    reason = "length" if choice["finish_reason"] == "length" else "stop"
        end = time.perf_counter()
        first = first if first is not None else end
        final = _chunk(name, chat, "", done=True) | {
            "done_reason": reason,
            "total_duration": int((end - started) * 1e9) + load,
            "load_duration": load,
            "prompt_eval_count": prompt_count,
            "prompt_eval_duration": int((first - started) * 1e9),
            "eval_count": count,
            "eval_duration": int((end - first) * 1e9),
        }
        self.finals.append(final)
        yield final

    @property
    def url(self) -> str:
        return loopback.root_url(self._httpd)

    def __enter__(self) -> OllamaServer:
        server = self

        class Handler(loopback.QuietHandler):
            def do_GET(self) -> None:
                server.seen.append(f"GET {self.path}")
                if self.path == "/api/tags":
                    listed = [{k: v for k, v in m.items() if k != "context_length"}
                              for m in server.models]  # fmt: skip
                    self.send_json(200, {"models": listed})
                elif self.path == "/api/version":
                    self.send_json(200, {"version": "0.6.0"})
                elif self.path.startswith("/v1/"):
                    self._relay(None)
                else:
                    self.send_json(404, {"error": "not found"})

            def do_POST(self) -> None:
                server.seen.append(f"POST {self.path}")
                body = self.read_body()
                if self.path == "/api/show":
                    wanted = json.loads(body or b"{}").get("model")
                    found = [m for m in server.models if m["name"] == wanted]
                    if not found:
                        self.send_json(404, {"error": f"model '{wanted}' not found"})
                        return
                    m = found[0]
                    family = m["details"]["family"]
                    self.send_json(200, {
                        "details": m["details"],
                        "model_info": {"general.architecture": family,
                                       f"{family}.context_length": m["context_length"]},
                    })  # fmt: skip
                elif self.path in ("/api/chat", "/api/generate"):
                    self._native(json.loads(body or b"{}"), time.perf_counter())
                elif self.path.startswith("/v1/"):
                    self._relay(body)
                else:
                    self.send_json(404, {"error": "not found"})

            def _native(self, request: dict[str, Any], started: float) -> None:
                produced = server.native(self.path, request, started)
                if isinstance(produced, tuple):
                    self.send_json(*produced)
                    return
                if request.get("stream") is False:  # the final object, the text joined
                    parts = list(produced)
                    key = "message" if self.path == "/api/chat" else "response"
                    text = "".join(
                        p["message"]["content"] if key == "message" else p["response"]
                        for p in parts
                    )
                    whole = parts[-1]
                    chat = key == "message"
                    whole[key] = {"role": "assistant", "content": text} if chat else text
                    self.send_json(200, whole)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/x-ndjson")
                self.end_headers()  # HTTP/1.0: the reply ends when the connection closes
                for part in produced:
                    self.wfile.write(json.dumps(part).encode() + b"\n")
                    self.wfile.flush()

            def _relay(self, body: bytes | None) -> None:
                if server.upstream is None:
                    self.send_json(404, {"error": "no upstream"})
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
                kind = reply.headers.get("content-type", "text/plain")
                self.send_body(reply.status_code, reply.content, kind)

        self._httpd = loopback.serve(Handler)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._httpd is not None
        loopback.stop(self._httpd)


def _chunk(name: str, chat: bool, piece: str, done: bool) -> dict[str, Any]:
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    text = {"message": {"role": "assistant", "content": piece}} if chat else {"response": piece}
    return {"model": name, "created_at": created, **text, "done": done}
