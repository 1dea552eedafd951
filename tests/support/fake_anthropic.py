"""A loopback server that speaks the Anthropic Messages API, answering with the REAL
embedded SmolLM2 (llama.cpp in this process), so replies, token counts and timings
are real; only the wire format is Anthropic's.

``POST /v1/messages``: a JSON ``message`` reply, or with ``"stream": true`` the SSE
events message_start, content_block_start, ping, content_block_delta (one per token,
sent as it is generated), content_block_stop, message_delta (stop_reason, usage) and
message_stop. Usage is exact: prompt tokens of the rendered chat template, generated
tokens up to the end-of-generation token.

Faults are injected on demand: ``server.faults.append(Fault(...))`` makes the next
request fail with that HTTP status and Anthropic error body (optionally with
``Retry-After``), or, with ``mid_stream=True``, fail inside a 200 stream after
message_start, as Anthropic does when it overloads mid-reply; its ``message`` may
echo the request's key. Every request is recorded (headers, body) in
``server.requests``.
"""

from __future__ import annotations

import codecs
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import llama_cpp
import loopback

from fleetbench.backends import Message
from fleetbench.backends.chat_template import ChatTemplate
from fleetbench.catalog import embedded_model_path


@dataclass
class Fault:
    status: int = 529
    error_type: str = "overloaded_error"
    retry_after: str | None = None
    mid_stream: bool = False  # a 200 stream that breaks off with an error event
    message: str | None = None  # "{key}" becomes the request's x-api-key (an echo)


@dataclass
class Seen:
    headers: dict[str, str]
    body: dict[str, Any]
    at: float  # time.monotonic() on arrival


class SmolGenerator:
    """Token-by-token generation on the embedded model, one request at a time."""

    def __init__(self, n_ctx: int = 1024) -> None:
        self.llm = llama_cpp.Llama(
            model_path=str(embedded_model_path()), n_ctx=n_ctx, n_threads=2, verbose=False
        )
        meta: dict[str, str] = self.llm.metadata
        self.template = ChatTemplate(meta["tokenizer.chat_template"])
        self.lock = threading.Lock()

    def prompt_tokens(self, body: dict[str, Any]) -> list[int]:
        messages = [Message(role="system", content=body["system"])] if body.get("system") else []
        for m in body["messages"]:
            content = m["content"]
            if isinstance(content, list):  # content blocks
                content = "".join(b.get("text", "") for b in content)
            messages.append(Message(role=m["role"], content=content))
        prompt = self.template.render(messages)
        return list(self.llm.tokenize(prompt.encode(), add_bos=True, special=True))

    def stream(self, tokens: list[int], body: dict[str, Any]) -> Iterator[str]:
        """Text pieces as tokens come; sets ``self.stop_reason``/``self.output_tokens``."""
        llm, vocab = self.llm, self.llm._model.vocab
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        stops: list[str] = body.get("stop_sequences") or []
        text, self.output_tokens, self.stop_reason, self.stop_sequence = "", 0, "max_tokens", None
        llm.set_seed(42)
        for token in llm.generate(
            tokens,
            temp=float(body.get("temperature", 1.0)),
            top_p=float(body.get("top_p", 1.0)),
            top_k=int(body.get("top_k", 0)),
            reset=True,
        ):
            if llama_cpp.llama_vocab_is_eog(vocab, token):
                self.stop_reason = "end_turn"
                return
            self.output_tokens += 1
            piece = decoder.decode(llm.detokenize([token]))
            hit = next((s for s in stops if s in text + piece), None)
            if hit is not None:
                cut = (text + piece).index(hit)
                self.stop_reason, self.stop_sequence = "stop_sequence", hit
                if cut > len(text):
                    yield (text + piece)[len(text) : cut]
                return
            text += piece
            if piece:
                yield piece
            if self.output_tokens >= int(body["max_tokens"]):
                return


class FakeAnthropic:
    def __init__(self, generator: SmolGenerator | None = None) -> None:
        self.generator = generator or SmolGenerator()
        self.faults: list[Fault] = []
        self.requests: list[Seen] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return loopback.root_url(self._server)

    def start(self) -> FakeAnthropic:
        self._server = loopback.serve(_handler(self))
        return self

    def stop(self) -> None:
        loopback.stop(self._server)
        self._server = None


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def _error_body(error_type: str, message: str | None = None) -> dict[str, Any]:
    text = f"fake {error_type}" if message is None else message
    return {"type": "error", "error": {"type": error_type, "message": text}}


def _handler(fake: FakeAnthropic) -> type[BaseHTTPRequestHandler]:
    class Handler(loopback.QuietHandler):
        def do_POST(self) -> None:
            body = self.read_json()
            fake.requests.append(Seen(dict(self.headers.items()), body, time.monotonic()))
            if self.path.split("?")[0] != "/v1/messages":
                self.send_json(404, _error_body("not_found_error"))
                return
            fault = fake.faults.pop(0) if fake.faults else None
            if fault is not None and not fault.mid_stream:
                extra = {"retry-after": fault.retry_after} if fault.retry_after else {}
                self.send_json(fault.status, self._error(fault), extra)
                return
            with fake.generator.lock:
                if body.get("stream"):
                    self._stream(body, fault)
                else:
                    self._whole(body)

        def _error(self, fault: Fault) -> dict[str, Any]:
            key = self.headers.get("x-api-key", "")
            message = None if fault.message is None else fault.message.replace("{key}", key)
            return _error_body(fault.error_type, message)

        def _message(self, body: dict[str, Any], n_in: int) -> dict[str, Any]:
            return {
                "id": f"msg_{len(fake.requests)}",
                "type": "message",
                "role": "assistant",
                "model": body["model"],
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": n_in, "output_tokens": 0},
            }

        def _whole(self, body: dict[str, Any]) -> None:
            gen = fake.generator
            tokens = gen.prompt_tokens(body)
            text = "".join(gen.stream(tokens, body))
            message = self._message(body, len(tokens))
            message.update(
                content=[{"type": "text", "text": text}],
                stop_reason=gen.stop_reason,
                stop_sequence=gen.stop_sequence,
            )
            message["usage"]["output_tokens"] = gen.output_tokens
            self.send_json(200, message)

        def _stream(self, body: dict[str, Any], fault: Fault | None) -> None:
            gen = fake.generator
            tokens = gen.prompt_tokens(body)
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("cache-control", "no-cache")
            self.end_headers()
            w = self.wfile
            w.write(
                _sse(
                    "message_start",
                    {"type": "message_start", "message": self._message(body, len(tokens))},
                )
            )
            if fault is not None:  # overloaded mid-reply: an error event inside the 200
                w.write(_sse("error", self._error(fault)))
                w.flush()
                return
            w.write(
                _sse(
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": 0,
                        "content_block": {"type": "text", "text": ""},
                    },
                )
            )
            w.write(_sse("ping", {"type": "ping"}))
            w.flush()
            for piece in gen.stream(tokens, body):
                w.write(
                    _sse(
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": 0,
                            "delta": {"type": "text_delta", "text": piece},
                        },
                    )
                )
                w.flush()
            w.write(_sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
            w.write(
                _sse(
                    "message_delta",
                    {
                        "type": "message_delta",
                        "delta": {
                            "stop_reason": gen.stop_reason,
                            "stop_sequence": gen.stop_sequence,
                        },
                        "usage": {"output_tokens": gen.output_tokens},
                    },
                )
            )
            w.write(_sse("message_stop", {"type": "message_stop"}))
            w.flush()

    return Handler
