"""Managed servers: a real llama_cpp.server started, used and stopped with its whole group.

Small stand-in servers (a stdlib HTTP server that spawns a child) only inject faults:
a server that exits at once, one that never answers, one that leaves a grandchild.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import psutil
import pytest
from procs import alive, wait_dead
from pydantic import ValidationError

from fleetbench.backends.managed import (
    LOG_FILE,
    PGID_FILE,
    ManagedServer,
    ManagedServerOptions,
    kill_leftover_server,
)
from fleetbench.errors import BackendError

LLAMA_SERVER = [
    "{python}", "-m", "llama_cpp.server", "--model", "{embedded_model}",
    "--host", "{host}", "--port", "{port}", "--interrupt_requests", "false",
    "--model_alias", "{model}", "--n_ctx", "2048",
]  # fmt: skip

# A stand-in server that spawns a long-lived child of its own (like vLLM's engine
# cores), prints both pids and answers GET / with 200 (a folder listing), others 404.
SPAWNING_SERVER = textwrap.dedent(
    """
    import http.server, os, subprocess, sys
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    print("pids", os.getpid(), child.pid, "env", os.environ.get("FB_PORT"), flush=True)
    http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])),
                           http.server.SimpleHTTPRequestHandler).serve_forever()
    """
)


def group_members(pgid: int) -> list[int]:
    members = []
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                members.append(proc.pid)
        except (ProcessLookupError, psutil.Error):
            continue
    return members


def wait_group_gone(pgid: int, timeout: float = 20.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while (members := group_members(pgid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return members


def logged_pids(log: Path, timeout: float = 30.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(r"^pids (\d+) (\d+)", log.read_text(), re.M) if log.exists() else None
        if found:
            return [int(found.group(1)), int(found.group(2))]
        time.sleep(0.05)
    raise AssertionError(f"no pids in {log}")


def spawning_options(**extra: object) -> ManagedServerOptions:
    return ManagedServerOptions.model_validate(
        {
            "command": ["{python}", "-c", SPAWNING_SERVER, "{port}"],
            "ready_path": "/missing",  # 404: never ready
            **extra,
        }
    )


@pytest.mark.slow
def test_llama_server_started_used_and_stopped(tmp_path: Path) -> None:
    options = ManagedServerOptions(command=LLAMA_SERVER)
    server = ManagedServer(options, tmp_path, model_name="smollm2-served")
    base_url = server.start()
    try:
        assert base_url == f"http://127.0.0.1:{server.port}/v1"
        assert server.startup_s is not None and 0 < server.startup_s < options.startup_timeout_s
        models = httpx.get(base_url + "/models", timeout=10).json()
        assert [m["id"] for m in models["data"]] == ["smollm2-served"]
        reply = httpx.post(
            base_url + "/chat/completions",
            json={
                "model": "smollm2-served",
                "messages": [{"role": "user", "content": "Say hello."}],
                "max_tokens": 4,
                "temperature": 0,
            },
            timeout=60,
        )
        assert reply.status_code == 200 and reply.json()["choices"][0]["message"]["content"]
        pgid = server.pid
        assert pgid is not None
        assert int((tmp_path / PGID_FILE).read_text()) == pgid
        members = group_members(pgid)
        assert len(members) == 2  # the guard and the server
    finally:
        server.stop()
    assert wait_group_gone(pgid) == []
    for pid in members:  # reaped, not left as zombies
        assert not Path(f"/proc/{pid}").exists()
    assert not (tmp_path / PGID_FILE).exists()
    log = (tmp_path / LOG_FILE).read_text()
    assert f"process group {pgid}, port {server.port}:" in log
    assert "ready at" in log and "stopped (exit code" in log
    assert "Uvicorn running" in log  # the server's own output lands in the same log
    server.stop()  # idempotent


def test_server_that_exits_at_once_is_an_error_with_its_log(tmp_path: Path) -> None:
    options = ManagedServerOptions(
        command=["{python}", "-c", "import sys; print('bad flag --nope'); sys.exit(3)"]
    )
    server = ManagedServer(options, tmp_path)
    with pytest.raises(BackendError, match=r"exited with code 3 before it was ready") as err:
        server.start()
    assert "bad flag --nope" in str(err.value)
    assert server.pid is None and not (tmp_path / PGID_FILE).exists()


def test_missing_executable_is_an_error(tmp_path: Path) -> None:
    server = ManagedServer(ManagedServerOptions(command=["no-such-server-binary"]), tmp_path)
    with pytest.raises(BackendError, match=r"code 127.*\n.*no-such-server-binary"):
        server.start()


def test_server_never_ready_times_out_and_is_stopped(tmp_path: Path) -> None:
    server = ManagedServer(spawning_options(startup_timeout_s=3), tmp_path)
    start = time.monotonic()
    with pytest.raises(BackendError, match=r"not ready within 3 s \(GET /missing"):
        server.start()
    assert time.monotonic() - start < 30
    server_pid, child_pid = logged_pids(tmp_path / LOG_FILE)
    assert wait_dead(server_pid) and wait_dead(child_pid)
    assert not (tmp_path / PGID_FILE).exists()


def test_sigterm_ignored_then_sigkill(tmp_path: Path) -> None:
    code = (
        "import signal, sys, time, http.server\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])),"
        " http.server.SimpleHTTPRequestHandler).serve_forever()\n"
    )
    options = ManagedServerOptions(
        command=["{python}", "-c", code, "{port}"], ready_path="/", stop_timeout_s=1
    )
    server = ManagedServer(options, tmp_path)
    server.start()
    pgid = server.pid
    assert pgid is not None
    start = time.monotonic()
    server.stop()
    assert time.monotonic() - start < 15
    assert group_members(pgid) == []


def test_worker_killed_takes_server_and_its_children_down(tmp_path: Path) -> None:
    """The process that started the server dies by SIGKILL (as the worker does when
    fleetbench is killed): the guard notices and ends the whole group."""
    starter = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from fleetbench.backends.managed import ManagedServer, ManagedServerOptions
        options = ManagedServerOptions(command=["{{python}}", "-c", {SPAWNING_SERVER!r},
                                                "{{port}}"], ready_path="/missing")
        ManagedServer(options, Path(sys.argv[1])).start()
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", starter, str(tmp_path)])
    try:
        server_pid, child_pid = logged_pids(tmp_path / LOG_FILE)
        pgid = int((tmp_path / PGID_FILE).read_text())
        assert alive(server_pid) and alive(child_pid)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert wait_group_gone(pgid) == []
    assert not alive(server_pid) and not alive(child_pid)


def test_kill_leftover_server_ends_the_group_named_in_the_run_folder(tmp_path: Path) -> None:
    server = ManagedServer(spawning_options(ready_path="/", env={"FB_PORT": "{port}"}), tmp_path)
    server.start()
    try:
        server_pid, child_pid = logged_pids(tmp_path / LOG_FILE)
        log = (tmp_path / LOG_FILE).read_text()
        assert f"env {server.port}" in log  # placeholders expand in env values too
        assert kill_leftover_server(tmp_path)
        assert wait_dead(server_pid) and wait_dead(child_pid)
        assert not (tmp_path / PGID_FILE).exists()
        assert not kill_leftover_server(tmp_path)  # nothing left to do
    finally:
        server.stop()  # still fine after the group is gone


def test_stale_pgid_file_never_kills_an_unrelated_process(tmp_path: Path) -> None:
    bystander = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    try:
        deadline = time.monotonic() + 10
        while b"time.sleep" not in Path(f"/proc/{bystander.pid}/cmdline").read_bytes():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        (tmp_path / PGID_FILE).write_text(f"{bystander.pid}\n")
        assert kill_leftover_server(tmp_path)
        time.sleep(0.2)
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_placeholders() -> None:
    options = ManagedServerOptions(command=["{python}", "--port={port}", "{host}", "{model}", "{}"])
    server = ManagedServer(options, Path("."), model_name="m")
    server.port = 8001
    assert server.argv() == [sys.executable, "--port=8001", "127.0.0.1", "m", "{}"]
    json_arg = ManagedServerOptions(command=["x", '{"temperature": 0}'])
    assert ManagedServer(json_arg, Path(".")).argv()[1] == '{"temperature": 0}'
    with pytest.raises(ValidationError, match=r"unknown placeholder \{prot\}"):
        ManagedServerOptions(command=["x", "--port", "{prot}"])
    with pytest.raises(ValidationError, match="extra"):
        ManagedServerOptions.model_validate({"command": ["x"], "startup_timeout": 3})
    with pytest.raises(ValidationError):
        ManagedServerOptions(command=[])
