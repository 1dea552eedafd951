"""Hostile actions inside a repository task: each command runs in the sandbox, so a
network connection, a write outside the workspace, a fork bomb or a planted link is
contained, the model sees what happened, and the loop goes on and ends cleanly."""

from __future__ import annotations

import os
import shutil
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

from fleetbench.backends.base import GenerationResult, Message
from fleetbench.tasks.repo_agent import LoopLimits, run_loop
from fleetbench.tasks.repo_folder import load_tasks
from fleetbench.tasks.repo_task import run_check

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox needs Linux")
UID_BASE = 0x70000000


def _chat(replies: list[str]):  # type: ignore[no-untyped-def]
    left = list(replies)

    def chat(messages: list[Message]) -> GenerationResult:
        return GenerationResult(index=0, text=left.pop(0) if left else "DONE")

    return chat


def _sandbox_processes() -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if UID_BASE <= os.stat(entry.path).st_uid < UID_BASE + 2**20:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_hostile_actions_are_contained_and_the_loop_goes_on(tmp_path: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    accepted: list[object] = []

    def accept() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                accepted.append(listener.accept())
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    workspace = tmp_path / "sub" / "ws"
    workspace.mkdir(parents=True)
    outside = tmp_path / "outside.txt"
    here = Path(__file__).with_name("pwned.txt")
    connect = (f"python -c \"import socket; socket.create_connection(('127.0.0.1', {port}), "
               "timeout=2); print('CONNECTED')\"")  # fmt: skip
    replies = [
        f"```bash\n{connect}\n```",
        f"```bash\necho x > {outside}; echo y > ../escape.txt; echo z > {here}; echo tried\n```",
        "```bash\nf() { f | f; }; f\n```",  # a fork bomb (each level waits for its two)
        "```bash\necho still here > proof.txt; cat proof.txt\n```",
        "DONE",
    ]
    limits = LoopLimits(command_timeout_s=5, max_turns=10)
    state = run_loop([Message(role="user", content="go")], _chat(replies), workspace, limits)
    listener.close()
    observations = [m.content for m in state.messages if m.role == "user"][1:]
    assert state.end_reason == "done" and state.tool_calls == 4
    assert "CONNECTED" not in observations[0] and observations[0].startswith("exit code 1")
    assert not accepted
    assert "Read-only file system" in observations[1] or "No such file" in observations[1]
    assert not outside.exists() and not (workspace.parent / "escape.txt").exists()
    assert not here.exists()
    # The process limit held: forks failed and the shell gave up (or the wall limit hit).
    assert "Cannot fork" in observations[2] or observations[2].startswith("command stopped")
    assert observations[3] == "exit code 0\nstill here\n"
    assert (workspace / "proof.txt").read_text() == "still here\n"
    deadline = time.monotonic() + 5
    while _sandbox_processes() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _sandbox_processes()  # the fork bomb left nothing behind


def test_a_planted_link_at_a_hidden_check_file_is_replaced_not_written_through(
    tmp_path: Path,
) -> None:
    (spec,) = load_tasks(["add_validation"], None)
    workspace = tmp_path / "ws"
    shutil.copytree(spec.repo, workspace)
    target = tmp_path / "victim.txt"
    target.write_text("keep me\n")
    (workspace / "test_fleetbench_validation.py").symlink_to(target)
    result = run_check(spec, workspace, 60)
    assert target.read_text() == "keep me\n"
    assert not (workspace / "test_fleetbench_validation.py").is_symlink()
    assert result.status == "failed"  # the hidden tests ran against the unchanged shop.py
