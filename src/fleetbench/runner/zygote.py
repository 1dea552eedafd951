"""A warm parent for worker processes: each run's worker forks from an interpreter that
has already imported the worker's modules, instead of starting one of its own.

Why: a fresh interpreter importing the worker (pydantic models of plans, tasks, store)
costs ~0.35 s of CPU per run, 0.7-1 s when four start at once on a busy machine, paid on
the critical path of every slot (benchmarks/makespan.py). The zygote pays it once per
batch; a fork costs milliseconds.

What stays as with ``subprocess.Popen`` of ``python -m fleetbench.runner.worker``:

* each run is a process of its own in a session of its own (``setsid``), so the
  supervisor's ``killpg`` on timeout kills it with everything it spawned; a worker that
  crashes is one dead child, reaped here, its exit status (``-SIGNAL`` when killed, as
  ``Popen.returncode``) relayed to its supervisor;
* its stdin is ``/dev/null``, its stdout and stderr the descriptors the supervisor
  passes (the event pipe, ``run.log``), its environment exactly the one given (replaced
  wholesale), so ``CUDA_VISIBLE_DEVICES`` is set before any CUDA library loads: the
  zygote imports no backend and starts no thread (``PRELOAD`` is the worker's own
  modules only; tests/unit/test_zygote.py checks it);
* kill -9 of the batch: the zygote runs in the batch's process group and dies with it
  (or of ``PR_SET_PDEATHSIG`` on the batch), and every worker has ``PR_SET_PDEATHSIG``
  on the zygote, so no writer outlives the batch.

Protocol, over a ``SOCK_SEQPACKET`` socket pair (one JSON message each way): a request
``{"id", "module", "argv", "env", "cwd"}`` with the child's stdout and stderr as
``SCM_RIGHTS``; the reply ``{"id", "pid"}`` (or ``{"id", "error"}``), later
``{"exit": pid, "code": code}`` when the child has been reaped. The child runs
``MODULE.main(argv, parent_pid=ZYGOTE_PID)`` and exits with its return value.
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterator, Sequence
from typing import IO, Any

# What the zygote imports before its first fork: the worker and what it needs to read a
# job and store samples (and what the module's ``preload()`` adds: worker.preload). Never
# a backend module (llama.cpp, torch, CUDA) nor anything that starts a thread: a fork
# copies only the forking thread.
PRELOAD = ("fleetbench.runner.worker",)
_MAX_MESSAGE = 1 << 20  # an environment of a few KiB, a short argv
_DONE = object()


class ZygoteGone(RuntimeError):
    """The zygote cannot start a worker (it died, or never started): start one the
    ordinary way."""


class Zygote:
    """The batch's end of a zygote process; ``spawn`` is safe from several threads."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "fleetbench.runner.zygote",
                    str(theirs.fileno()),
                    str(os.getpid()),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
                env=env,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self._sock = ours
        self._send_lock = threading.Lock()
        self._cond = threading.Condition()
        self._next_id = 0
        self._replies: dict[int, dict[str, Any]] = {}
        self._codes: dict[int, int] = {}
        self._gone = False
        self._reader = threading.Thread(target=self._read, name="zygote-reader", daemon=True)
        self._reader.start()

    def spawn(
        self,
        module: str,
        argv: list[str],
        env: dict[str, str],
        stderr: int,
        then_import: Sequence[str] = (),
    ) -> ZygoteChild:
        """Fork a child that runs ``module.main(argv, parent_pid=...)`` with its stdout on
        a new pipe (the child's ``stdout``); raises ``ZygoteGone`` when the zygote cannot.
        ``then_import``: modules the zygote imports once it is idle, for the next children
        (only ones that start no thread and load no native library)."""
        read_end, write_end = os.pipe()
        try:
            pid = self._fork(module, argv, env, write_end, stderr, list(then_import))
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        return ZygoteChild(self, pid, open(read_end, "rb"))

    def _fork(
        self,
        module: str,
        argv: list[str],
        env: dict[str, str],
        stdout: int,
        stderr: int,
        then_import: list[str],
    ) -> int:
        with self._cond:
            if self._gone:
                raise ZygoteGone("the zygote has exited")
            self._next_id += 1
            rid = self._next_id
        request = {
            "id": rid,
            "module": module,
            "argv": argv,
            "env": env,
            "cwd": os.getcwd(),
            "then_import": then_import,
        }
        try:
            with self._send_lock:
                socket.send_fds(self._sock, [json.dumps(request).encode()], [stdout, stderr])
        except OSError as exc:
            raise ZygoteGone(f"the zygote is unreachable: {exc}") from exc
        with self._cond:
            self._cond.wait_for(lambda: rid in self._replies or self._gone)
            reply = self._replies.pop(rid, None)
        if reply is None:
            raise ZygoteGone("the zygote exited before it started the worker")
        if "pid" not in reply:
            raise ZygoteGone(f"the zygote could not fork: {reply.get('error')}")
        return int(reply["pid"])

    def wait_exit(self, pid: int, timeout: float | None) -> int | None:
        """The exit code of a child of ours, once reaped; None after ``timeout``. A child
        of a zygote that died was killed with it (``PR_SET_PDEATHSIG``): -SIGKILL."""
        with self._cond:
            self._cond.wait_for(lambda: pid in self._codes or self._gone, timeout)
            if pid in self._codes:
                return self._codes[pid]
            return -signal.SIGKILL if self._gone else None

    def alive(self) -> bool:
        with self._cond:
            gone = self._gone
        return not gone and self._proc.poll() is None

    def close(self) -> None:
        """End the zygote: it exits when its socket closes (children it still has die
        with it, but the executors end every run before they close it)."""
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._reader.join(timeout=10)
        self._sock.close()

    def _read(self) -> None:
        try:
            while True:
                data = self._sock.recv(_MAX_MESSAGE)
                if not data:
                    break
                message = json.loads(data)
                with self._cond:
                    if "exit" in message:
                        self._codes[int(message["exit"])] = int(message["code"])
                    else:
                        self._replies[int(message["id"])] = message
                    self._cond.notify_all()
        except (OSError, ValueError):
            pass
        finally:
            with self._cond:
                self._gone = True
                self._cond.notify_all()


_early: Zygote | None = None  # started by ``prestart``, handed out once by ``take``


def prestart() -> None:
    """Start the next batch's zygote now: ``fleetbench run`` calls this before it
    imports its own modules and reads the plan, so the zygote's imports overlap with
    that work instead of delaying the first run. A zygote never taken costs nothing
    more: it exits when this process does (its socket closes)."""
    global _early
    if _early is None:
        with contextlib.suppress(OSError):
            _early = Zygote()


def take() -> Zygote | None:
    """The batch's zygote: the one ``prestart`` started when it is still alive, else a
    new one; None when none can start (each worker then starts a fresh interpreter).
    The caller closes it."""
    global _early
    zygote, _early = _early, None
    if zygote is not None:
        if zygote.alive():
            return zygote
        zygote.close()
    try:
        return Zygote()
    except OSError:
        return None


class ZygoteChild:
    """A worker forked by the zygote, with the part of ``subprocess.Popen`` that
    supervision uses (``pid``, ``stdout``, ``wait``)."""

    def __init__(self, zygote: Zygote, pid: int, stdout: IO[bytes]) -> None:
        self._zygote = zygote
        self.pid = pid
        self.stdout: IO[bytes] | None = stdout
        self.returncode: int | None = None

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            code = self._zygote.wait_exit(self.pid, timeout)
            if code is None:
                raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout or 0.0)
            self.returncode = code
        return self.returncode


# --- the zygote process -------------------------------------------------------------


def _serve(sock: socket.socket, idle: Iterator[object]) -> None:
    """Fork what is asked for; while nothing is, take the next ``idle`` step."""
    my_pid = os.getpid()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the select through wake_w
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ)
    selector.register(wake_r, selectors.EVENT_READ)
    pending: Iterator[object] | None = idle
    later: list[str] = []  # modules the batch asked for with its forks
    while True:
        ready = selector.select(timeout=0 if pending is not None or later else None)
        if not ready and later:
            with contextlib.suppress(Exception):  # a failure only costs each worker the import
                importlib.import_module(later.pop(0))
            continue
        if not ready and pending is not None:
            try:
                more = next(pending, _DONE) is not _DONE
            except Exception:  # a step that fails only costs each worker that step
                more = False
            pending = pending if more else None
            continue
        for key, _ in ready:
            if key.fileobj is sock:
                try:
                    data, fds, _flags, _addr = socket.recv_fds(sock, _MAX_MESSAGE, 4)
                except OSError:
                    return
                if not data:
                    return  # the batch closed its end, or died
                request = json.loads(data)
                _fork(request, fds, my_pid, sock, (wake_r, wake_w))
                later += [m for m in request.get("then_import", []) if m not in sys.modules]
            else:
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_r, 4096)
                _reap(sock)


def _fork(
    request: dict[str, Any], fds: list[int], my_pid: int, sock: socket.socket, wake: tuple[int, int]
) -> None:
    try:
        pid = os.fork()
    except OSError as exc:
        reply: dict[str, Any] = {"id": request["id"], "error": str(exc)}
    else:
        if pid == 0:
            _child(request, fds, my_pid, sock, wake)  # never returns
        reply = {"id": request["id"], "pid": pid}
    for fd in fds:
        os.close(fd)
    sock.send(json.dumps(reply).encode())


def _reap(sock: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        sock.send(json.dumps({"exit": pid, "code": os.waitstatus_to_exitcode(status)}).encode())


def _child(
    request: dict[str, Any],
    fds: list[int],
    zygote_pid: int,
    sock: socket.socket,
    wake: tuple[int, int],
) -> None:
    """The forked worker: a session of its own, the given stdio and environment, then
    the module's ``main``. Whatever happens, it ends here (``os._exit``), never back in
    the zygote's loop."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as a fresh interpreter
        sock.close()
        for fd in wake:
            os.close(fd)
        os.setsid()
        _die_with(zygote_pid)
        devnull = os.open(os.devnull, os.O_RDONLY)
        for target, fd in ((0, devnull), (1, fds[0]), (2, fds[1])):
            os.dup2(fd, target)
        for fd in (devnull, *fds):
            if fd > 2:
                os.close(fd)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        sys.argv = list(request["argv"])
        module = importlib.import_module(request["module"])
        code = int(module.main(sys.argv, parent_pid=zygote_pid) or 0)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        with contextlib.suppress(Exception):
            traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


def _die_with(parent_pid: int) -> None:
    """``PR_SET_PDEATHSIG``: killed when ``parent_pid`` (our parent) dies; exits at once
    when it already did."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent_pid:
        os._exit(1)


def main(argv: list[str]) -> int:
    sock = socket.socket(fileno=int(argv[1]))
    _die_with(int(argv[2]))  # the batch; also gone with its process group on kill -9
    # Ctrl-C reaches the batch's whole process group: the batch stops its runs and then
    # closes the zygote, which must not die first with a traceback on the terminal.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    steps: list[Iterator[object]] = []
    for name in PRELOAD:
        module = importlib.import_module(name)
        if callable(warm := getattr(module, "preload", None)):
            steps.append(iter(warm()))  # once-for-all work, between forks (worker.py)
    _serve(sock, itertools.chain.from_iterable(steps))
    return 0


if __name__ == "__main__":
    status = main(sys.argv)
    sys.stderr.flush()
    # The batch waits for this exit (``Zygote.close``) at its end: skip the interpreter's
    # teardown of the preloaded modules (~60 ms), which frees nothing the OS does not.
    os._exit(status)
