"""The zygote forks workers that behave like freshly started ones: a session of their
own, the given stdio and environment, their exit status relayed, dead with the zygote."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import fleetbench
from fleetbench.runner.zygote import Zygote, ZygoteChild, ZygoteGone

CHILD = """
import json, os, sys, time

def main(argv, parent_pid):
    mode = argv[1]
    if mode == "report":
        json.dump({
            "pid": os.getpid(), "pgid": os.getpgid(0), "sid": os.getsid(0),
            "ppid": os.getppid(), "parent_pid": parent_pid, "cwd": os.getcwd(),
            "env": os.environ.get("ZYGOTE_TEST"), "other": os.environ.get("ZYGOTE_OTHER"),
            "stdin": sys.stdin.read(),
            "zygote_threads": len(os.listdir(f"/proc/{parent_pid}/task")),
            "heavy": sorted(m for m in sys.modules
                            if m.split(".")[0] in ("llama_cpp", "torch", "ray", "httpx", "numpy")),
            "preloaded": "fleetbench.runner.worker" in sys.modules,
        }, sys.stdout)
        print("to the log", file=sys.stderr)
        return 0
    if mode == "has":
        return 0 if argv[2] in sys.modules else 5
    if mode == "exit":
        return int(argv[2])
    if mode == "kill":
        os.kill(os.getpid(), 9)
    if mode == "raise":
        raise RuntimeError("boom")
    if mode == "sleep":
        print("sleeping", flush=True)
        time.sleep(60)
    return 0
"""


@pytest.fixture
def zygote(tmp_path: Path) -> Iterator[Zygote]:
    (tmp_path / "zchild.py").write_text(CHILD)
    src = str(Path(fleetbench.__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), src])}
    z = Zygote(env=env)
    yield z
    z.close()


def _spawn(
    zygote: Zygote, tmp_path: Path, *argv: str, env: dict[str, str] | None = None
) -> tuple[ZygoteChild, Path]:
    log = tmp_path / "child.log"
    with open(log, "ab") as err:
        child = zygote.spawn("zchild", ["zchild", *argv], env or {"ZYGOTE_TEST": "x"}, err.fileno())
    return child, log


def test_child_has_its_own_session_stdio_and_environment(zygote: Zygote, tmp_path: Path) -> None:
    env = {"ZYGOTE_TEST": "given", "PATH": os.environ.get("PATH", "")}
    child, log = _spawn(zygote, tmp_path, "report", env=env)
    assert child.stdout is not None
    report = json.loads(child.stdout.read())
    assert child.wait(timeout=30) == 0
    assert report["pgid"] == report["sid"] == report["pid"] == child.pid  # killpg(pid) works
    assert report["ppid"] == report["parent_pid"] != os.getpid()
    assert report["env"] == "given" and report["other"] is None  # replaced, not merged
    assert report["cwd"] == os.getcwd() and report["stdin"] == ""
    assert "to the log" in log.read_text()
    # The preload is the worker's modules only: no backend library, no thread to lose.
    assert report["preloaded"] and report["heavy"] == [] and report["zygote_threads"] == 1


@pytest.mark.parametrize(
    ("argv", "code"), [(("exit", "3"), 3), (("kill",), -signal.SIGKILL), (("raise",), 1)]
)
def test_exit_status_is_relayed_like_popen(
    zygote: Zygote, tmp_path: Path, argv: tuple[str, ...], code: int
) -> None:
    child, log = _spawn(zygote, tmp_path, *argv)
    assert child.wait(timeout=30) == code
    if argv == ("raise",):
        assert "RuntimeError: boom" in log.read_text()
    # One crashing child takes nothing else down: the next one runs.
    again, _ = _spawn(zygote, tmp_path, "exit", "0")
    assert again.wait(timeout=30) == 0


def test_killpg_kills_the_child_and_wait_times_out_before(zygote: Zygote, tmp_path: Path) -> None:
    child, _ = _spawn(zygote, tmp_path, "sleep")
    assert child.stdout is not None and child.stdout.readline() == b"sleeping\n"
    with pytest.raises(Exception, match="worker"):
        child.wait(timeout=0.2)
    os.killpg(child.pid, signal.SIGKILL)
    assert child.wait(timeout=30) == -signal.SIGKILL


def test_children_die_with_the_zygote(zygote: Zygote, tmp_path: Path) -> None:
    child, _ = _spawn(zygote, tmp_path, "sleep")
    assert child.stdout is not None and child.stdout.readline() == b"sleeping\n"
    zygote._proc.kill()  # as kill -9 of the batch's process group would
    assert child.wait(timeout=30) == -signal.SIGKILL
    deadline = time.monotonic() + 10
    while _alive(child.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child.pid)  # PR_SET_PDEATHSIG on the zygote
    with pytest.raises(ZygoteGone):
        _spawn(zygote, tmp_path, "exit", "0")


def test_modules_asked_for_are_imported_for_the_next_children(
    zygote: Zygote, tmp_path: Path
) -> None:
    log = tmp_path / "child.log"
    with open(log, "ab") as err:
        first = zygote.spawn(
            "zchild", ["zchild", "has", "colorsys"], {}, err.fileno(), ["colorsys"]
        )
        assert first.wait(timeout=30) == 5  # forked before the import
        for _ in range(100):  # the zygote imports it once no fork is waiting
            child = zygote.spawn("zchild", ["zchild", "has", "colorsys"], {}, err.fileno())
            if child.wait(timeout=30) == 0:
                break
        else:
            raise AssertionError("the zygote never imported colorsys")


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux prctl")
