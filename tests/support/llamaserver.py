"""A real ``python -m llama_cpp.server`` serving the embedded SmolLM2 on 127.0.0.1.

``LlamaServer(log_path).start()`` picks a free loopback port, starts the server in
its own process group (log to ``log_path``), polls ``/v1/models`` (it has no
``/health``) and returns the base URL ``http://127.0.0.1:PORT/v1``; ``stop()`` ends
the whole group. ``--interrupt_requests false`` is required: with the default, a
request arriving while another streams cuts that stream short (empty replies).

The ``llama_server`` fixture shares one server across every module that imports it
(``from llamaserver import llama_server``) and stops it when the last one is done.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fleetbench.catalog import embedded_model_path

ALIAS = "smollm2"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LlamaServer:
    def __init__(
        self, log_path: Path, *, alias: str = ALIAS, n_ctx: int = 2048, extra: tuple[str, ...] = ()
    ) -> None:
        self.log_path = log_path
        self.alias = alias
        self.n_ctx = n_ctx
        self.extra = extra
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(embedded_model_path()),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--interrupt_requests",
            "false",
            "--model_alias",
            self.alias,
            "--n_ctx",
            str(self.n_ctx),
            *self.extra,
        ]

    def start(self, timeout: float = 120.0) -> str:
        for _ in range(3):  # another process may grab the port between probe and bind
            self.port = free_port()
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(
                    self.command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
            if self._wait_ready(timeout):
                return self.base_url
            self.stop()
        raise RuntimeError(f"llama_cpp.server did not start; log:\n{self.log_tail()}")

    def _wait_ready(self, timeout: float) -> bool:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                if httpx.get(self.base_url + "/models", timeout=2.0).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        return False

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return "(no log)"

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                proc.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def __enter__(self) -> LlamaServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


_shared: LlamaServer | None = None
_users = 0


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """One real server for the session, shared by every module that imports this."""
    global _shared, _users
    if _shared is None or _shared.proc is None or _shared.proc.poll() is not None:
        _shared = LlamaServer(tmp_path_factory.mktemp("llamaserver") / "server.log")
        _shared.start()
    _users += 1
    try:
        yield _shared
    finally:
        _users -= 1
        if _users == 0:
            _shared.stop()
            _shared = None
