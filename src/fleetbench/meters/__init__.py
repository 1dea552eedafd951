"""Meters: time, tokens, energy, memory and host facts."""

from fleetbench.meters.energy import (
    ESTIMATE,
    NONE,
    CpuTimeEstimate,
    EnergyMeter,
    EnergyReading,
    co2_grams,
)
from fleetbench.meters.host import host_info, peak_rss_mb

__all__ = [
    "ESTIMATE",
    "NONE",
    "CpuTimeEstimate",
    "EnergyMeter",
    "EnergyReading",
    "co2_grams",
    "host_info",
    "peak_rss_mb",
]
