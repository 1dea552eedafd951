"""Energy labels and the original single-window CPU-time estimate.

Runs are metered by ``meters.monitor.EnergyMonitor`` (NVML, RAPL or the estimate in
``meters.estimate``, nestable windows, idle baseline); ``CpuTimeEstimate`` stays as a
one-window form of the estimate: CPU seconds of the worker process (all its threads)
and of every process it started x a per-core power figure, labelled ``estimate``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Protocol

import psutil

ESTIMATE = "estimate"
NONE = "none"


@dataclass(frozen=True)
class EnergyReading:
    energy_wh: float | None
    method: str
    cpu_seconds: float


class EnergyMeter(Protocol):
    method: str

    def begin(self) -> None: ...

    def end(self) -> EnergyReading: ...


class CpuTimeEstimate:
    """Estimate from CPU time; ``watts_per_core`` is power of one fully busy core."""

    method = ESTIMATE

    def __init__(self, watts_per_core: float) -> None:
        self.watts_per_core = watts_per_core
        self._start: dict[int, float] = {}

    def begin(self) -> None:
        self._start = tree_cpu_seconds()

    def end(self) -> EnergyReading:
        now = tree_cpu_seconds()
        # A process born inside the window counts from zero; one that died inside it
        # is lost (short-lived helpers only: servers live for the whole run).
        cpu = sum(max(0.0, t - self._start.get(pid, 0.0)) for pid, t in now.items())
        return EnergyReading(cpu * self.watts_per_core / 3600.0, self.method, cpu)


def tree_cpu_seconds() -> dict[int, float]:
    """CPU seconds (user + system) of this process and each live descendant, by pid."""
    me = psutil.Process()
    out: dict[int, float] = {}
    for proc in [me, *me.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            t = proc.cpu_times()
            out[proc.pid] = t.user + t.system
    return out


def co2_grams(energy_wh: float | None, intensity_g_per_kwh: float) -> float | None:
    return None if energy_wh is None else energy_wh / 1000.0 * intensity_g_per_kwh
