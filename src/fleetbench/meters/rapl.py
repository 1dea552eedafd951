"""CPU package and DRAM energy from RAPL counters (``/sys/class/powercap``).

Counted zones: every top-level ``package-N`` and each ``dram`` sub-zone. ``core`` and
``uncore`` are parts of a package and ``psys`` contains the packages, so counting them
too would count energy twice. Counters wrap at ``max_energy_range_uj`` (minutes at
full load on big CPUs): the poller reads them every few seconds so no wrap is missed.
Since Linux 5.10 ``energy_uj`` is readable by root only; a meter that cannot read it
is not used, and the reason is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fleetbench.meters.devices import CPU, DRAM, RAPL, Device
from fleetbench.meters.integrate import WrappingCounter
from fleetbench.meters.poller import Poller

POWERCAP = Path("/sys/class/powercap")
# A 262 kJ range (common) lasts ~17 min at 250 W; 5 s leaves a wide margin.
GUARD_HZ = 0.2


@dataclass(frozen=True)
class Zone:
    path: Path
    device: Device


def find_zones(root: Path = POWERCAP) -> tuple[list[Zone], str | None]:
    """RAPL zones to meter, or none and the reason."""
    if not root.is_dir():
        return [], f"{root} not present"
    zones: list[Zone] = []
    for path in sorted(root.glob("intel-rapl:*")):
        name = _text(path / "name")
        parts = path.name.split(":")
        if name is None:
            continue
        if len(parts) == 2 and name.startswith("package"):
            pkg = name.split("-", 1)[1] if "-" in name else parts[1]
            zones.append(Zone(path, Device(f"cpu-package-{pkg}", CPU, RAPL, {"zone": path.name})))
        elif len(parts) == 3 and name == "dram":
            zones.append(Zone(path, Device(f"dram-{parts[1]}", DRAM, RAPL, {"zone": path.name})))
    if not zones:
        return [], f"no RAPL package zones under {root}"
    unreadable = [z.path.name for z in zones if _number(z.path / "energy_uj") is None]
    if unreadable:
        return [], f"cannot read energy_uj of {', '.join(unreadable)} (root only since Linux 5.10)"
    return zones, None


class RaplMeter:
    def __init__(self, zones: list[Zone]) -> None:
        self._zones = zones
        self.devices = [z.device for z in zones]
        self._counters = {
            z.device.id: WrappingCounter(_number(z.path / "max_energy_range_uj")) for z in zones
        }
        self.read()  # first read sets each counter's origin

    def read(self) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for zone in self._zones:
            raw = _number(zone.path / "energy_uj")
            counter = self._counters[zone.device.id]
            total = None if raw is None else counter.update(raw)
            out[zone.device.id] = None if total is None else total / 1e6
        return out

    def attach(self, poller: Poller) -> None:
        poller.add("rapl-wrap-guard", GUARD_HZ, self.read)

    def close(self) -> None:
        pass


def _text(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _number(path: Path) -> float | None:
    text = _text(path)
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None
