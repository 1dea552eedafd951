"""NVIDIA GPU energy and memory through NVML (``pip install 'fleetbench[nvml]'``).

Energy per visible GPU (``CUDA_VISIBLE_DEVICES`` by index or UUID, in CUDA order):
the cumulative energy counter (``nvmlDeviceGetTotalEnergyConsumption``, Volta and
newer) where the GPU has one, else power polled by the shared poller thread (>= 10 Hz)
and integrated with the trapezoid rule over the real timestamps; every mark also takes
a reading, so windows shorter than the poll period still see two points.

Why by hand on nvidia-ml-py (NVIDIA's own binding, no dependencies) rather than Zeus or
CodeCarbon (both evaluated, 2026-11): Zeus 0.16's ``ZeusMonitor`` has the same counter
and nestable windows, but depends on numpy, pandas, scikit-learn, amdsmi and tyro in
every worker, and polls older GPUs from a spawned process. CodeCarbon 3.3 also reads
the counter, but it is a run-level tracker sampling every 15 s by default (no window
per sample; power x interval where there is no counter) and depends on pandas,
requests, rapidfuzz, questionary and more. Neither subtracts idle power or tracks a
process tree's GPU memory, which we would have written anyway; the counter and power
reads themselves are a few NVML calls.
"""

from __future__ import annotations

import functools
import importlib
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from fleetbench.meters.devices import GPU, NVML_COUNTER, NVML_POLLING, Device
from fleetbench.meters.integrate import PowerIntegrator, WrappingCounter
from fleetbench.meters.poller import Poller

INSTALL_HINT = "pip install 'fleetbench[nvml]'"
MEMORY_HZ = 2.0
MIG_NOTE = "MIG instances"


def load_nvml() -> tuple[Any, str | None]:
    """The initialised ``pynvml`` module, or None and why GPUs cannot be metered."""
    nvml = _import_nvml()
    if nvml is None:
        if not Path("/proc/driver/nvidia").exists():
            return None, "no NVIDIA GPU (no NVIDIA driver; nvidia-ml-py not installed)"
        return None, f"no NVML (nvidia-ml-py not installed: {INSTALL_HINT})"
    try:
        nvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
        return None, f"no NVIDIA GPU (NVML: {exc})"
    return nvml, None


def _import_nvml() -> Any:
    try:
        return importlib.import_module("pynvml")
    except ImportError:
        return None


def visible_gpus(nvml: Any, env: Mapping[str, str] | None = None) -> tuple[list[Any], str | None]:
    """NVML handles of the GPUs this process may use, in CUDA's order, or none and why.

    The one reader of ``CUDA_VISIBLE_DEVICES`` (the fit check, the vLLM backend and the
    meters all come here): entries are indices or (prefixes of) UUIDs, read as CUDA
    reads them, up to the first entry that names no GPU (``""`` and ``-1`` hide all).
    Indices are NVML's (PCI bus) order, which is CUDA's under ``CUDA_DEVICE_ORDER=
    PCI_BUS_ID`` and on machines of one GPU model; runs pinned by fleetbench name UUIDs.
    MIG instances have no handle here (NVML has no per-instance energy).
    """
    count = int(nvml.nvmlDeviceGetCount())
    if count == 0:
        return [], "no NVIDIA GPU"
    all_handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
    spec = _visible_spec(env)
    if spec is None:
        return all_handles, None
    uuids = [_str(nvml.nvmlDeviceGetUUID(h)) for h in all_handles]
    picked, reason = _select(uuids, spec)
    return [all_handles[i] for i in picked], reason


def _select(uuids: list[str], spec: str) -> tuple[list[int], str | None]:
    """Which of the GPUs named by ``uuids`` (NVML order) ``spec`` leaves visible."""
    chosen: list[int] = []
    for entry in (e.strip() for e in spec.split(",")):
        if entry.isdigit() and int(entry) < len(uuids):
            index: int | None = int(entry)
        elif entry.upper().startswith("GPU-"):
            matches = [i for i, u in enumerate(uuids) if u.upper().startswith(entry.upper())]
            index = matches[0] if len(matches) == 1 else None
        elif entry.upper().startswith("MIG-"):
            return [], f"{MIG_NOTE} in CUDA_VISIBLE_DEVICES={spec!r}: NVML meters whole GPUs"
        else:
            index = None
        if index is None:
            break  # CUDA stops at the first entry it cannot resolve
        if index not in chosen:
            chosen.append(index)
    if not chosen:
        return [], f"CUDA_VISIBLE_DEVICES={spec!r} leaves no GPU visible"
    return chosen, None


def _visible_spec(env: Mapping[str, str] | None) -> str | None:
    """The ``CUDA_VISIBLE_DEVICES`` value, read here and nowhere else in fleetbench."""
    return (env if env is not None else os.environ).get("CUDA_VISIBLE_DEVICES")


def hidden_by_env(env: Mapping[str, str] | None = None) -> str | None:
    """Why ``CUDA_VISIBLE_DEVICES`` hides every GPU whatever the machine has (``""``,
    ``-1``, ``none``: the first entry names no GPU), else None; needs no driver."""
    spec = _visible_spec(env)
    if spec is None:
        return None
    first = spec.split(",")[0].strip().upper()
    if first.isdigit() or first.startswith(("GPU-", "MIG-")):
        return None
    return f"CUDA_VISIBLE_DEVICES={spec!r} leaves no GPU visible"


def uses_mig(env: Mapping[str, str] | None = None) -> bool:
    """Whether ``CUDA_VISIBLE_DEVICES`` names MIG instances (GPUs NVML cannot meter)."""
    spec = _visible_spec(env) or ""
    return any(e.strip().upper().startswith("MIG-") for e in spec.split(","))


@dataclass(frozen=True)
class GpuMemory:
    """One visible GPU's memory, for the fit check."""

    index: int  # CUDA index among the visible GPUs
    uuid: str
    name: str
    free: int  # bytes
    total: int  # bytes


def gpu_memory(
    nvml: Any = None, env: Mapping[str, str] | None = None
) -> tuple[list[GpuMemory], str | None]:
    """Free and total memory of each visible GPU, in CUDA order; none and why when NVML
    is missing or sees none. ``nvml`` is a stand-in module (tests); else it is loaded."""
    own = nvml is None
    if own:
        nvml, reason = load_nvml()
        if nvml is None:
            return [], reason
    try:
        handles, reason = visible_gpus(nvml, env)
        out = []
        for i, handle in enumerate(handles):
            info = nvml.nvmlDeviceGetMemoryInfo(handle)
            uuid = _str(nvml.nvmlDeviceGetUUID(handle))
            name = _str_or_none(_try(nvml.nvmlDeviceGetName, handle)) or "GPU"
            out.append(GpuMemory(i, uuid, name, int(info.free), int(info.total)))
        return out, reason
    except Exception as exc:  # NVMLError from a lost or misbehaving GPU
        return [], f"NVML error: {exc}"
    finally:
        if own:
            _try(nvml.nvmlShutdown)


def visible_gpu_count(env: Mapping[str, str] | None = None) -> tuple[int | None, str | None]:
    """How many GPUs this process may use (MIG instances count), and why none; None
    when NVML is not installed (the caller may ask another tool)."""
    if (hidden := hidden_by_env(env)) is not None:
        return 0, hidden
    if uses_mig(env):
        spec = _visible_spec(env) or ""
        return len([e for e in spec.split(",") if e.strip()]), None
    nvml = _import_nvml()
    if nvml is None:
        return None, "nvidia-ml-py not installed"
    try:
        nvml.nvmlInit()
    except Exception as exc:  # no driver, no GPU
        return 0, f"NVML: {exc}"
    try:
        handles, reason = visible_gpus(nvml, env)
        return len(handles), reason
    except Exception as exc:
        return 0, f"NVML error: {exc}"
    finally:
        _try(nvml.nvmlShutdown)


def select_by_uuid(uuids: list[str], env: Mapping[str, str] | None = None) -> list[int]:
    """Indices into ``uuids`` (all GPUs, in ``nvidia-smi -L`` order) that
    ``CUDA_VISIBLE_DEVICES`` leaves visible: the same rules as ``visible_gpus``."""
    spec = _visible_spec(env)
    if spec is None:
        return list(range(len(uuids)))
    return _select(uuids, spec)[0]


class NvmlMeter:
    def __init__(
        self,
        nvml: Any,
        handles: list[Any],
        poll_hz: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._nvml = nvml
        self._handles = handles
        self._clock = clock
        self.poll_hz = poll_hz
        self.devices: list[Device] = []
        self._counters: dict[str, WrappingCounter] = {}
        self._integrators: dict[str, PowerIntegrator] = {}
        self._lock = threading.Lock()  # keeps each integrator's samples in time order
        self.peak_memory_bytes: int | None = None
        # Highest power sample per GPU (W) while polling: the plots' peak power. GPUs
        # with an energy counter are polled for it too (one cheap call per tick).
        self.peak_power_w: dict[str, float] = {}
        self._memory_known = False
        self._memory_at = -math.inf
        driver = _str_or_none(_try(nvml.nvmlSystemGetDriverVersion))
        for i, handle in enumerate(handles):
            dev_id = f"gpu{i}"
            info = {
                "cuda_index": i,
                "name": _str_or_none(_try(nvml.nvmlDeviceGetName, handle)),
                "uuid": _str_or_none(_try(nvml.nvmlDeviceGetUUID, handle)),
                "memory_total_mb": _memory_total_mb(nvml, handle),
                "driver": driver,
            }
            if _try(nvml.nvmlDeviceGetTotalEnergyConsumption, handle) is not None:
                self._counters[dev_id] = WrappingCounter(None)
                method = NVML_COUNTER
            else:
                self._integrators[dev_id] = PowerIntegrator()
                method = NVML_POLLING
            self.devices.append(Device(dev_id, GPU, method, info))
        self.read()

    def read(self) -> dict[str, float | None]:
        if time.monotonic() - self._memory_at >= 1.0 / MEMORY_HZ:
            self.poll_memory()  # also at marks: a run shorter than a poll period counts
        out: dict[str, float | None] = {}
        with self._lock:
            for device, handle in zip(self.devices, self._handles, strict=True):
                if device.id in self._counters:
                    mj = _try(self._nvml.nvmlDeviceGetTotalEnergyConsumption, handle)
                    total = None if mj is None else self._counters[device.id].update(float(mj))
                    out[device.id] = None if total is None else total / 1000.0
                else:
                    mw = _try(self._nvml.nvmlDeviceGetPowerUsage, handle)
                    if mw is None:
                        out[device.id] = None
                    else:
                        self._peak(device.id, mw)
                        out[device.id] = self._integrators[device.id].add(self._clock(), mw / 1e3)
        return out

    def poll_power(self) -> None:
        """One power sample of every GPU: integrated where there is no energy counter,
        and kept as the peak for all."""
        with self._lock:
            for device, handle in zip(self.devices, self._handles, strict=True):
                if device.id in self._integrators:
                    mw = self._nvml.nvmlDeviceGetPowerUsage(handle)
                    self._integrators[device.id].add(self._clock(), mw / 1e3)
                else:
                    mw = _try(self._nvml.nvmlDeviceGetPowerUsage, handle)
                if mw is not None:
                    self._peak(device.id, mw)

    def _peak(self, device_id: str, mw: float) -> None:
        watts = float(mw) / 1e3
        self.peak_power_w[device_id] = max(self.peak_power_w.get(device_id, 0.0), watts)

    def poll_memory(self) -> None:
        """GPU memory held by this process and its descendants, summed over GPUs."""
        self._memory_at = time.monotonic()
        me = psutil.Process()
        pids = {me.pid} | {p.pid for p in me.children(recursive=True)}
        used = 0
        for handle in self._handles:
            for getter in (
                "nvmlDeviceGetComputeRunningProcesses",
                "nvmlDeviceGetGraphicsRunningProcesses",
            ):
                for proc in _try(getattr(self._nvml, getter), handle) or []:
                    mem = getattr(proc, "usedGpuMemory", None)
                    if proc.pid in pids and isinstance(mem, int):
                        used += mem
                        self._memory_known = True
        if self._memory_known:
            self.peak_memory_bytes = max(self.peak_memory_bytes or 0, used)

    def attach(self, poller: Poller) -> None:
        if self.devices:
            poller.add("nvml-power", self.poll_hz, self.poll_power)
        poller.add("nvml-memory", MEMORY_HZ, self.poll_memory)

    def close(self) -> None:
        _try(self._nvml.nvmlShutdown)


def torch_peak_memory_mb() -> float | None:
    """Peak bytes PyTorch's CUDA allocator held, if this process already uses torch."""
    torch = sys.modules.get("torch")  # never import torch just for this
    if torch is None:
        return None
    try:
        if not torch.cuda.is_available() or not torch.cuda.is_initialized():
            return None
        peak = sum(torch.cuda.max_memory_allocated(i) for i in range(torch.cuda.device_count()))
        return float(peak) / 2**20
    except Exception:
        return None


def gpu_names() -> list[str]:
    """Names of the visible NVIDIA GPUs for host records; empty without NVML."""
    return list(_gpu_names())


@functools.cache
def _gpu_names() -> tuple[str, ...]:
    # Host records are written per attempt, by the batch and by the worker: init NVML
    # once per process, not each time (the GPUs a process sees do not change).
    nvml, _ = load_nvml()
    if nvml is None:
        return ()
    try:
        handles, _ = visible_gpus(nvml)
        return tuple(_str(nvml.nvmlDeviceGetName(h)) for h in handles)
    except Exception:
        return ()
    finally:
        _try(nvml.nvmlShutdown)


def _try(fn: Callable[..., Any], *args: Any) -> Any:
    """NVML raises NVMLError (NotSupported, GpuIsLost, ...): the value is then unknown."""
    try:
        return fn(*args)
    except Exception:
        return None


def _memory_total_mb(nvml: Any, handle: Any) -> float | None:
    info = _try(nvml.nvmlDeviceGetMemoryInfo, handle)
    return None if info is None else float(info.total) / 2**20


def _str_or_none(value: Any) -> str | None:
    return None if value is None else _str(value)


def _str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
