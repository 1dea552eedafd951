"""A run's energy columns from its samples and attempts.

Run figures are sums of the per-sample windows. A figure is empty (None) when it
could not be measured, and also when some samples lack it (a partial sum would pass
for a low reading); ``energy_unmeasured_reason`` then says why. Samples stored before
the per-device columns existed fall back to their single ``energy_wh`` figure.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from fleetbench.meters.devices import CPU_KINDS, GPU_KINDS


def energy_columns(samples: list[sqlite3.Row], attempts: list[sqlite3.Row]) -> dict[str, Any]:
    notes: list[str] = []
    methods = sorted(
        {m for s in samples for m in (s["energy_method"] or "").split("+") if m and m != "none"}
    )
    per_device = any(
        s["gpu_energy_wh"] is not None or s["cpu_energy_wh"] is not None for s in samples
    )
    if per_device:
        gpu = _total(samples, "gpu_energy_wh", "gpu", notes)
        cpu = _total(samples, "cpu_energy_wh", "cpu", notes)
        gpu_gross = _total(samples, "gpu_energy_gross_wh", "", [])
        cpu_gross = _total(samples, "cpu_energy_gross_wh", "", [])
    else:  # legacy rows: one figure, GPU only if every method was NVML
        legacy = _total(samples, "energy_wh", "energy", notes)
        is_gpu = bool(methods) and all(m.startswith("nvml") for m in methods)
        gpu, cpu = (legacy, None) if is_gpu else (None, legacy)
        gpu_gross, cpu_gross = gpu, cpu
    records = _records(attempts)
    record = records[-1] if records else {}
    unmeasured = [f"{k}: {v}" for k, v in record.get("unmeasured", {}).items()]
    devices = record.get("devices", [])
    idle = record.get("idle_w") or {}
    return {
        "energy_wh": _total(samples, "energy_wh", "", []),
        "energy_method": "+".join(methods),
        "gpu_energy_wh": gpu,
        "gpu_energy_gross_wh": gpu_gross,
        "cpu_energy_wh": cpu,
        "cpu_energy_gross_wh": cpu_gross,
        "gpu_idle_w": _idle(devices, idle, GPU_KINDS),
        "cpu_idle_w": _idle(devices, idle, CPU_KINDS),
        "idle_baseline_s": record.get("idle_baseline_s"),
        "energy_unmeasured_reason": "; ".join(unmeasured + notes),
        "gpu_names": ", ".join(d.get("name") or "?" for d in devices if d["kind"] in GPU_KINDS),
        "peak_gpu_memory_mb": _peak_gpu_memory(records),
    }


def _total(samples: list[sqlite3.Row], column: str, label: str, notes: list[str]) -> float | None:
    values = [s[column] for s in samples]
    known = [v for v in values if v is not None]
    if not known:
        return None
    if len(known) < len(values):
        if label:
            notes.append(f"{label}: {len(values) - len(known)}/{len(values)} samples unmeasured")
        return None
    return float(sum(known))


def _records(attempts: list[sqlite3.Row]) -> list[dict[str, Any]]:
    return [json.loads(a["energy_json"]) for a in attempts if a["energy_json"]]


def _idle(devices: list[dict[str, Any]], idle: dict[str, Any], kinds: tuple[str, ...]) -> Any:
    """Summed idle watts of the devices of these kinds; None unless all were measured."""
    values = [idle.get(d["id"]) for d in devices if d["kind"] in kinds]
    if not values or any(v is None for v in values):
        return None
    return sum(values)


def _peak_gpu_memory(records: list[dict[str, Any]]) -> float | None:
    """NVML's view of the process tree; PyTorch's allocator peak where NVML had none."""
    peaks = []
    for record in records:
        mem = record.get("peak_gpu_memory_mb") or {}
        value = mem.get("nvml") if mem.get("nvml") is not None else mem.get("torch")
        if value is not None:
            peaks.append(float(value))
    return max(peaks) if peaks else None
