"""Managed local servers: start a server command, wait until it answers, stop its group.

A catalogue entry of the ``openai`` backend may say ``server: {command: [...]}``:
fleetbench then starts that command on a free loopback port, polls ``ready_path``
until it answers 200 (``llama_cpp.server`` has no ``/health``; ``/v1/models`` works
everywhere), runs the samples over HTTP and stops the server afterwards.

No orphan, however the run ends. The server runs under a tiny guard
(``_serverguard.py``) that leads a new session, so ``stop()`` signals one process
group: the server and everything it spawned (vLLM's engine cores). Three layers:

* ``stop()`` (the backend's ``close()``, also on failure): SIGTERM the group, wait
  ``stop_timeout_s``, SIGKILL the group.
* The group's id is written to ``<run_dir>/server.pgid``; when the worker is killed
  (``--timeout``, Ctrl-C or SIGTERM of fleetbench) the parent kills that group too
  (``fleetbench.runner.process``), and ``stop()`` removes the file.
* The guard asks the kernel for a signal when the worker dies (``PR_SET_PDEATHSIG``),
  so even a ``kill -9`` of fleetbench (which takes the worker down the same way)
  takes the server down with it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from fleetbench.backends.base import PGID_FILE
from fleetbench.backends.engine import scrub
from fleetbench.errors import BackendError

LOG_FILE = "server.log"
HOST = "127.0.0.1"
PLACEHOLDERS = ("python", "host", "port", "embedded_model", "model")
_GUARD = Path(__file__).with_name("_serverguard.py")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_PORT_ATTEMPTS = 3  # another process may take the probed port before the server binds it


class ManagedServerOptions(BaseModel):
    """How to start a local server; placeholders in ``command`` and ``env`` values:
    ``{python}`` (fleetbench's interpreter), ``{host}``, ``{port}`` (a free loopback
    port), ``{embedded_model}`` (the embedded SmolLM2 GGUF), ``{model}`` (served name)."""

    model_config = ConfigDict(extra="forbid")

    command: list[str] = Field(min_length=1, description="argv; no shell")
    startup_timeout_s: float = Field(180.0, gt=0)
    ready_path: str = Field("/v1/models", description="answers 200 once the server is ready")
    env: dict[str, str] = Field(
        default_factory=dict, description="extra environment (stored with the run: no secrets)"
    )
    stop_timeout_s: float = Field(10.0, gt=0, description="SIGTERM to SIGKILL")

    @field_validator("command", "env")
    @classmethod
    def _known_placeholders(cls, value: list[str] | dict[str, str]) -> list[str] | dict[str, str]:
        texts = value.values() if isinstance(value, dict) else value
        for text in texts:
            for name in _PLACEHOLDER.findall(text):
                if name not in PLACEHOLDERS:
                    known = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
                    raise ValueError(f"unknown placeholder {{{name}}} in {text!r}; known: {known}")
        return value

    @field_validator("ready_path")
    @classmethod
    def _absolute_path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"must start with '/', got {value!r}")
        return value


class ManagedServer:
    """One server process group for one run. ``start()`` then ``stop()`` (idempotent).

    Call ``start()`` from a thread that lives as long as the server (the worker's main
    thread): the kernel's parent-death signal fires when the starting *thread* exits.
    """

    def __init__(
        self,
        options: ManagedServerOptions | dict[str, Any],
        run_dir: Path,
        model_name: str = "",
        secrets: tuple[str, ...] = (),
    ) -> None:
        self.options = ManagedServerOptions.model_validate(options)
        self.run_dir = run_dir
        self.model_name = model_name
        self.secrets = secrets  # scrubbed from the log tail an error quotes
        self.port = 0
        self.startup_s: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.run_dir / LOG_FILE

    @property
    def pgid_path(self) -> Path:
        return self.run_dir / PGID_FILE

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}/v1"

    @property
    def pid(self) -> int | None:
        """The guard's pid, which is also the process group's id; None when stopped."""
        return self._proc.pid if self._proc is not None else None

    def argv(self) -> list[str]:
        """The server's command with placeholders filled in (needs ``port``)."""
        return [self._expand(arg) for arg in self.options.command]

    def start(self) -> str:
        """Start the server and return its base URL once ``ready_path`` answers 200."""
        if self._proc is not None:
            return self.base_url
        self.run_dir.mkdir(parents=True, exist_ok=True)
        began = time.monotonic()
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            self.port = _free_port()
            try:
                self._spawn()
                code = self._wait_ready(began + self.options.startup_timeout_s)
            except BaseException:
                self.stop()
                raise
            if code is None:
                self.startup_s = time.monotonic() - began
                self._note(f"ready at {self.base_url} after {self.startup_s:.2f} s")
                return self.base_url
            self.stop()
            if code == "timeout":
                raise BackendError(
                    f"managed server not ready within {self.options.startup_timeout_s:g} s "
                    f"(GET {self.options.ready_path} on port {self.port}); "
                    f"last lines of {self.log_path}:\n{self.log_tail()}"
                )
            tail = self.log_tail()
            if attempt < _PORT_ATTEMPTS and "address already in use" in tail.lower():
                continue
            raise BackendError(
                f"managed server exited with code {code} before it was ready; "
                f"last lines of {self.log_path}:\n{tail}"
            )
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """SIGTERM the server's process group, wait, SIGKILL it; reap. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            _signal_group(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(self.options.stop_timeout_s + 2.0)  # the guard waits stop_timeout_s
            _signal_group(proc.pid, signal.SIGKILL)  # stragglers, or one that ignored SIGTERM
            code = proc.wait()
            self._note(f"stopped (exit code {code})")
        finally:
            with contextlib.suppress(FileNotFoundError):
                self.pgid_path.unlink()

    def log_tail(self, lines: int = 12, chars: int = 2000) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return "(no server log)"
        # Scrub before the cut, so no part of a key survives it (the window is far wider
        # than what is kept: a key that reaches into the kept part is whole inside it).
        text = scrub(text[-max(64 * chars, 65536) :], self.secrets)
        return "\n".join(text.rstrip().splitlines()[-lines:])[-chars:]

    def __enter__(self) -> ManagedServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self) -> None:
        argv = self.argv()
        env = {**os.environ, **{k: self._expand(v) for k, v in self.options.env.items()}}
        guard = [sys.executable, "-I", "-S", str(_GUARD), str(os.getpid())]
        guard += [str(self.options.stop_timeout_s), "--", *argv]
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                guard,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # its own group: stop() signals the whole of it
            )
        self.pgid_path.write_text(f"{self._proc.pid}\n", encoding="utf-8")
        self._note(f"process group {self._proc.pid}, port {self.port}: {shlex.join(argv)}")

    def _wait_ready(self, deadline: float) -> int | str | None:
        """None once ready; the exit code if the server ended first; "timeout"."""
        # Imported here: every batch imports this module (kill_leftover_server), and
        # httpx is about a tenth of the command's start-up.
        import httpx

        assert self._proc is not None
        url = f"http://{HOST}:{self.port}{self.options.ready_path}"
        delay = 0.05
        with httpx.Client(timeout=httpx.Timeout(5.0, connect=2.0), trust_env=False) as client:
            while True:
                code = self._proc.poll()
                if code is not None:
                    return code
                if time.monotonic() >= deadline:
                    return "timeout"
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(url).status_code == 200:
                        return None
                time.sleep(delay)
                delay = min(delay * 1.5, 0.5)

    def _expand(self, text: str) -> str:
        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            if name == "python":
                return sys.executable
            if name == "host":
                return HOST
            if name == "port":
                return str(self.port)
            if name == "model":
                return self.model_name
            if name == "embedded_model":
                from fleetbench.catalog.embedded import embedded_model_path

                return str(embedded_model_path())
            return match.group(0)

        return _PLACEHOLDER.sub(value, text)

    def _note(self, message: str) -> None:
        """A fleetbench line in the server's log, between the server's own lines."""
        stamp = datetime.now().isoformat(timespec="seconds")
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.write(f"[fleetbench {stamp}] {message}\n")


def kill_leftover_server(run_dir: Path) -> bool:
    """SIGKILL the group named in ``run_dir/server.pgid``, if any, and remove the file.

    For the parent of a worker that was killed before it could stop its server.
    Returns whether a file was found.
    """
    path = run_dir / PGID_FILE
    try:
        pgid = int(path.read_text(encoding="utf-8").strip())
    except (FileNotFoundError, ValueError):
        return False
    if _is_guard_group(pgid):
        _signal_group(pgid, signal.SIGKILL)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    return True


def _is_guard_group(pgid: int) -> bool:
    """False only if the id now names an unrelated live process (a stale file, reused id)."""
    try:
        stat = Path(f"/proc/{pgid}/stat").read_text(encoding="utf-8")
        cmdline = Path(f"/proc/{pgid}/cmdline").read_bytes()
    except OSError:  # leader gone (or no /proc): members may remain; the id stays reserved
        return True
    if stat.rsplit(")", 1)[-1].split()[:1] in (["Z"], ["X"]):  # a dead leader, not reaped
        return True
    return _GUARD.name.encode() in cmdline


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    if pgid <= 1 or pgid == os.getpgrp():  # never our own group, never every process
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])
