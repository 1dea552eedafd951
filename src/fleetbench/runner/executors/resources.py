"""What a run needs (CPU, GPUs, or only the network) and the slots that provide it.

A run's need comes from its backend's ``placement`` hook, the same one the fit check
reads: RAM means the CPU, a ``GpuPlacement`` means that many GPUs (all of them when
the backend spreads a model over every GPU), and no placement means a remote model —
unless the backend starts a local server, which computes here. Compute slots get
disjoint sets of cores (so llama.cpp's threads, sized to the cores a run may use,
never fight over one core) and GPU runs get GPUs of their own, shared only when the
plan allows it and both runs fit in the GPU's free memory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal

from fleetbench.backends import get_backend_class
from fleetbench.meters.nvml import GpuMemory
from fleetbench.runner.fit import as_gpu_placement, estimate_need
from fleetbench.runner.plan import ExecutorSettings, RunSpec

Kind = Literal["cpu", "gpu", "network"]


@dataclass(frozen=True)
class Demand:
    kind: Kind
    gpus: int = 0  # GPUs wanted (kind gpu); -1: every GPU of the pool (layer split)
    devices: tuple[int, ...] | None = None  # CUDA indices fixed by the options
    need_bytes: float | None = None  # per GPU, for sharing a GPU between runs


def demand_of(spec: RunSpec) -> Demand:
    backend = get_backend_class(spec.model.backend)
    hook = getattr(backend, "placement", None)
    placement = hook(backend.Options.model_validate(spec.backend_options)) if hook else None
    if placement is None:
        # a managed local server (options.server) computes on this machine
        return Demand("cpu") if spec.backend_options.get("server") else Demand("network")
    gpu = as_gpu_placement(placement)
    if gpu is None:
        return Demand("cpu")
    need = estimate_need(spec.model, spec.backend_options)
    if gpu.spread:
        return Demand("gpu", gpus=-1)
    count = len(gpu.devices) if gpu.devices else gpu.count
    per_gpu = need.bytes / count if need is not None else None
    return Demand("gpu", gpus=count, devices=gpu.devices, need_bytes=per_gpu)


@dataclass(frozen=True)
class Slot:
    """Where one run executes: a label for progress and the store, the GPUs it sees
    (``CUDA_VISIBLE_DEVICES``, None: leave as is) and the cores it may use."""

    label: str
    kind: Kind
    index: int
    gpus: tuple[str, ...] | None = None
    cpus: tuple[int, ...] | None = None
    gpu_indices: tuple[int, ...] = ()


@dataclass
class _Gpu:
    info: GpuMemory
    runs: int = 0
    committed: float = 0.0  # bytes promised to the runs on it
    exclusive: bool = False


@dataclass
class ResourcePool:
    """Compute slots (each with its own cores), network slots and a GPU pool."""

    settings: ExecutorSettings
    gpus: list[GpuMemory] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._compute_free = list(range(self.settings.workers))
        self._network_free = list(range(max(self.settings.network_workers, 0)))
        self._gpus = [_Gpu(g) for g in self.gpus]
        self._cores = _core_sets(self.settings.workers)

    def impossible(self, demand: Demand) -> str | None:
        """Why ``demand`` can never be placed here (None: it can, now or later)."""
        if demand.kind == "network" and self.settings.network_workers == 0:
            return None  # network runs then take compute slots
        if demand.kind != "gpu" or not self._gpus:
            return None  # without a GPU inventory the backend itself says what is missing
        if demand.devices is not None:
            missing = [i for i in demand.devices if i >= len(self._gpus)]
            if missing:
                return f"needs GPU {missing[0]}, the pool has {len(self._gpus)} GPU(s)"
        elif demand.gpus > len(self._gpus):
            return f"needs {demand.gpus} GPUs, the pool has {len(self._gpus)}"
        return None

    def acquire(self, demand: Demand) -> Slot | None:
        """A slot for ``demand`` now, or None when it must wait for a running run."""
        if demand.kind == "network" and self._network_free:
            index = self._network_free.pop(0)
            return Slot(f"net {index + 1}", "network", index)
        if not self._compute_free:
            return None
        picked: list[_Gpu] = []
        if demand.kind == "gpu" and self._gpus:
            chosen = self._pick_gpus(demand)
            if chosen is None:
                return None
            picked = chosen
        index = self._compute_free.pop(0)
        for gpu in picked:
            gpu.runs += 1
            gpu.committed += demand.need_bytes or 0.0
            gpu.exclusive = gpu.exclusive or not self._shareable(demand)
        if demand.kind == "gpu" and picked:
            ids = tuple(g.info.uuid for g in picked)
            indices = tuple(g.info.index for g in picked)
            label = "gpu " + ",".join(str(i) for i in indices)
            return Slot(label, "gpu", index, ids, self._cores[index], indices)
        return Slot(f"cpu {index + 1}", "cpu", index, None, self._cores[index])

    def release(self, slot: Slot, demand: Demand) -> None:
        if slot.kind == "network":
            self._network_free.append(slot.index)
            self._network_free.sort()
            return
        self._compute_free.append(slot.index)
        self._compute_free.sort()
        for gpu in self._gpus:
            if gpu.info.index in slot.gpu_indices:
                gpu.runs -= 1
                gpu.committed -= demand.need_bytes or 0.0
                if gpu.runs == 0:
                    gpu.exclusive, gpu.committed = False, 0.0

    def _shareable(self, demand: Demand) -> bool:
        return self.settings.gpu_share and demand.need_bytes is not None and demand.gpus > 0

    def _usable(self, gpu: _Gpu, demand: Demand) -> bool:
        if gpu.runs == 0:
            return True
        if gpu.exclusive or not self._shareable(demand):
            return False
        return gpu.committed + (demand.need_bytes or 0.0) <= gpu.info.free

    def _pick_gpus(self, demand: Demand) -> list[_Gpu] | None:
        if demand.gpus == -1:  # every GPU, none shared
            return self._gpus if all(g.runs == 0 for g in self._gpus) else None
        if demand.devices is not None:
            fixed = [self._gpus[i] for i in demand.devices if i < len(self._gpus)]
            return fixed if all(self._usable(g, demand) for g in fixed) else None
        usable = [g for g in self._gpus if self._usable(g, demand)]
        if len(usable) < demand.gpus:
            return None
        # idle GPUs first, then the most free memory left
        usable.sort(key=lambda g: (g.runs, -(g.info.free - g.committed), g.info.index))
        return sorted(usable[: demand.gpus], key=lambda g: g.info.index)


def _core_sets(workers: int) -> list[tuple[int, ...] | None]:
    """Disjoint core sets, one per compute slot; None (no pinning) when there are more
    slots than cores or a single slot (the run may use every core)."""
    if not hasattr(os, "sched_getaffinity"):
        return [None] * workers
    cores = sorted(os.sched_getaffinity(0))
    if workers == 1 or workers > len(cores):
        return [None] * workers
    size = len(cores) // workers
    return [tuple(cores[i * size : (i + 1) * size]) for i in range(workers)]
