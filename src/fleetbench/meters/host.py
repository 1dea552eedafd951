"""Facts about the machine a run executes on, stored with every attempt."""

from __future__ import annotations

import os
import platform
import socket
import sys
import time
from functools import cache
from typing import Any

import psutil

from fleetbench import __version__
from fleetbench.meters.nvml import gpu_names


@cache
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def host_info() -> dict[str, Any]:
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "fleetbench": __version__,
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "ram_total_gb": round(psutil.virtual_memory().total / 2**30, 2),
        "gpus": gpu_names(),  # visible NVIDIA GPUs; empty without NVML
    }


def peak_rss_mb() -> float:
    """Peak resident memory of this process (Linux reports ru_maxrss in KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def available_cores() -> int:
    """Physical cores this process may run on: its CPU affinity, less SMT siblings.

    Compute-bound backends (llama.cpp) spin a thread per core; more threads than
    physical cores, or cores another run is using, make every thread wait at each
    barrier (one sample went from 3.6 s to ~100 s on a busy 2-core machine).
    """
    logical_total = psutil.cpu_count(logical=True) or 1
    physical_total = psutil.cpu_count(logical=False) or logical_total
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else logical_total
    per_core = max(1, logical_total // physical_total)
    return max(1, allowed // per_core)


class CpuContention:
    """How many cores *other* processes kept busy while a run was generating.

    System-wide busy CPU time minus this process tree's own, over the wall time: a
    figure above the cores the run left free means the run competed for its cores
    and its timings are not comparable with a quiet machine's.
    """

    def __init__(self) -> None:
        self._start = (time.monotonic(), _system_busy_s(), _own_cpu_s())

    def others_load(self) -> float:
        wall0, busy0, own0 = self._start
        wall = time.monotonic() - wall0
        if wall <= 0:
            return 0.0
        others = (_system_busy_s() - busy0) - (_own_cpu_s() - own0)
        return max(0.0, others / wall)

    def busy_warning(self, threads: int) -> str | None:
        """A line for the run log when others used more than the cores left free."""
        logical = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
        free = max(0, logical - threads)
        load = self.others_load()
        if load <= free + 0.5:
            return None
        return (
            f"machine busy during the run: other processes kept {load:.1f} cores busy while "
            f"this run used {threads} thread(s) on {logical} core(s); timings are not "
            "comparable with a quiet machine's"
        )


def _system_busy_s() -> float:
    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


def _own_cpu_s() -> float:
    me = psutil.Process()
    total = sum(me.cpu_times()[:2])
    for child in me.children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.Error:
            continue
    return float(total)
