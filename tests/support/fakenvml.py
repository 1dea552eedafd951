"""A stand-in for ``pynvml`` over an inventory of imaginary GPUs (hardware injection:
these machines have no GPU). In-process tests pass a ``FakeNvml`` or put one in
``sys.modules["pynvml"]``; CLI tests put ``nvml_stub/`` on PYTHONPATH and describe the
GPUs in ``FLEETBENCH_FAKE_NVML`` (JSON), so the batch and its workers see the same GPUs.

A GPU is a dict: ``name``, ``uuid``, ``free_gib``, ``total_gib``, optional ``energy_mj``
(a counter) and ``power_mw``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ENV = "FLEETBENCH_FAKE_NVML"
STUB_DIR = Path(__file__).parent / "nvml_stub"
GIB = 2**30


def gpu(index: int, free_gib: float, total_gib: float = 80.0, name: str = "H100") -> dict[str, Any]:
    return {
        "name": name,
        "uuid": f"GPU-{index:04d}aaaa-0000-0000-0000-00000000000{index}",
        "free_gib": free_gib,
        "total_gib": total_gib,
        "energy_mj": 1_000_000,
        "power_mw": 70_000,
    }


class FakeNvml:
    class NVMLError(Exception):
        pass

    def __init__(self, gpus: list[dict[str, Any]]) -> None:
        self.gpus = gpus
        self.inits = 0

    @classmethod
    def from_env(cls) -> FakeNvml:
        return cls(json.loads(os.environ.get(ENV, "[]")))

    def nvmlInit(self) -> None:
        self.inits += 1

    def nvmlShutdown(self) -> None:
        pass

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, i: int) -> dict[str, Any]:
        return self.gpus[i]

    def nvmlDeviceGetName(self, h: dict[str, Any]) -> str:
        return str(h["name"])

    def nvmlDeviceGetUUID(self, h: dict[str, Any]) -> str:
        return str(h["uuid"])

    def nvmlSystemGetDriverVersion(self) -> str:
        return "550.54"

    def nvmlDeviceGetMemoryInfo(self, h: dict[str, Any]) -> Any:
        total, free = int(h["total_gib"] * GIB), int(h["free_gib"] * GIB)
        return SimpleNamespace(total=total, used=total - free, free=free)

    def nvmlDeviceGetTotalEnergyConsumption(self, h: dict[str, Any]) -> int:
        if "energy_mj" not in h:
            raise self.NVMLError("Not Supported")
        h["energy_mj"] += 1000  # a busy GPU: 1 J more at every read
        return int(h["energy_mj"])

    def nvmlDeviceGetPowerUsage(self, h: dict[str, Any]) -> int:
        return int(h["power_mw"])

    def nvmlDeviceGetComputeRunningProcesses(self, h: dict[str, Any]) -> list[Any]:
        return []

    def nvmlDeviceGetGraphicsRunningProcesses(self, h: dict[str, Any]) -> list[Any]:
        return []


def stub_env(gpus: list[dict[str, Any]], env: dict[str, str]) -> dict[str, str]:
    """``env`` with the stub module first on PYTHONPATH and these GPUs in it (all of
    them visible, whatever the host's own CUDA_VISIBLE_DEVICES says)."""
    path = os.pathsep.join(filter(None, [str(STUB_DIR), env.get("PYTHONPATH")]))
    out = {**env, "PYTHONPATH": path, ENV: json.dumps(gpus)}
    out.pop("CUDA_VISIBLE_DEVICES", None)
    return out
