"""Energy meters around a measurement window.

Only the CPU-time estimate exists so far: CPU seconds of the worker process (all its
threads) x a per-core power figure. It is always labelled ``estimate``; measured
methods (NVML, RAPL) plug in behind the same ``EnergyMeter`` interface.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

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
        self._start = 0.0

    def begin(self) -> None:
        self._start = time.process_time()

    def end(self) -> EnergyReading:
        cpu = max(0.0, time.process_time() - self._start)
        return EnergyReading(cpu * self.watts_per_core / 3600.0, self.method, cpu)


def co2_grams(energy_wh: float | None, intensity_g_per_kwh: float) -> float | None:
    return None if energy_wh is None else energy_wh / 1000.0 * intensity_g_per_kwh
