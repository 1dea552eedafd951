"""Facts about the machine a run executes on, stored with every attempt."""

from __future__ import annotations

import os
import platform
import socket
import sys
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
