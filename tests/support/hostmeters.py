"""What this host's energy meters offer, asked of fleetbench's own meters, so that a
test expects what a run here is really metered by: the CPU-time estimate on the
project's machines, NVML and RAPL elsewhere. The suite then runs unchanged on a GPU box.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from fleetbench.meters.monitor import EnergyMonitor, MeterSettings


@dataclass(frozen=True)
class HostMeters:
    methods: tuple[str, ...]  # energy methods a run here records, sorted
    unmeasured: frozenset[str]  # device classes that are not measured: "gpu", "rapl"

    @property
    def energy_method(self) -> str:
        """The ``energy_method`` label of a run on this host (e.g. ``estimate``)."""
        return "+".join(self.methods)

    @property
    def gpu(self) -> bool:
        """Whether NVML meters a GPU here (then GPU energy columns are filled)."""
        return "gpu" not in self.unmeasured

    @property
    def rapl(self) -> bool:
        """Whether RAPL meters the CPU here (then the CPU-time estimate is not used)."""
        return "rapl" not in self.unmeasured


@functools.cache
def host_meters() -> HostMeters:
    monitor = EnergyMonitor.probe(MeterSettings(idle_baseline_s=0))
    try:
        methods = sorted({d.method for m in monitor.meters for d in m.devices})
        return HostMeters(tuple(methods), frozenset(monitor.unmeasured))
    finally:
        monitor.close()
