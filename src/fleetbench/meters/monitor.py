"""The energy monitor: every available device meter behind one begin/end window.

``probe`` picks, per device class, the best method this machine allows and records
why anything else could not be measured:

* GPUs: NVML counter, else NVML power polling (``meters.nvml``);
* CPU and DRAM: RAPL (``meters.rapl``), else the CPU-time ``estimate``.

``begin`` returns a mark and ``end(mark)`` the energy since then, so windows nest
(the whole run, each sample). ``measure_idle`` records idle watts per measured
device; window readings subtract them (net) next to the raw (gross) figures. The
estimate has no idle part (it counts only the run's own CPU time), so no idle
baseline is taken when the estimate is all there is.

Library choice: the meters are small modules over nvidia-ml-py and sysfs rather than
Zeus or CodeCarbon; the reasons are in ``meters.nvml``'s docstring.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleetbench.meters.devices import DeviceEnergy, DeviceMeter, WindowReading
from fleetbench.meters.energy import ESTIMATE
from fleetbench.meters.estimate import CpuTime, EstimateMeter, watts_per_core
from fleetbench.meters.host import cpu_model
from fleetbench.meters.nvml import NvmlMeter, load_nvml, torch_peak_memory_mb, visible_gpus
from fleetbench.meters.poller import Poller
from fleetbench.meters.rapl import POWERCAP, RaplMeter, find_zones


@dataclass(frozen=True)
class MeterSettings:
    watts_per_core: float | None = None  # override of the TDP table
    default_watts_per_core: float = 10.0
    idle_baseline_s: float = 2.0
    poll_hz: float = 20.0
    gpu: bool = True  # False: do not even look for GPUs
    powercap_root: Path = POWERCAP
    nvml: Any = None  # a stand-in for pynvml (tests)


@dataclass(frozen=True)
class Mark:
    t: float
    cpu_s: float
    joules: dict[str, float | None]


@dataclass
class EnergyMonitor:
    meters: list[DeviceMeter]
    cpu: CpuTime
    unmeasured: dict[str, str] = field(default_factory=dict)
    idle_w: dict[str, float | None] = field(default_factory=dict)
    idle_s: float = 0.0
    poller: Poller = field(default_factory=Poller)
    clock: Any = time.monotonic

    @classmethod
    def probe(cls, settings: MeterSettings) -> EnergyMonitor:
        meters: list[DeviceMeter] = []
        unmeasured: dict[str, str] = {}
        gpu, reason = _gpu_meter(settings) if settings.gpu else (None, "GPU metering disabled")
        if gpu is not None:
            meters.append(gpu)
        else:
            unmeasured["gpu"] = reason or "no NVIDIA GPU"
        zones, reason = find_zones(settings.powercap_root)
        cpu = CpuTime()
        if zones:
            meters.append(RaplMeter(zones))
        else:
            unmeasured["rapl"] = reason or "no RAPL"
            watts, source = watts_per_core(
                cpu_model(), settings.watts_per_core, settings.default_watts_per_core
            )
            meters.append(EstimateMeter(cpu, watts, source))
        monitor = cls(meters, cpu, unmeasured)
        for meter in meters:
            meter.attach(monitor.poller)
        monitor.poller.start()
        return monitor

    @property
    def measured(self) -> bool:
        """Whether any device has a real (non-estimate) meter."""
        return any(d.method != ESTIMATE for m in self.meters for d in m.devices)

    def begin(self, relist: bool = False) -> Mark:
        """A window starts; ``relist`` looks for new child processes first (the run's
        window, after a backend may have started a server)."""
        return self._mark(relist)

    def _mark(self, relist: bool = False) -> Mark:
        cpu_s = self.cpu.refresh(relist)  # first: the estimate meter reads this total
        joules: dict[str, float | None] = {}
        for meter in self.meters:
            joules.update(meter.read())
        return Mark(self.clock(), cpu_s, joules)

    def end(self, start: Mark) -> WindowReading:
        return self.between(start, self._mark())

    def between(self, start: Mark, end: Mark) -> WindowReading:
        duration = max(0.0, end.t - start.t)
        devices = []
        for meter in self.meters:
            for d in meter.devices:
                a, b = start.joules.get(d.id), end.joules.get(d.id)
                gross = None if a is None or b is None else max(0.0, b - a)
                idle = self.idle_w.get(d.id)
                net = gross if gross is None or idle is None else max(0.0, gross - idle * duration)
                devices.append(DeviceEnergy(d.id, d.kind, d.method, gross, net, idle))
        return WindowReading(duration, max(0.0, end.cpu_s - start.cpu_s), tuple(devices))

    def measure_idle(self, seconds: float) -> dict[str, float | None]:
        """Idle watts per measured device over ``seconds`` of doing nothing."""
        if seconds <= 0 or not self.measured:
            return {}
        start = self._mark()
        time.sleep(seconds)
        reading = self.between(start, self._mark())
        self.idle_s = reading.duration_s
        self.idle_w = {
            d.device: None if d.gross_j is None else d.gross_j / reading.duration_s
            for d in reading.devices
            if d.method != ESTIMATE
        }
        return self.idle_w

    def peak_gpu_memory_mb(self) -> dict[str, float | None]:
        nvml = [m.peak_memory_bytes for m in self.meters if isinstance(m, NvmlMeter)]
        known = [b for b in nvml if b is not None]
        return {
            "nvml": sum(known) / 2**20 if known else None,
            "torch": torch_peak_memory_mb(),
        }

    def record(self) -> dict[str, Any]:
        """What an attempt stores: devices, methods, idle baseline, what was not measured."""
        return {
            "devices": [
                {"id": d.id, "kind": d.kind, "method": d.method, **d.info}
                for m in self.meters
                for d in m.devices
            ],
            "unmeasured": dict(self.unmeasured),
            "idle_baseline_s": self.idle_s if self.idle_w else None,
            "idle_w": dict(self.idle_w),
            "peak_gpu_memory_mb": self.peak_gpu_memory_mb(),
            "peak_power_w": {
                k: v
                for m in self.meters
                if isinstance(m, NvmlMeter)
                for k, v in m.peak_power_w.items()
            },
            "poller": {"ticks": self.poller.ticks, "cpu_s": self.poller.cpu_seconds},
        }

    def close(self) -> None:
        self.poller.stop()
        for meter in self.meters:
            meter.close()


def _gpu_meter(settings: MeterSettings) -> tuple[NvmlMeter | None, str | None]:
    """The NVML meter, or None and why; an NVML failure never stops a run."""
    nvml, reason = (settings.nvml, None) if settings.nvml else load_nvml()
    if nvml is None:
        return None, reason
    try:
        handles, reason = visible_gpus(nvml)
        if handles:
            return NvmlMeter(nvml, handles, settings.poll_hz), None
    except Exception as exc:  # NVMLError from a lost or misbehaving GPU
        reason = f"NVML error: {exc}"
    if nvml is not settings.nvml:
        with contextlib.suppress(Exception):
            nvml.nvmlShutdown()
    return None, reason
