"""The CPU-time estimate: CPU seconds of the run's process tree x watts per busy core.

Used where no CPU energy counter is readable (no RAPL, as on virtual machines). The
per-core figure is the plan's ``energy.watts_per_core`` when set, else the CPU model's
TDP / physical cores from a small table of common CPUs, else a configurable default.
It ignores idle and shared (uncore, DRAM) power, so it is always labelled ``estimate``
and never subtracted from or mixed up with a measured figure.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import threading
import time
from pathlib import Path

import psutil

from fleetbench.meters.devices import CPU, Device
from fleetbench.meters.energy import ESTIMATE
from fleetbench.meters.poller import Poller

# (pattern in /proc/cpuinfo's model name, TDP watts, physical cores): vendor spec sheets.
CPU_TDP: list[tuple[str, float, int]] = [
    (r"EPYC 7742\b", 225, 64),
    (r"EPYC 7763\b", 280, 64),
    (r"EPYC 7543\b", 225, 32),
    (r"EPYC 9554\b", 360, 64),
    (r"EPYC 9654\b", 360, 96),
    (r"Threadripper 3990X\b", 280, 64),
    (r"Ryzen 7 5800X\b", 105, 8),
    (r"Ryzen 9 5950X\b", 105, 16),
    (r"Ryzen 9 7950X\b", 170, 16),
    (r"Platinum 8480", 350, 56),
    (r"Platinum 8380\b", 270, 40),
    (r"Platinum 8358\b", 250, 32),
    (r"Gold 6338\b", 205, 32),
    (r"Gold 6248\b", 150, 20),
    (r"Gold 6130\b", 125, 16),
    (r"E5-2690 v4\b", 135, 14),
    (r"i9-13900K\b", 125, 24),
    (r"i7-12700K\b", 125, 12),
    (r"i7-1165G7\b", 28, 4),
]


def watts_per_core(cpu_model: str, override: float | None, default: float) -> tuple[float, str]:
    """The per-core figure and where it came from (stored with the run)."""
    if override is not None:
        return override, "plan energy.watts_per_core"
    for pattern, tdp, cores in CPU_TDP:
        if match := re.search(pattern, cpu_model):
            return tdp / cores, f"{match.group(0)}: TDP {tdp:g} W / {cores} cores"
    return default, f"default (CPU model {cpu_model!r} not in the TDP table)"


class CpuTime:
    """Cumulative CPU seconds of this process and its descendants.

    A process born between two reads counts from zero; one that died between them is
    lost (short-lived helpers only: managed servers live for the whole run). Listing
    descendants scans all of /proc (milliseconds on a busy host), so it is redone at
    most every ``LIST_EVERY_S``; a read in between costs microseconds. A descendant
    first seen late but born before the previous read counts from now on, so CPU it
    spent earlier (a server loading its model) is never charged to a later window.
    """

    LIST_EVERY_S = 2.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._me = psutil.Process()
        self._children: dict[int, psutil.Process] = {}
        self._listed_at = -math.inf
        self._last = self._sample()
        self._last_at = _since_boot()
        self.total = 0.0

    def refresh(self, relist: bool = False) -> float:
        """``relist``: look for new descendants now (a server started since)."""
        with self._lock:
            now, at = self._sample(relist), _since_boot()
            for pid, t in now.items():
                prev = self._last.get(pid)
                if prev is None:
                    born = _started(pid)
                    # Start times are whole clock ticks (10 ms): allow one.
                    prev = 0.0 if born is None or born >= self._last_at - _TICK_S else t
                self.total += max(0.0, t - prev)
            self._last, self._last_at = now, at
            return self.total

    def _sample(self, relist: bool = False) -> dict[int, float]:
        if relist or time.monotonic() - self._listed_at >= self.LIST_EVERY_S:
            with contextlib.suppress(psutil.Error):
                # Keep known Process objects: psutil checks they are still the same process.
                found = self._me.children(recursive=True)
                self._children = {p.pid: self._children.get(p.pid, p) for p in found}
            self._listed_at = time.monotonic()
        own = os.times()
        out = {self._me.pid: own.user + own.system}
        for pid, proc in list(self._children.items()):
            try:
                t = proc.cpu_times()
                out[pid] = t.user + t.system
            except psutil.Error:
                del self._children[pid]
        return out


_TICK_S = 1.0 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.01
_BOOTTIME = getattr(time, "CLOCK_BOOTTIME", None)


def _since_boot() -> float:
    # /proc/PID/stat start times count from boot in CLOCK_BOOTTIME; wall-clock create
    # times are rounded to whole seconds of the boot time, too coarse for this.
    return time.clock_gettime(_BOOTTIME) if _BOOTTIME is not None else time.monotonic()


def _started(pid: int) -> float | None:
    """When a process started, in seconds since boot (Linux); None if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat[stat.rindex(")") + 2 :].split()[19]) * _TICK_S
    except (OSError, ValueError, IndexError):
        return None


class EstimateMeter:
    """Joules = CPU seconds x watts per core. Reads the shared ``CpuTime`` that the
    monitor refreshes once per mark, so a mark walks the process tree only once."""

    def __init__(self, cpu: CpuTime, watts: float, source: str) -> None:
        self._cpu = cpu
        self.watts_per_core = watts
        self.devices = [
            Device("cpu", CPU, ESTIMATE, {"watts_per_core": watts, "watts_source": source})
        ]

    def read(self) -> dict[str, float | None]:
        return {"cpu": self._cpu.total * self.watts_per_core}

    def attach(self, poller: Poller) -> None:
        pass

    def close(self) -> None:
        pass
