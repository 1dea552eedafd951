"""Will a local model fit? Estimated before anything loads, so a batch skips what
cannot run instead of crashing into an out-of-memory kill halfway through a fleet.

The need is the weights (a model file/folder's size when the options name one, else
parameters x bytes per parameter of the dtype) times an allowance for the KV cache,
activations and runtime; the supply is free memory where the backend places the
model. A backend says where with an optional static ``placement(options)`` (see
``backends.base.GpuPlacement``): available RAM; or the GPUs it is given, each on its
own, since a model on one GPU cannot use another's memory: the GPUs the options fix,
else the visible ones with the most free memory (the run is then pinned to them);
only a backend that spreads a model over every GPU (llama.cpp) counts their sum.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from fleetbench.backends.base import GpuPlacement, Placement
from fleetbench.catalog.spec import ModelSpec
from fleetbench.meters.nvml import GpuMemory, gpu_memory

# Weights are not all a loaded model needs: KV cache, activations, the runtime itself.
OVERHEAD = 1.2
_WEIGHT_SUFFIXES = (".gguf", ".safetensors", ".bin", ".pt", ".pth")

# Bytes per parameter by dtype (lower-case, as catalogues write it).
_BYTES_PER_PARAM: dict[str, float] = {
    "float32": 4, "fp32": 4, "f32": 4,
    "bfloat16": 2, "bf16": 2, "float16": 2, "fp16": 2, "f16": 2, "half": 2, "auto": 2,
    "int8": 1, "fp8": 1, "q8": 1, "q8_0": 1, "mxfp8": 1,
    "int4": 0.5, "fp4": 0.5, "mxfp4": 0.5, "nf4": 0.5, "awq": 0.5, "gptq": 0.5,
    "q4": 0.5, "q4_0": 0.5, "q4_1": 0.5, "q4_k_m": 0.5,
}  # fmt: skip
DEFAULT_BYTES_PER_PARAM = 2.0  # most published checkpoints are 16-bit


@dataclass(frozen=True)
class Need:
    bytes: float
    how: str  # for the skip reason: where the figure came from


def bytes_per_param(dtype: str | None) -> float:
    if not dtype:
        return DEFAULT_BYTES_PER_PARAM
    return _BYTES_PER_PARAM.get(dtype.strip().lower(), DEFAULT_BYTES_PER_PARAM)


def weights_on_disk(options: dict[str, Any]) -> int | None:
    """Size of the model file or folder an option names (``model_path``), if it exists."""
    raw = options.get("model_path")
    if not isinstance(raw, str) or not raw:
        return None
    path = Path(raw)
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        sizes = [p.stat().st_size for p in path.rglob("*") if p.suffix in _WEIGHT_SUFFIXES]
        return sum(sizes) or None
    return None


def estimate_need(model: ModelSpec, options: dict[str, Any]) -> Need | None:
    on_disk = weights_on_disk(options)
    if on_disk is not None:
        return Need(on_disk * OVERHEAD, f"weights {_gb(on_disk)} on disk")
    if model.params_b is not None:
        per = bytes_per_param(model.dtype)
        weights = model.params_b * 1e9 * per
        dtype = model.dtype or f"assumed {per:g} bytes/param"
        return Need(weights * OVERHEAD, f"{model.params_b:g}B params x {dtype}")
    return None


def free_ram_bytes() -> int:
    return int(psutil.virtual_memory().available)


@dataclass(frozen=True)
class Fit:
    """The fit check's answer: why the model will not fit (None: it fits, or there is
    nothing to compare with), and the GPUs it was checked against."""

    reason: str | None = None
    gpus: tuple[GpuMemory, ...] = ()  # chosen by free memory; the run is pinned to them
    note: str | None = None  # where it goes, for the dry run ("GPU 1, 70.0 GiB free")


def as_gpu_placement(placement: object) -> GpuPlacement | None:
    """A backend's placement as GPUs (``"gpu"``: one, any); None for RAM or remote."""
    if isinstance(placement, GpuPlacement):
        return placement
    return GpuPlacement() if placement == "gpu" else None


def check_fit(
    model: ModelSpec,
    options: dict[str, Any],
    placement: Placement,
    *,
    ram: int | None = None,
    gpus: list[GpuMemory] | None = None,
) -> Fit:
    """Will ``model`` fit where its backend places it? ``ram`` and ``gpus`` replace the
    measured free memory (tests, reference machines)."""
    if placement is None:
        return Fit()
    need = estimate_need(model, options)
    if need is None:
        return Fit()
    on_gpu = as_gpu_placement(placement)
    if on_gpu is None:
        free = free_ram_bytes() if ram is None else ram
        if need.bytes <= free:
            return Fit()
        return Fit(f"does not fit: {_needs(need)}, available RAM is {_gb(free)}")
    if gpus is None:
        gpus, _ = gpu_memory()
    if not gpus:
        return Fit()  # nothing to compare with: the backend reports a missing GPU itself
    return _on_gpus(need, on_gpu, gpus)


def _on_gpus(need: Need, placement: GpuPlacement, gpus: list[GpuMemory]) -> Fit:
    if placement.spread:  # the backend spreads the weights over all of them
        free = sum(g.free for g in gpus)
        if need.bytes <= free:
            return Fit()
        return Fit(
            f"does not fit: {_needs(need)}, free GPU memory is {_gb(free)} over {_gpu_list(gpus)}"
        )
    if placement.devices is not None:
        by_index = {g.index: g for g in gpus}
        if any(i not in by_index for i in placement.devices):
            return Fit()  # a GPU that is not there: the backend reports it itself
        chosen = [by_index[i] for i in placement.devices]
        how = "given"
    else:
        if placement.count > len(gpus):
            return Fit(
                f"does not fit: needs {placement.count} GPUs, {len(gpus)} visible "
                f"({_gpu_list(gpus)})"
            )
        ranked = sorted(gpus, key=lambda g: (-g.free, g.index))[: placement.count]
        chosen = sorted(ranked, key=lambda g: g.index)
        how = "most free memory" if len(gpus) > placement.count else "all visible"
    reason = _per_gpu_shortfall(need, placement, chosen)
    where = f"{_gpu_list(chosen)} ({how}: {', '.join(_gb(g.free) for g in chosen)} free)"
    if reason is not None:
        return Fit(f"does not fit: {reason}; on {where}", tuple(chosen))
    pinned = tuple(chosen) if placement.devices is None else ()
    return Fit(None, pinned, f"on {where}")


def _per_gpu_shortfall(need: Need, placement: GpuPlacement, chosen: list[GpuMemory]) -> str | None:
    """Why the weights, shared evenly over ``chosen``, do not fit there; None if they do."""
    share = need.bytes / len(chosen)
    per = f" = {_gb(share)} per GPU" if len(chosen) > 1 else ""
    fraction = placement.memory_fraction
    for g in chosen:
        if fraction is not None:
            claim = fraction * g.total
            if g.free < claim:
                return (
                    f"claims {fraction:g} x {_gb(g.total)} = {_gb(claim)} of GPU {g.index} "
                    f"(gpu_memory_utilization), {_gb(g.free)} is free"
                )
            if share > claim:
                return f"{_needs(need)}{per}, more than the {_gb(claim)} claimed on GPU {g.index}"
        elif share > g.free:
            return f"{_needs(need)}{per}, free GPU memory is {_gb(g.free)} on GPU {g.index}"
    return None


def _needs(need: Need) -> str:
    return f"needs ~{_gb(need.bytes)} ({need.how}, x{OVERHEAD:g} for cache and runtime)"


def _gpu_list(gpus: list[GpuMemory]) -> str:
    names = ", ".join(str(g.index) for g in gpus)
    return f"GPU {names}" if len(gpus) == 1 else f"GPUs {names}"


def _gb(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"
