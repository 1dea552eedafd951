"""A loopback OpenAI-compatible server that answers with scripted ``tool_calls``.

It stands in for a model that calls tools well (the real small model does not): a
request's script is ``scripts[body["model"]]`` (each key is a served model, listed by
``GET /v1/models``), and its n-th reply answers a conversation holding n-1 assistant
turns. A
reply is a list of calls ``(name, arguments)`` (arguments sent as written, so they may
be broken JSON) or a string: plain content, no calls. Past the end of a script it calls
``done``. Streamed when the request says ``stream: true``: each call's first delta
brings its id and name, then its arguments arrive in three pieces, after some content
when the script gives it; ``finish_reason`` is ``tool_calls`` (``stop`` without calls)
and every reply carries ``usage`` (characters ÷ 4). Call ids are ``call_T_I`` (turn,
position). ``requests`` holds every chat body received; ``authorization`` the headers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import loopback

Reply = list[tuple[str, str]] | str


@dataclass
class ToolServer:
    scripts: dict[str, list[Reply]]
    requests: list[dict[str, Any]] = field(default_factory=list)
    authorization: list[str] = field(default_factory=list)
    _httpd: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        return loopback.root_url(self._httpd) + "/v1"

    def __enter__(self) -> ToolServer:
        self._httpd = loopback.serve(_handler(self))
        return self

    def __exit__(self, *exc: object) -> None:
        loopback.stop(self._httpd)
        self._httpd = None

    def reply_for(self, body: dict[str, Any]) -> Reply:
        script = self.scripts.get(body["model"], [])
        turn = sum(m["role"] == "assistant" for m in body["messages"])
        return script[turn] if turn < len(script) else [("done", "{}")]


def _calls(reply: Reply, turn: int) -> list[dict[str, Any]]:
    if isinstance(reply, str):
        return []
    return [
        {"index": i, "id": f"call_{turn}_{i}", "type": "function",
         "function": {"name": name, "arguments": arguments}}
        for i, (name, arguments) in enumerate(reply)
    ]  # fmt: skip


def _handler(server: ToolServer) -> type[BaseHTTPRequestHandler]:
    class Handler(loopback.QuietHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self.send_json(200, {"data": [{"id": name} for name in server.scripts]})

        def do_POST(self) -> None:
            body = self.read_json()
            server.requests.append(body)
            server.authorization.append(self.headers.get("authorization", ""))
            reply = server.reply_for(body)
            turn = sum(m["role"] == "assistant" for m in body["messages"]) + 1
            calls = _calls(reply, turn)
            content = reply if isinstance(reply, str) else ""
            prompt = sum(len(str(m.get("content") or "")) for m in body["messages"]) // 4
            written = len(content) + sum(len(c["function"]["arguments"]) for c in calls)
            usage = {"prompt_tokens": prompt, "completion_tokens": max(written // 4, 1),
                     "total_tokens": prompt + max(written // 4, 1)}  # fmt: skip
            finish = "tool_calls" if calls else "stop"
            if not body.get("stream"):
                message: dict[str, Any] = {"role": "assistant", "content": content or None}
                if calls:
                    message["tool_calls"] = [{k: v for k, v in c.items() if k != "index"}
                                             for c in calls]  # fmt: skip
                choice = {"index": 0, "message": message, "finish_reason": finish}
                out = {"id": "x", "object": "chat.completion", "model": body["model"],
                       "choices": [choice], "usage": usage}  # fmt: skip
                self.send_json(200, out)
                return
            chunks: list[dict[str, Any]] = [{"role": "assistant", "content": content}]
            for call in calls:
                args, fn = call["function"]["arguments"], call["function"]
                chunks.append({"tool_calls": [{"index": call["index"], "id": call["id"],
                               "type": "function",
                               "function": {"name": fn["name"], "arguments": ""}}]})  # fmt: skip
                third = max(len(args) // 3, 1)
                for piece in (args[:third], args[third : 2 * third], args[2 * third :]):
                    if piece:
                        chunks.append({"tool_calls": [{"index": call["index"],
                                       "function": {"arguments": piece}}]})  # fmt: skip
            events = [{"choices": [{"index": 0, "delta": d, "finish_reason": None}]}
                      for d in chunks]  # fmt: skip
            events.append({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}],
                           "usage": usage})  # fmt: skip
            data = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
            self.send_body(200, data.encode(), "text/event-stream")

    return Handler
