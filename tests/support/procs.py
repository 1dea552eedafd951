"""Process helpers for tests."""

from __future__ import annotations

import time
from pathlib import Path


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie awaiting its reaper counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def wait_dead(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


def burn_cpu(seconds: float = 0.05) -> None:
    """Spend ``seconds`` of this process's CPU time: enough clock ticks (10 ms each in
    /proc) for a CPU-time meter to see, however fast the machine (a fixed loop took
    under one tick on a quiet one)."""
    start = time.process_time()
    while time.process_time() - start < seconds:
        sum(i * i for i in range(10_000))
