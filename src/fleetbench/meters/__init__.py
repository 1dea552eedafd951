"""Meters: time, tokens, energy, memory and host facts."""

from fleetbench.meters.energy import ESTIMATE, NONE
from fleetbench.meters.host import host_info, peak_rss_mb

__all__ = ["ESTIMATE", "NONE", "host_info", "peak_rss_mb"]
