"""Energy method labels shared by the meters and the reports.

Runs are metered by ``meters.monitor.EnergyMonitor`` (NVML, RAPL or the CPU-time
estimate in ``meters.estimate``; nestable windows, idle baseline).
"""

ESTIMATE = "estimate"
NONE = "none"
