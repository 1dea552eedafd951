"""Run untrusted Python programs in the sandbox, one or many in parallel.

The parent only prepares a work directory, starts ``_launch.py`` in a new session with a
minimal environment and stdin on /dev/null, and then watches it: output is read as it comes
(and the sandbox killed when a stream exceeds its limit), the wall clock is enforced by
killing the session's process group, and the launcher's status pipe says how the program
ended. All isolation is set up by the launcher between fork and exec (see its docstring).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from fleetbench.sandbox import cgroup
from fleetbench.sandbox.limits import SandboxLimits, SandboxResult, Status

LAUNCHER = Path(__file__).with_name("_launch.py")
PROGRAM = "main.py"
_GRACE_S = 2.0  # after the launcher is gone (or killed), how long to drain the pipes
_MEMORY = re.compile(r"MemoryError|Cannot allocate memory|[Oo]ut of memory")
_NPROC = re.compile(r"BlockingIOError: \[Errno 11\]|Resource temporarily unavailable")

_live_lock = threading.Lock()
_live: set[int] = set()  # process groups of the running sandboxes
_slot_lock = threading.Condition()
_slots_used: set[int] = set()
_SLOTS = 256


class _Slot:
    """A dedicated uid for one running program (unique among this process's sandboxes)."""

    def __init__(self, base: int) -> None:
        with _slot_lock:
            while len(_slots_used) >= _SLOTS:
                _slot_lock.wait()
            self.index = min(set(range(_SLOTS)) - _slots_used)
            _slots_used.add(self.index)
        # Spread processes apart so two fleetbench processes rarely share a uid.
        self.uid = base + ((os.getpid() % 4096) << 8) + self.index

    def release(self) -> None:
        with _slot_lock:
            _slots_used.discard(self.index)
            _slot_lock.notify()


def sandbox_env(workdir: str, python: str) -> dict[str, str]:
    """The program's whole environment, built from an allowlist (no secrets can leak in)."""
    path = [os.path.dirname(python), "/usr/local/bin", "/usr/bin", "/bin"]
    return {
        "PATH": os.pathsep.join(dict.fromkeys(path)),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "HOME": workdir,
        "TMPDIR": workdir,
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
    }


def _keep_paths(python: str) -> list[str]:
    """Directories the interpreter needs (bound back in where their parent is hidden)."""
    exe = os.path.realpath(python)
    paths = {os.path.realpath(p) for p in (sys.base_prefix, sys.prefix)}
    paths |= {os.path.dirname(os.path.dirname(exe))}
    ordered = sorted(paths, key=len)
    return [p for i, p in enumerate(ordered)
            if not any(p.startswith(q.rstrip("/") + "/") for q in ordered[:i])]  # fmt: skip


def _cpu_limit(limits: SandboxLimits) -> int:
    return max(1, round(limits.cpu_s))


def _uid_processes(uid: int) -> int:
    count = 0
    for entry in os.scandir("/proc"):
        with contextlib.suppress(OSError):
            count += entry.name.isdigit() and os.stat(entry.path).st_uid == uid
    return count


def _rlimits(limits: SandboxLimits, own_uid: bool) -> list[tuple[int, int, int]]:
    import resource

    cpu = _cpu_limit(limits)
    # RLIMIT_NPROC counts every process of the real uid: without a uid of its own the
    # program shares the count with the user's other processes.
    nproc = limits.processes + (0 if own_uid else _uid_processes(os.getuid()))
    return [
        (resource.RLIMIT_CPU, cpu, cpu + 1),  # SIGXCPU first, SIGKILL a second later
        (resource.RLIMIT_AS, limits.memory_bytes, limits.memory_bytes),
        (resource.RLIMIT_NPROC, nproc, nproc),
        (resource.RLIMIT_FSIZE, limits.file_bytes, limits.file_bytes),
        (resource.RLIMIT_NOFILE, limits.open_files, limits.open_files),
        (resource.RLIMIT_CORE, 0, 0),
    ]


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _sweep_uid(uid: int) -> None:
    """Kill every process of ``uid`` (root only; used when there is no pid namespace)."""
    for _ in range(100):
        found = False
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                if os.stat(entry.path).st_uid == uid:
                    found = True
                    os.kill(int(entry.name), signal.SIGKILL)
            except OSError:
                continue
        if not found:
            return
        time.sleep(0.01)


class _Watch:
    """Reads the three pipes of one sandbox, enforcing the output and wall limits."""

    def __init__(self, proc: subprocess.Popen[bytes], status_fd: int, limits: SandboxLimits):
        assert proc.stdout is not None and proc.stderr is not None
        self.proc, self.limits = proc, limits
        self.bufs: dict[int, bytearray] = {}
        self.names = {proc.stdout.fileno(): "stdout", proc.stderr.fileno(): "stderr",
                      status_fd: "status"}  # fmt: skip
        self.truncated: set[str] = set()
        self.over: str | None = None
        self.timed_out = False
        self.killed = False

    def _kill(self) -> None:
        self.killed = True
        _kill_group(self.proc.pid)

    def run(self, start: float) -> None:
        sel = selectors.DefaultSelector()
        for fd in self.names:
            os.set_blocking(fd, False)
            sel.register(fd, selectors.EVENT_READ)
            self.bufs[fd] = bytearray()
        deadline = start + self.limits.wall_s
        drain_until: float | None = None
        while sel.get_map():
            now = time.monotonic()
            if drain_until is None and (self.killed or self.proc.poll() is not None):
                drain_until = now + _GRACE_S
            if drain_until is not None and now >= drain_until:
                break
            if drain_until is None and now >= deadline:
                self.timed_out = True
                self._kill()
                continue
            wait = (drain_until or deadline) - now
            for key, _ in sel.select(min(wait, 0.2)):
                fd = int(key.fd)
                try:
                    data = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                if not data:
                    sel.unregister(fd)
                    continue
                self._take(fd, data)
        sel.close()
        if self.proc.poll() is None:
            self._kill()
        self.proc.wait()

    def _take(self, fd: int, data: bytes) -> None:
        name, buf = self.names[fd], self.bufs[fd]
        room = self.limits.output_bytes - len(buf) if name != "status" else len(data)
        buf += data[: max(room, 0)]
        if len(data) > room:
            self.truncated.add(name)
            if self.over is None and not self.killed:
                self.over = name
                self._kill()

    def text(self, name: str) -> str:
        fd = next(fd for fd, n in self.names.items() if n == name)
        return self.bufs[fd].decode("utf-8", errors="replace")

    def events(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for line in self.text("status").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            out[str(event.get("event"))] = event
        return out


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def _classify(
    watch: _Watch, limits: SandboxLimits, oom: bool
) -> tuple[Status, str, dict[str, Any]]:
    events = watch.events()
    setup, exit_ = events.get("setup", {}), events.get("exit")
    stderr = watch.text("stderr")
    if watch.over:
        return "output_limit", (f"{watch.over} exceeded the output limit of "
                                f"{limits.output_bytes} bytes; killed"), exit_ or {}  # fmt: skip
    if watch.timed_out:
        return "timeout", f"wall-time limit of {limits.wall_s:g} s exceeded; killed", exit_ or {}
    if "exec_error" in events:
        return "error", f"cannot start the program: {events['exec_error'].get('message')}", {}
    if exit_ is None:
        if limits.strict and setup.get("warnings"):
            why = "; ".join(setup["warnings"])
            return "error", f"isolation unavailable (strict mode): {why}", {}
        tail = _last_line(stderr) or f"launcher exit code {watch.proc.returncode}"
        return "error", f"the sandbox failed: {tail}", {}
    code, sig = exit_.get("returncode"), exit_.get("signal")
    cpu = float(exit_.get("cpu_s") or 0.0)
    name = signal.Signals(sig).name if sig else None
    if sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu >= _cpu_limit(limits)):
        return "timeout", f"CPU-time limit of {limits.cpu_s:g} s exceeded ({name})", exit_
    if code == 0:
        return "passed", "exit code 0", exit_
    mib = limits.memory_bytes / 2**20
    if _MEMORY.search("\n".join(stderr.strip().splitlines()[-3:])):  # the traceback's end
        return "memory", f"memory limit of {mib:g} MiB reached: {_last_line(stderr)}", exit_
    if oom:
        return "memory", f"memory limit of {mib:g} MiB for all processes reached: OOM-killed", exit_
    detail = _last_line(stderr)
    if _NPROC.search(stderr):
        detail += f" (process limit of {limits.processes} reached)"
    what = f"killed by {name}" if name else f"exit code {code}"
    return "failed", f"{what}: {detail}" if detail else what, exit_


_cleaned = threading.Event()


def _clean_stale_workdirs() -> None:
    """Once per process: remove the work directories of fleetbench processes that died
    mid-run (only the program file is there; its output lived in the sandbox's tmpfs)."""
    if not _cleaned.is_set():
        _cleaned.set()
        for path in cgroup.stale(Path(tempfile.gettempdir()).glob(f"{cgroup.PREFIX}*")):
            shutil.rmtree(path, ignore_errors=True)


def _prefix() -> str:
    """Names of this process's cgroups and work directories (``cgroup.stale`` reads the pid)."""
    return f"{cgroup.PREFIX}{os.getpid()}-"


@contextlib.contextmanager
def _boundary(
    limits: SandboxLimits,
) -> Iterator[tuple[_Slot | None, cgroup.Cgroup | None, str | None]]:
    """One call's boundary: a sandbox uid when root, and a cgroup with the budgets (or
    the reason there is none, for the result's warnings); both released however the
    call ends."""
    slot = _Slot(limits.uid_base) if os.geteuid() == 0 else None
    group, why = cgroup.create(
        _prefix() + secrets.token_hex(4), limits.memory_bytes, limits.processes
    )
    _clean_stale_workdirs()
    try:
        yield slot, group, why
    finally:
        if group is not None:
            group.remove()
        if slot is not None:
            slot.release()


def run_program(
    source: str, limits: SandboxLimits | None = None, *, filename: str = PROGRAM
) -> SandboxResult:
    """Run one Python program (its source text) in a fresh sandbox and say how it ended."""
    limits = limits or SandboxLimits()
    python = limits.python or sys.executable
    with _boundary(limits) as (slot, group, why):
        workdir = os.path.realpath(tempfile.mkdtemp(prefix=_prefix()))
        try:
            program = Path(workdir, filename)
            program.write_text(source, encoding="utf-8")
            program.chmod(0o644)
            if slot is not None:  # without a mount namespace the program writes here directly
                os.chown(workdir, slot.uid, slot.uid)
            argv = [python, "-I", "-B", filename]
            result = _launch(workdir, argv, filename, python, limits, slot, group)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    if why:
        result.warnings.append(why)
    return result


def run_command(
    argv: Sequence[str], workdir: Path, limits: SandboxLimits | None = None
) -> SandboxResult:
    """Run ``argv`` (e.g. ``["/bin/sh", "-c", "ls"]``) with the existing directory
    ``workdir`` as its work directory, behind the same boundary as ``run_program``: the
    directory is bound in writable (and keeps what the command wrote), everything else
    is read-only or hidden. No size cap applies to it (RLIMIT_FSIZE caps each file);
    a caller that keeps it between commands checks its size. As root, the directory's
    files are handed to the sandbox uid first, so the command can change them."""
    limits = limits or SandboxLimits()
    python = limits.python or sys.executable
    path = os.path.realpath(workdir)
    with _boundary(limits) as (slot, group, why):
        if slot is not None:
            _chown_tree(path, slot.uid)
        result = _launch(path, list(argv), None, python, limits, slot, group, bind=True)
    if why:
        result.warnings.append(why)
    return result


def new_workdir(tag: str = "work") -> Path:
    """A fresh, empty directory for ``run_command`` (the caller removes it). Named after
    this process like the sandbox's own work directories, so that if the process is
    killed before removing it, the next fleetbench process that runs a sandbox does."""
    _clean_stale_workdirs()
    return Path(tempfile.mkdtemp(prefix=f"{_prefix()}{tag}-"))


def _chown_tree(path: str, uid: int) -> None:
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            with contextlib.suppress(OSError):
                os.chown(os.path.join(root, name), uid, uid, follow_symlinks=False)
    os.chown(path, uid, uid)


def _launch(
    workdir: str,
    argv: list[str],
    filename: str | None,
    python: str,
    limits: SandboxLimits,
    slot: _Slot | None,
    group: cgroup.Cgroup | None,
    bind: bool = False,
) -> SandboxResult:
    env = sandbox_env(workdir, python)
    status_r, status_w = os.pipe()
    cfg = {
        "workdir": workdir, "program": filename, "argv": argv, "bind_workdir": bind,
        "env": env, "uid": slot.uid if slot else None, "gid": slot.uid if slot else None,
        "status_fd": status_w, "parent_pid": os.getpid(), "rlimits": _rlimits(limits, bool(slot)),
        "cgroup_procs": group.procs_files if group else [],
        "namespaces": limits.namespaces, "strict": limits.strict,
        "workdir_bytes": limits.workdir_bytes, "keep_paths": _keep_paths(python),
        "hidden_paths": list(limits.hidden_paths),
    }  # fmt: skip
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", str(LAUNCHER), json.dumps(cfg)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env, cwd=workdir, start_new_session=True, pass_fds=(status_w,),
        )  # fmt: skip
    except OSError as exc:
        os.close(status_r)
        return SandboxResult(status="error", reason=f"cannot start the sandbox: {exc}")
    finally:
        os.close(status_w)
    watch = _Watch(proc, status_r, limits)
    with _live_lock:
        _live.add(proc.pid)
    try:
        watch.run(start)
    except BaseException:  # Ctrl-C while watching: take the sandbox down with us
        _kill_group(proc.pid)
        proc.wait()
        raise
    finally:
        with _live_lock:
            _live.discard(proc.pid)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        os.close(status_r)
    duration = time.monotonic() - start
    oom = group is not None and group.oom_killed()
    status, reason, exit_ = _classify(watch, limits, oom)
    setup = watch.events().get("setup", {})
    isolation = list(setup.get("isolation", [])) + (["uid"] if slot else [])
    isolation += ["cgroup"] if group else []
    if slot is not None and "pid" not in isolation:
        _sweep_uid(slot.uid)  # no pid namespace took the leftovers down with it
    sig = exit_.get("signal")
    return SandboxResult(
        status=status,
        reason=reason,
        returncode=exit_.get("returncode"),
        signal=signal.Signals(sig).name if sig else None,
        stdout=watch.text("stdout"),
        stderr=watch.text("stderr"),
        stdout_truncated="stdout" in watch.truncated,
        stderr_truncated="stderr" in watch.truncated,
        duration_s=round(duration, 4),
        cpu_s=exit_.get("cpu_s"),
        warnings=list(setup.get("warnings", [])),
        isolation=isolation,
    )


def run_many(
    programs: Sequence[str], limits: SandboxLimits | None = None, workers: int | None = None
) -> list[SandboxResult]:
    """Run each program in its own sandbox, ``workers`` at a time; results in input order."""
    workers = max(1, workers or os.cpu_count() or 1)
    if not programs:
        return []
    pool = ThreadPoolExecutor(max_workers=min(workers, len(programs)))
    try:
        return list(pool.map(lambda src: run_program(src, limits), programs))
    except BaseException:  # Ctrl-C: start nothing more and stop what runs
        pool.shutdown(wait=False, cancel_futures=True)
        kill_all()
        raise
    finally:
        pool.shutdown(wait=True)


def kill_all() -> None:
    """Kill every sandbox this process is running (their threads then return at once)."""
    with _live_lock:
        groups = list(_live)
    for pgid in groups:
        _kill_group(pgid)
