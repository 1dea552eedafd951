"""Will a local model fit? Estimated before anything loads, so a batch skips what
cannot run instead of crashing into an out-of-memory kill halfway through a fleet.

The need is the weights (a model file/folder's size when the options name one, else
parameters x bytes per parameter of the dtype) times an allowance for the KV cache,
activations and runtime; the supply is free memory where the backend places the
model (GPU memory over the visible GPUs, or available RAM). A backend says where it
places a model with an optional static ``placement(options) -> "ram" | "gpu" | None``
(None: remote, nothing to check).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import psutil

from fleetbench.catalog.spec import ModelSpec

Placement = Literal["ram", "gpu"]

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


def free_gpu_bytes() -> int | None:
    """Free memory summed over the visible NVIDIA GPUs; None if NVML is unavailable."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:  # no driver, no GPU: NVML raises its own error types
        return None
    try:
        count = pynvml.nvmlDeviceGetCount()
        visible = _visible_indices(count)
        return sum(
            int(pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(i)).free)
            for i in visible
        )
    finally:
        pynvml.nvmlShutdown()


def _visible_indices(count: int) -> list[int]:
    """Respect CUDA_VISIBLE_DEVICES when it lists plain indices (UUIDs: all GPUs)."""
    raw = os.environ.get("CUDA_VISIBLE_DEVICES")
    if raw is None:
        return list(range(count))
    picked = [int(p) for p in raw.split(",") if p.strip().isdigit()]
    if not picked and raw.strip() and not raw.strip().startswith(("GPU-", "MIG-")):
        return []
    return [i for i in picked if i < count] if picked else list(range(count))


def fit_reason(
    model: ModelSpec,
    options: dict[str, Any],
    placement: str | None,
    free: int | None = None,
) -> str | None:
    """Why the model will not fit where it is placed; None if it fits or is unknown.

    ``free`` overrides the measured free memory (tests, reference machines).
    """
    if placement is None:
        return None
    need = estimate_need(model, options)
    if need is None:
        return None
    if free is None:
        free = free_ram_bytes() if placement == "ram" else free_gpu_bytes()
    if free is None:
        return None  # nothing to compare with: the backend reports a missing GPU itself
    if need.bytes <= free:
        return None
    where = "available RAM" if placement == "ram" else "free GPU memory"
    return (
        f"does not fit: needs ~{_gb(need.bytes)} ({need.how}, x{OVERHEAD:g} for cache and "
        f"runtime), {where} is {_gb(free)}"
    )


def _gb(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"
