"""A run's energy columns from its samples and attempts.

Run figures are sums of the per-sample windows. A figure is empty (None) when it
could not be measured, and also when some samples lack it (a partial sum would pass
for a low reading); ``energy_unmeasured_reason`` then says why. Samples stored before
the per-device columns existed fall back to their single ``energy_wh`` figure.

``energy_scope`` names what the meters could see of the model's work (the backend's
``energy_scope`` hook, stored with each attempt's energy record): ``in-process`` and
``client + managed server`` runs are metered whole. For ``client only`` (a local
server fleetbench did not start) and ``remote API`` runs the meters see only
fleetbench's own process — tokens per joule ~25 times too high against an external server — so
their energy figures are empty with the reason, unless the plan's
``energy.client_only: true`` asks for that client figure, which the reason then
labels. Runs stored before scopes were recorded have an empty scope and keep their
figures.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from fleetbench.backends.base import CLIENT_ONLY, REMOTE_API
from fleetbench.meters.devices import CPU_KINDS, GPU_KINDS
from fleetbench.store.aggregates import ENERGY_COLUMNS

# The per-run energy figures a scope without the model's work empties.
ENERGY_FIGURES = (
    "energy_wh",
    "gpu_energy_wh",
    "gpu_energy_gross_wh",
    "cpu_energy_wh",
    "cpu_energy_gross_wh",
)
_UNMETERED = {
    CLIENT_ONLY: "the server was not started by fleetbench, so its energy is not metered "
    "(only fleetbench's own process would be): let fleetbench start it (options.server), "
    "or set energy.client_only: true for the client's own figure",
    REMOTE_API: "the model runs on a remote host, whose energy cannot be metered here",
}


@dataclass(frozen=True)
class EnergyCounts:
    """What the energy rules read from a run's samples (counted in SQL by
    ``store.aggregates.run_stats``, or from rows by ``energy_counts``): the number of
    samples, their distinct ``energy_method`` values, and per energy column
    (``store.aggregates.ENERGY_COLUMNS``) how many have it and their sum."""

    samples: int
    methods: frozenset[str]
    known: dict[str, int]
    sums: dict[str, float | None]


def energy_counts(samples: list[sqlite3.Row]) -> EnergyCounts:
    known = {c: sum(1 for s in samples if s[c] is not None) for c in ENERGY_COLUMNS}
    sums = {
        c: float(sum(s[c] for s in samples if s[c] is not None)) if known[c] else None
        for c in ENERGY_COLUMNS
    }
    methods = frozenset(s["energy_method"] for s in samples if s["energy_method"] is not None)
    return EnergyCounts(len(samples), methods, known, sums)


def energy_columns(
    samples: list[sqlite3.Row], attempts: list[sqlite3.Row], client_only: bool = False
) -> dict[str, Any]:
    return energy_columns_from(energy_counts(samples), attempts, client_only)


def energy_columns_from(
    counts: EnergyCounts, attempts: list[sqlite3.Row], client_only: bool = False
) -> dict[str, Any]:
    columns = _measured_columns(counts, attempts)
    scope = energy_scope(attempts)
    outside = [p for p in scope_parts(scope) if p in _UNMETERED]
    if outside:
        if client_only:
            note = "fleetbench's own process only, not the server's (energy.client_only: true)"
        else:
            note = "; ".join(_UNMETERED[p] for p in outside)
            columns.update(dict.fromkeys(ENERGY_FIGURES))
        reason = columns["energy_unmeasured_reason"]
        columns["energy_unmeasured_reason"] = "; ".join(
            filter(None, [f"energy_scope {scope}: {note}", reason])
        )
    return {**columns, "energy_scope": scope}


def energy_scope(attempts: list[sqlite3.Row]) -> str:
    """The scopes of the run's attempts (one, normally; an ensemble's members may add
    more), comma-separated in order of appearance; "" where none was recorded."""
    parts = [p for record in _records(attempts) for p in scope_parts(record.get("scope") or "")]
    return ", ".join(dict.fromkeys(parts))


def scope_parts(scope: str) -> list[str]:
    return [p for p in scope.split(", ") if p]


def _measured_columns(counts: EnergyCounts, attempts: list[sqlite3.Row]) -> dict[str, Any]:
    notes: list[str] = []
    methods = sorted(
        {m for method in counts.methods for m in (method or "").split("+") if m and m != "none"}
    )
    per_device = bool(counts.known["gpu_energy_wh"] or counts.known["cpu_energy_wh"])
    if per_device:
        gpu = _total(counts, "gpu_energy_wh", "gpu", notes)
        cpu = _total(counts, "cpu_energy_wh", "cpu", notes)
        gpu_gross = _total(counts, "gpu_energy_gross_wh", "", [])
        cpu_gross = _total(counts, "cpu_energy_gross_wh", "", [])
    else:  # legacy rows: one figure, GPU only if every method was NVML
        legacy = _total(counts, "energy_wh", "energy", notes)
        is_gpu = bool(methods) and all(m.startswith("nvml") for m in methods)
        gpu, cpu = (legacy, None) if is_gpu else (None, legacy)
        gpu_gross, cpu_gross = gpu, cpu
    total = _total(counts, "energy_wh", "", [])
    shared = _shared(attempts)
    if shared:  # device-wide meters read the sum of every run on the device
        if "rapl" in methods and "cpu" in shared:
            cpu = cpu_gross = total = None
            notes.append("cpu: RAPL measured the package shared with runs executing at once")
        gpus = [d for d in shared if d.startswith("gpu")]
        if gpus and any(m.startswith("nvml") for m in methods):
            gpu = gpu_gross = total = None
            notes.append(f"gpu: {', '.join(gpus)} shared with runs executing at once")
    records = _records(attempts)
    record = records[-1] if records else {}
    unmeasured = [f"{k}: {v}" for k, v in record.get("unmeasured", {}).items()]
    devices = record.get("devices", [])
    idle = record.get("idle_w") or {}
    return {
        "energy_wh": total,
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
        "gpu_peak_power_w": _peak_power(records, devices),
        "shared_device": ", ".join(shared),
    }


def _shared(attempts: list[sqlite3.Row]) -> list[str]:
    """Devices any attempt shared with concurrent runs (parallel executors)."""
    names: list[str] = []
    for a in attempts:
        value = a["shared_device"] if "shared_device" in a.keys() else None  # noqa: SIM118
        names += [n.strip() for n in (value or "").split(",") if n.strip()]
    return list(dict.fromkeys(names))


def _total(counts: EnergyCounts, column: str, label: str, notes: list[str]) -> float | None:
    known, total = counts.known[column], counts.samples
    if not known:
        return None
    if known < total:
        if label:
            notes.append(f"{label}: {total - known}/{total} samples unmeasured")
        return None
    value = counts.sums[column]
    return None if value is None else float(value)


def _records(attempts: list[sqlite3.Row]) -> list[dict[str, Any]]:
    return [json.loads(a["energy_json"]) for a in attempts if a["energy_json"]]


def _idle(devices: list[dict[str, Any]], idle: dict[str, Any], kinds: tuple[str, ...]) -> Any:
    """Summed idle watts of the devices of these kinds; None unless all were measured."""
    values = [idle.get(d["id"]) for d in devices if d["kind"] in kinds]
    if not values or any(v is None for v in values):
        return None
    return sum(values)


def _peak_power(records: list[dict[str, Any]], devices: list[dict[str, Any]]) -> float | None:
    """The highest NVML power sample of the run's GPUs (W, idle included, model load
    included: the attempt's whole metered time), summed over its GPUs (an upper bound
    of their joint peak); None unless every GPU of an attempt was sampled (attempts
    stored before peaks were recorded have none)."""
    peaks = []
    gpus = [d["id"] for d in devices if d["kind"] in GPU_KINDS]
    for record in records:
        sampled = record.get("peak_power_w") or {}
        if gpus and all(g in sampled for g in gpus):
            peaks.append(float(sum(sampled[g] for g in gpus)))
    return max(peaks) if peaks else None


def gpu_power_columns(summary: dict[str, Any]) -> dict[str, Any]:
    """GPU average power over the generation window (the gross GPU energy, idle
    included as the meter read it, over the generation wall time) and the peak power
    sample; empty with ``gpu_power_reason`` where not measured."""
    energy, seconds = summary.get("gpu_energy_gross_wh"), summary.get("generation_seconds")
    peak = summary.get("gpu_peak_power_w")
    average = float(energy) * 3600.0 / float(seconds) if energy is not None and seconds else None
    reasons = []
    if energy is None:
        reasons.append("no GPU energy measured")
    elif not seconds:
        reasons.append("no generation wall time (samples without timestamps)")
    if peak is None and energy is not None:
        reasons.append("no power samples recorded (runs stored before peaks were)")
    return {
        "gpu_avg_power_w": average,
        "gpu_peak_power_w": peak,
        "gpu_power_reason": "; ".join(reasons) if average is None or peak is None else "",
    }


def _peak_gpu_memory(records: list[dict[str, Any]]) -> float | None:
    """NVML's view of the process tree; PyTorch's allocator peak where NVML had none."""
    peaks = []
    for record in records:
        mem = record.get("peak_gpu_memory_mb") or {}
        value = mem.get("nvml") if mem.get("nvml") is not None else mem.get("torch")
        if value is not None:
            peaks.append(float(value))
    return max(peaks) if peaks else None
