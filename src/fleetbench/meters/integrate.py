"""Energy from power traces and from wrapping hardware counters.

Both end as a *cumulative* joule figure per device, so a measurement window is just
the difference of two readings: windows nest and overlap freely, and no trace has to
be kept in memory however long the run.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence


def trapezoid(times: Sequence[float], watts: Sequence[float]) -> float:
    """Joules under a power trace sampled at irregular times (seconds, watts)."""
    if len(times) != len(watts):
        raise ValueError("times and watts differ in length")
    return sum(
        (watts[i] + watts[i - 1]) / 2.0 * (times[i] - times[i - 1]) for i in range(1, len(times))
    )


def counter_delta(start: float, end: float, max_range: float | None) -> float | None:
    """Increase of a counter that wraps to 0 after ``max_range``; None if it went back
    and cannot have wrapped (a driver reset: the figure is unknown, not 0)."""
    if end >= start:
        return end - start
    if max_range is None or max_range <= 0:
        return None
    return (max_range - start) + end


class PowerIntegrator:
    """Running trapezoidal integral of power samples: a software energy counter.

    ``add`` may be called from a poller thread and from window marks at once; samples
    must come in time order per integrator, which the lock guarantees.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: tuple[float, float] | None = None
        self.joules = 0.0
        self.samples = 0

    def add(self, t: float, watts: float) -> float:
        with self._lock:
            if self._last is not None and t >= self._last[0]:
                t0, w0 = self._last
                self.joules += (w0 + watts) / 2.0 * (t - t0)
            if self._last is None or t >= self._last[0]:
                self._last = (t, watts)
            self.samples += 1
            return self.joules


class WrappingCounter:
    """Unwraps a hardware counter (RAPL ``energy_uj``): read it more often than it can
    wrap twice and the accumulated total stays exact."""

    def __init__(self, max_range: float | None) -> None:
        self._lock = threading.Lock()
        self.max_range = max_range
        self._last: float | None = None
        self.total = 0.0
        self.broken = False  # went backwards without a wrap range: stays unknown

    def update(self, raw: float) -> float | None:
        with self._lock:
            if self._last is not None:
                delta = counter_delta(self._last, raw, self.max_range)
                if delta is None:
                    self.broken = True
                else:
                    self.total += delta
            self._last = raw
            return None if self.broken else self.total
