"""``import pynvml`` in a CLI test: the GPUs described in FLEETBENCH_FAKE_NVML
(see ``fakenvml``). Only on PYTHONPATH for the tests that inject GPUs."""

from __future__ import annotations

from typing import Any

from fakenvml import FakeNvml

_FAKE = FakeNvml.from_env()
NVMLError = FakeNvml.NVMLError


def __getattr__(name: str) -> Any:
    return getattr(_FAKE, name)
