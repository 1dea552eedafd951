"""A loopback server speaking the Piston v2 execution API (Piston itself needs Docker).

``GET /api/v2/runtimes`` lists ``runtimes`` (default: python 3.12 with aliases py and
python3). ``POST /api/v2/execute`` really runs a python program in a subprocess with the
request's stdin and ``run_timeout`` (ms), answering Piston's shape: ``{language, version,
run: {stdout, stderr, output, code, signal, status, message}}``, ``status: "TO"`` and
``signal: "SIGKILL"`` after a time-out. Piston's error answers: an unknown language or
version is HTTP 400 ``{"message": "<lang>-<version> runtime is unknown"}``, a bad body
400 too. ``fail_execute`` makes every execute answer 500. Requests are recorded.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import loopback

RUNTIMES: list[dict[str, Any]] = [
    {"language": "python", "version": "3.12.0", "aliases": ["py", "python3"], "runtime": "cpython"},
    {"language": "bash", "version": "5.2.0", "aliases": ["sh"]},
]


@dataclass
class PistonServer:
    runtimes: list[dict[str, Any]] = field(default_factory=lambda: list(RUNTIMES))
    fail_execute: bool = False
    seen: list[str] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    _httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return loopback.root_url(self._httpd)

    def execute(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        lang, version = body.get("language"), body.get("version")
        runtime = next((r for r in self.runtimes if lang in (r["language"], *r["aliases"])
                        and version in (r["version"], "*")), None)  # fmt: skip
        if runtime is None:
            return 400, {"message": f"{lang}-{version} runtime is unknown"}
        files = body.get("files")
        if not isinstance(files, list) or not files or "content" not in files[0]:
            return 400, {"message": "files is required as an array"}
        timeout = float(body.get("run_timeout", 3000)) / 1000
        with tempfile.TemporaryDirectory() as tmp:
            main = Path(tmp, "main")
            main.write_text(files[0]["content"])
            argv = (
                [sys.executable, str(main)]
                if runtime["language"] == "python"
                else ["bash", str(main)]
            )
            try:
                proc = subprocess.run(argv, input=body.get("stdin", ""), capture_output=True,
                                      text=True, timeout=timeout, cwd=tmp)  # fmt: skip
                run = {"stdout": proc.stdout, "stderr": proc.stderr,
                       "output": proc.stdout + proc.stderr, "code": proc.returncode,
                       "signal": None, "status": "RE" if proc.returncode else None,
                       "message": None}  # fmt: skip
            except subprocess.TimeoutExpired as exc:
                out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
                run = {"stdout": out, "stderr": "", "output": out, "code": None,
                       "signal": "SIGKILL", "status": "TO", "message": "Timeout"}  # fmt: skip
        return 200, {"language": runtime["language"], "version": runtime["version"], "run": run}

    def __enter__(self) -> PistonServer:
        server = self

        class Handler(loopback.QuietHandler):
            def do_GET(self) -> None:
                server.seen.append(f"GET {self.path}")
                if self.path == "/api/v2/runtimes":
                    self.send_json(200, server.runtimes)
                else:
                    self.send_json(404, {"message": "Not found"})

            def do_POST(self) -> None:
                server.seen.append(f"POST {self.path}")
                raw = self.read_body()
                if self.path != "/api/v2/execute":
                    self.send_json(404, {"message": "Not found"})
                    return
                if server.fail_execute:
                    self.send_json(500, {"message": "internal error: isolate failed"})
                    return
                try:
                    body = json.loads(raw)
                except ValueError:
                    self.send_json(400, {"message": "invalid JSON body"})
                    return
                server.bodies.append(body)
                self.send_json(*server.execute(body))

        self._httpd = loopback.serve(Handler)
        return self

    def __exit__(self, *exc: object) -> None:
        loopback.stop(self._httpd)
