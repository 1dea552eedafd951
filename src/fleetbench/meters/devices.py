"""What every device meter provides, and what a measurement window reads.

A meter exposes *cumulative* joules per device (a hardware counter, a software
integral of polled power, or CPU time x watts); a window is the difference of two
readings, so windows nest: the whole run, and each sample inside it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from fleetbench.meters.derived import JOULES_PER_WH
from fleetbench.meters.energy import NONE
from fleetbench.meters.poller import Poller

GPU, CPU, DRAM = "gpu", "cpu", "dram"
GPU_KINDS, CPU_KINDS = (GPU,), (CPU, DRAM)  # what the "gpu" and "cpu" columns add up
NVML_COUNTER = "nvml-counter"
NVML_POLLING = "nvml-polling"
RAPL = "rapl"


@dataclass(frozen=True)
class Device:
    id: str  # "gpu0", "cpu-package-0", "dram-0", "cpu"
    kind: str  # GPU, CPU or DRAM
    method: str  # NVML_COUNTER, NVML_POLLING, RAPL or "estimate"
    info: dict[str, Any] = field(default_factory=dict)


class DeviceMeter(Protocol):
    devices: list[Device]

    def read(self) -> dict[str, float | None]:
        """Cumulative joules per device id; None where this read failed."""
        ...

    def attach(self, poller: Poller) -> None:
        """Register background work (power polling, wrap guards), if any."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class DeviceEnergy:
    device: str
    kind: str
    method: str
    gross_j: float | None
    net_j: float | None
    idle_w: float | None


@dataclass(frozen=True)
class WindowReading:
    duration_s: float
    cpu_seconds: float
    devices: tuple[DeviceEnergy, ...]

    def _of(self, kind: str) -> list[DeviceEnergy]:
        kinds = GPU_KINDS if kind == GPU else CPU_KINDS
        return [d for d in self.devices if d.kind in kinds]

    def wh(self, kind: str, *, net: bool = True) -> float | None:
        """Energy of the GPUs (``gpu``) or of CPU packages + DRAM (``cpu``) in Wh;
        None when none is metered or one of them could not be read."""
        values = [d.net_j if net else d.gross_j for d in self._of(kind)]
        if not values or any(v is None for v in values):
            return None
        return sum(v for v in values if v is not None) / JOULES_PER_WH

    def methods(self) -> list[str]:
        return sorted({d.method for d in self.devices})

    def sample_fields(self) -> dict[str, Any]:
        """The per-sample store columns; ``energy_wh`` is the net total of all metered
        devices (None if any could not be read), labelled with every method in it."""
        gpu, cpu = self.wh(GPU), self.wh(CPU)
        present = [v for k, v in ((GPU, gpu), (CPU, cpu)) if self._of(k)]
        total = None if not present or None in present else sum(v for v in present if v)
        return {
            "cpu_seconds": self.cpu_seconds,
            "energy_wh": total,
            "energy_method": "+".join(self.methods()) or NONE,
            "gpu_energy_wh": gpu,
            "gpu_energy_gross_wh": self.wh(GPU, net=False),
            "cpu_energy_wh": cpu,
            "cpu_energy_gross_wh": self.wh(CPU, net=False),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "duration_s": self.duration_s,
            "cpu_seconds": self.cpu_seconds,
            "devices": [asdict(d) for d in self.devices],
        }
