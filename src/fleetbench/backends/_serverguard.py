"""Guard of a managed server: take the server's whole process group down with the worker.

``fleetbench.backends.managed`` starts this file BY PATH (``python -I -S``: stdlib
only, no fleetbench import, starts in milliseconds) as the leader of a new session::

    python -I -S _serverguard.py PARENT_PID STOP_TIMEOUT_S -- ARGV...

It runs ARGV as its child in its own process group and exits with the child's exit
code (128 + N for signal N). Why a guard: ``PR_SET_PDEATHSIG`` reaches only a direct
child, but a server may spawn processes of its own (vLLM's engine cores). The guard
asks for a signal when its parent (the worker) dies, however it dies (``kill -9`` of
fleetbench included); it then SIGTERMs the group, waits, and SIGKILLs the group,
itself included. On a normal stop the parent signals the group itself; the guard then
only waits for the child.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from types import FrameType

_PR_SET_PDEATHSIG = 1
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1)
_stop_requested = False


def _on_signal(signum: int, frame: FrameType | None) -> None:
    global _stop_requested
    _stop_requested = True


def _orphaned(parent_pid: int) -> bool:
    return os.getppid() != parent_pid


def _signal_group(sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(os.getpgid(0), sig)


def _exit_code(code: int) -> int:
    return code if code >= 0 else 128 - code


def main(argv: list[str]) -> int:
    parent_pid, stop_timeout_s = int(argv[1]), float(argv[2])
    command = argv[argv.index("--") + 1 :]
    for sig in _STOP_SIGNALS:
        signal.signal(sig, _on_signal)
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGUSR1)
    if _orphaned(parent_pid):  # the worker died before prctl took effect
        return 1
    try:
        child = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    except OSError as exc:
        sys.stderr.write(f"[fleetbench] cannot start the server: {exc}\n")
        return 127
    while not _stop_requested:
        try:
            return _exit_code(child.wait(timeout=0.25))
        except subprocess.TimeoutExpired:
            continue
    orphaned = _orphaned(parent_pid)
    if orphaned:  # nobody else will stop the group: do what stop() does
        _signal_group(signal.SIGTERM)
    deadline = time.monotonic() + stop_timeout_s
    while child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if orphaned or child.poll() is None:
        _signal_group(signal.SIGKILL)  # stragglers, and this guard with them
    return _exit_code(child.wait())


if __name__ == "__main__":
    sys.exit(main(sys.argv))
