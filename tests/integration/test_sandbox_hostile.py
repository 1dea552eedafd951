"""Hostile programs against the sandbox: each must be contained, reported, and leave the
machine as it was (no sandbox process left, no file written outside, the test alive)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetbench.sandbox import SandboxLimits, SandboxResult, run_many, run_program

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox needs Linux")

LIMITS = SandboxLimits(cpu_s=1, wall_s=4, memory_bytes=256 * 2**20, processes=16,
                       output_bytes=64 * 1024)  # fmt: skip
UID_RANGE = range(LIMITS.uid_base, LIMITS.uid_base + 2**20)
ROOT = os.geteuid() == 0
SYSTEM_PYTHON = next((p for p in ("/usr/bin/python3", "/usr/local/bin/python3")
                      if os.path.exists(p) and not os.path.realpath(p).startswith("/root")),
                     None)  # fmt: skip
FORK_BOMB = (
    "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
)


def _processes() -> list[tuple[int, int]]:
    """(pid, uid) of every live process."""
    out = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                out.append((int(entry.name), os.stat(entry.path).st_uid))
            except OSError:
                continue
    return out


def _sandbox_processes() -> list[int]:
    return [pid for pid, uid in _processes() if uid in UID_RANGE]


def _workdirs() -> set[str]:
    return {p.name for p in Path(os.environ.get("TMPDIR", "/tmp")).glob("fleetbench-sbx-*")}


def _cgroups() -> set[str]:
    found = set()
    for top, dirs, _ in os.walk("/sys/fs/cgroup"):
        found |= {os.path.join(top, d) for d in dirs if d.startswith("fleetbench-sbx-")}
    return found


@pytest.fixture(autouse=True)
def machine_unharmed() -> Iterator[None]:
    """After every test: no sandbox process left, no work directory left, no process storm."""
    before_dirs, before_count, before_groups = _workdirs(), len(_processes()), _cgroups()
    yield
    deadline = time.monotonic() + 5
    while _sandbox_processes() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _sandbox_processes() == []
    assert _workdirs() <= before_dirs
    assert _cgroups() <= before_groups
    # other work on the machine may start processes meanwhile: only a storm would show here
    assert len(_processes()) < before_count + 40


def _check(result: SandboxResult, status: str, *words: str) -> None:
    assert result.status == status, result
    for word in words:
        assert word in result.reason, result


def test_benign_program_passes_with_full_isolation() -> None:
    code = (
        "import os, socket, sys\nprint(os.getcwd())\nprint(socket.gethostname(), file=sys.stderr)"
    )
    result = run_program(code)
    _check(result, "passed")
    assert result.returncode == 0
    if ROOT:
        assert result.stderr == "sandbox\n"  # its own UTS namespace
    assert result.stdout.startswith(tempfile_dir() + "/fleetbench-sbx-")
    assert not os.path.exists(result.stdout.strip())  # the work directory is gone
    if ROOT:
        assert {"net", "mount", "pid", "uid"} <= set(result.isolation), result
        assert all("cgroup" in warning for warning in result.warnings), result.warnings


def tempfile_dir() -> str:
    import tempfile

    return os.path.realpath(tempfile.gettempdir())


def test_socket_to_a_listening_loopback_port_fails() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.setblocking(False)
        port = server.getsockname()[1]
        code = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=3)\n"
        result = run_program(code + "print('CONNECTED')", LIMITS)
        with pytest.raises(BlockingIOError):
            server.accept()  # nobody knocked
    assert "CONNECTED" not in result.stdout
    _check(result, "failed", "Network is unreachable")


def test_local_unix_sockets_and_world_readable_files_are_hidden() -> None:
    """A 0777 Unix socket in /tmp (a database, X11) and a 0644 secret next to it."""
    name = f"/tmp/fleetbench-hostile-{uuid.uuid4().hex}"
    secret = Path(name + ".txt")
    secret.write_text("sk-on-disk")
    secret.chmod(0o644)
    try:
        with socket.socket(socket.AF_UNIX) as server:
            server.bind(name + ".sock")
            os.chmod(name + ".sock", 0o777)
            server.listen()
            server.setblocking(False)
            code = "\n".join([
                "import socket",
                "for attempt in (lambda: print(open(%r).read()),",
                "                lambda: socket.socket(socket.AF_UNIX).connect(%r)):",
                "    try:",
                "        attempt()",
                "        print('REACHED', flush=True)",
                "    except OSError as exc:",
                "        print('refused', exc.strerror, flush=True)",
            ]) % (str(secret), name + ".sock")  # fmt: skip
            result = run_program(code, LIMITS)
            with pytest.raises(BlockingIOError):
                server.accept()
    finally:
        secret.unlink()
        Path(name + ".sock").unlink(missing_ok=True)
    _check(result, "passed")
    assert "REACHED" not in result.stdout and "sk-on-disk" not in result.stdout
    assert result.stdout.count("refused No such file or directory") == 2, result.stdout


def test_write_outside_the_work_directory_fails(tmp_path: Path) -> None:
    targets = [tmp_path / "escape.txt", Path(f"/tmp/fleetbench-escape-{uuid.uuid4().hex}"),
               Path("/dev/shm", f"fleetbench-escape-{uuid.uuid4().hex}")]  # fmt: skip
    code = "\n".join([
        "import os",
        f"for path in {[str(t) for t in targets]!r}:",
        "    try:",
        "        open(path, 'w').write('escaped')",
        "        print('WROTE', path, flush=True)",
        "    except OSError as exc:",
        "        print('refused', path, exc.strerror, flush=True)",
        "open('inside.txt', 'w').write('fine')",  # its own directory is writable
        "print('inside', open('inside.txt').read(), flush=True)",
    ])  # fmt: skip
    result = run_program(code, LIMITS)
    _check(result, "passed")
    assert "WROTE" not in result.stdout and result.stdout.count("refused") == 3, result.stdout
    assert "inside fine" in result.stdout
    for target in targets:
        assert not target.exists()


def test_fork_bomb_is_bounded_and_cleaned_up() -> None:
    start = time.monotonic()
    result = run_program(FORK_BOMB, LIMITS)
    assert time.monotonic() - start < LIMITS.wall_s + 5
    _check(result, "timeout", "wall-time")
    # the fixture checks that no process of the sandbox survives


def test_fork_bomb_that_escapes_its_session_is_cleaned_up() -> None:
    code = ("import os, time\nfor _ in range(8):\n    if os.fork() == 0:\n        os.setsid()\n"
            "        time.sleep(60)\nprint('parent done', flush=True)\n")  # fmt: skip
    result = run_program(code, LIMITS)
    _check(result, "passed")
    assert result.duration_s < 3


def test_fork_bomb_that_crashes_reports_the_process_limit() -> None:
    result = run_program("import os\nwhile True:\n    os.fork()\n", LIMITS)
    assert result.status in ("failed", "timeout"), result
    if result.status == "failed":
        assert "process limit" in result.reason


def test_memory_bomb_hits_the_memory_limit() -> None:
    result = run_program("blocks = []\nwhile True:\n    blocks.append(bytearray(10**7))\n", LIMITS)
    _check(result, "memory", "MemoryError")


def test_memory_spread_over_processes_hits_the_group_limit() -> None:
    """Each process stays under its own limit; together they exceed it (cgroup only)."""
    code = "\n".join([
        "import os, sys, time",
        "kids = []",
        "for _ in range(6):",
        "    pid = os.fork()",
        "    if pid == 0:",
        "        block = bytearray(100 * 2**20)",
        "        block[::4096] = b'x' * len(block[::4096])",  # touch every page
        "        time.sleep(3)",
        "        os._exit(0)",
        "    kids.append(pid)",
        "codes = [os.waitpid(pid, 0)[1] for pid in kids]",
        "sys.exit(1 if any(codes) else 0)",
    ])  # fmt: skip
    result = run_program(code, LIMITS)
    if "cgroup" not in result.isolation:
        pytest.skip(f"no cgroup here: {result.warnings}")
    _check(result, "memory", "all processes")


def test_infinite_loop_hits_the_cpu_limit() -> None:
    result = run_program("while True:\n    pass\n", LIMITS)
    _check(result, "timeout", "CPU-time")
    assert result.duration_s < LIMITS.wall_s + 1


def test_sleeping_forever_hits_the_wall_limit() -> None:
    result = run_program("import time\ntime.sleep(600)\n", LIMITS.model_copy(update={"wall_s": 2}))
    _check(result, "timeout", "wall-time")
    assert 1.9 < result.duration_s < 5


def test_huge_output_is_cut_and_reported() -> None:
    result = run_program("import sys\nwhile True:\n    sys.stdout.write('x' * 4096)\n", LIMITS)
    _check(result, "output_limit", "stdout")
    assert result.stdout_truncated and len(result.stdout) == LIMITS.output_bytes
    result = run_program("import sys\nsys.stderr.write('e' * 10**6)\n", LIMITS)
    _check(result, "output_limit", "stderr")
    assert result.stderr_truncated and len(result.stderr) == LIMITS.output_bytes


def _killer(pids: list[int]) -> str:
    return "\n".join([
        "import os, signal",
        "def killpg(pgid):",  # the parent's group is invisible (0) from a pid namespace
        "    if pgid in (0, os.getpgrp()):",
        "        raise OSError(0, 'not visible')",
        "    os.killpg(pgid, signal.SIGKILL)",
        "attempts = [lambda: os.kill(os.getppid(), signal.SIGKILL),",
        "            lambda: killpg(os.getpgid(os.getppid()))]",
        f"for pid in {pids!r}:",
        "    attempts.append(lambda pid=pid: os.kill(pid, signal.SIGKILL))",
        "    attempts.append(lambda pid=pid: killpg(pid))",
        "for attempt in attempts:",
        "    try:",
        "        attempt()",
        "    except OSError as exc:",
        "        print('refused', exc.strerror, flush=True)",
        "print('done', flush=True)",
    ])  # fmt: skip


def _killed_nothing(limits: SandboxLimits) -> SandboxResult:
    sentinel = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        result = run_program(_killer([os.getpid(), os.getpgrp(), sentinel.pid]), limits)
        assert sentinel.poll() is None  # a bystander survives too
    finally:
        sentinel.kill()
        sentinel.wait()
    os.kill(os.getpid(), 0)  # and so do we
    return result


def test_killing_its_parent_fails() -> None:
    result = _killed_nothing(LIMITS)
    assert "done" in result.stdout, result


@pytest.mark.skipif(not ROOT or SYSTEM_PYTHON is None, reason="needs root and a system python")
def test_without_namespaces_the_uid_still_protects_parent_and_bounds_forks() -> None:
    """The fallback (no namespaces): the dedicated uid alone stops signals and fork bombs."""
    limits = LIMITS.model_copy(update={"namespaces": False, "python": SYSTEM_PYTHON})
    result = _killed_nothing(limits)
    _check(result, "passed")
    assert result.stdout.count("refused") == 8, result.stdout  # EPERM, or ESRCH for non-groups
    assert "network not isolated" in result.warnings and "net" not in result.isolation
    bomb = run_program(FORK_BOMB, limits)
    _check(bomb, "timeout", "wall-time")


def test_strict_mode_refuses_to_run_without_isolation() -> None:
    limits = LIMITS.model_copy(update={"namespaces": False, "strict": True})
    _check(run_program("print('ran')", limits), "error", "strict")


def test_secrets_in_the_environment_do_not_reach_the_program(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = f"sk-planted-{uuid.uuid4().hex}"
    monkeypatch.setenv("FLEETBENCH_PLANTED_KEY", key)
    monkeypatch.setenv("OPENAI_API_KEY", key)
    code = ("import os\nprint(dict(os.environ))\nfor pid in os.listdir('/proc'):\n"
            "    try:\n        print(open(f'/proc/{pid}/environ').read())\n"
            "    except Exception:\n        pass\n")  # fmt: skip
    result = run_program(code, LIMITS)
    _check(result, "passed")
    assert key not in result.stdout + result.stderr
    env = eval(result.stdout.splitlines()[0])  # a dict repr printed by the program
    assert set(env) <= {"PATH", "LANG", "LC_ALL", "HOME", "TMPDIR", "PYTHONDONTWRITEBYTECODE",
                        "PYTHONHASHSEED"}  # fmt: skip


def test_run_many_keeps_order_and_isolates_each_program() -> None:
    programs = [f"import os\nopen('mine', 'w').write('{i}')\nprint(sorted(os.listdir('.')), {i})"
                for i in range(6)]  # fmt: skip
    results = run_many(programs, LIMITS, workers=2)
    assert [r.stdout.strip() for r in results] == [
        f"['main.py', 'mine'] {i}" for i in range(6)
    ]  # fmt: skip


def test_parent_death_takes_the_sandbox_down(tmp_path: Path) -> None:
    """A fleetbench process killed mid-run leaves no sandbox process behind."""
    before, before_groups = _workdirs(), _cgroups()
    script = tmp_path / "parent.py"
    script.write_text(
        "from fleetbench.sandbox import run_program, SandboxLimits\n"
        "run_program('import time\\nprint(1, flush=True)\\ntime.sleep(60)', "
        "SandboxLimits(wall_s=60))\n"
    )
    parent = subprocess.Popen([sys.executable, str(script)])
    deadline = time.monotonic() + 20
    while not _sandbox_processes() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _sandbox_processes(), "the sandboxed program never started"
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 5
    while _sandbox_processes() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _sandbox_processes() == []
    # a dead parent cannot remove its work directory and cgroup: the next run does
    leftovers = [Path(tempfile_dir(), name) for name in _workdirs() - before]
    assert leftovers and all(os.listdir(path) == ["main.py"] for path in leftovers)
    left_groups = _cgroups() - before_groups
    again = "from fleetbench.sandbox import run_program\nassert run_program('pass').passed\n"
    subprocess.run([sys.executable, "-c", again], check=True, timeout=60)  # cleans up
    assert not any(path.exists() for path in leftovers)
    assert not any(os.path.exists(group) for group in left_groups)


def test_ctrl_c_stops_every_running_and_queued_program(tmp_path: Path) -> None:
    script = tmp_path / "interrupt.py"
    script.write_text(
        "import os, signal, threading, time\n"
        "from fleetbench.sandbox import run_many, run_program, SandboxLimits\n"
        "threading.Timer(1.5, lambda: os.kill(os.getpid(), signal.SIGINT)).start()\n"
        "start = time.monotonic()\n"
        "try:\n"
        "    run_many(['import time; time.sleep(60)'] * 8, SandboxLimits(wall_s=60), workers=2)\n"
        "except KeyboardInterrupt:\n"
        "    print(f'interrupted after {time.monotonic() - start:.1f} s', flush=True)\n"
        "threading.Timer(1.5, lambda: os.kill(os.getpid(), signal.SIGINT)).start()\n"
        "try:\n"  # a single program, and the process goes on afterwards
        "    run_program('import time; time.sleep(60)', SandboxLimits(wall_s=60))\n"
        "except KeyboardInterrupt:\n"
        "    time.sleep(30)\n"
    )
    dirs_before = _workdirs()
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("interrupted after") and float(line.split()[2]) < 10, line
        deadline = time.monotonic() + 20  # the single program is stopped too
        while not _sandbox_processes() and time.monotonic() < deadline:
            time.sleep(0.05)
        while _sandbox_processes() and time.monotonic() < deadline:
            time.sleep(0.05)
        # the interrupted call removes its work directory just after its program ends
        while not _workdirs() <= dirs_before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _sandbox_processes() == [] and proc.poll() is None
        assert _workdirs() <= dirs_before
    finally:
        proc.kill()
        proc.wait()
