"""Fault-injecting backends, importable by worker processes (tests put this folder on
PYTHONPATH and name them as ``backend: fakebackends:ClassName``). Never a stand-in for
the happy path: the real model covers that."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from fleetbench.backends import (
    BackendContext,
    GenerationRequest,
    GenerationResult,
    GpuPlacement,
    LoadInfo,
)


class FaultOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pid_file: str | None = None
    fail_on: list[int] = []


class HangingBackend:
    """Spawns a grandchild (as a local server would), then never finishes generating."""

    name: ClassVar[str] = "hanging"
    Options: ClassVar[type[BaseModel]] = FaultOptions

    def __init__(self, options: FaultOptions, context: BackendContext) -> None:
        self.options = options

    def load(self) -> LoadInfo:
        child = subprocess.Popen(["sleep", "600"])
        if self.options.pid_file:
            Path(self.options.pid_file).write_text(f"{os.getpid()} {child.pid}")
        return LoadInfo(load_time_s=0.0)

    def generate(self, requests: Iterable[GenerationRequest]) -> Iterator[GenerationResult]:
        time.sleep(600)
        yield from ()

    def close(self) -> None:
        pass


class CrashingBackend:
    """Fails to load, like a model whose weights are missing."""

    name: ClassVar[str] = "crashing"
    Options: ClassVar[type[BaseModel]] = FaultOptions

    def __init__(self, options: FaultOptions, context: BackendContext) -> None:
        self.options = options

    def load(self) -> LoadInfo:
        raise RuntimeError("weights are corrupt (injected)")

    def generate(self, requests: Iterable[GenerationRequest]) -> Iterator[GenerationResult]:
        yield from ()

    def close(self) -> None:
        pass


class FlakyEchoBackend:
    """Echoes prompts; the samples listed in ``fail_on`` come back with an error."""

    name: ClassVar[str] = "flaky-echo"
    Options: ClassVar[type[BaseModel]] = FaultOptions

    def __init__(self, options: FaultOptions, context: BackendContext) -> None:
        self.options = options

    def load(self) -> LoadInfo:
        return LoadInfo(load_time_s=0.0)

    def generate(self, requests: Iterable[GenerationRequest]) -> Iterator[GenerationResult]:
        for r in requests:
            if r.index in self.options.fail_on:
                yield GenerationResult(index=r.index, error="injected failure")
            else:
                text = r.messages[-1].content
                yield GenerationResult(
                    index=r.index,
                    text=text,
                    prompt_tokens=3,
                    completion_tokens=2,
                    latency_s=0.01,
                    ttft_s=0.005,
                    finish_reason="stop",
                )

    def close(self) -> None:
        pass


class GpuOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gpus: int = 1
    delay_s: float = 0.0  # per request, so that parallel runs overlap


class GpuEchoBackend:
    """Stands in for a GPU engine on machines without one (with ``fakenvml``'s GPUs):
    placed on ``gpus`` GPUs, it answers every request with the CUDA_VISIBLE_DEVICES
    its worker was given."""

    name: ClassVar[str] = "gpu-echo"
    Options: ClassVar[type[BaseModel]] = GpuOptions

    def __init__(self, options: GpuOptions, context: BackendContext) -> None:
        self.options = options

    @staticmethod
    def placement(options: GpuOptions) -> GpuPlacement | str:
        return GpuPlacement(count=options.gpus) if options.gpus else "ram"

    def load(self) -> LoadInfo:
        return LoadInfo(load_time_s=0.0)

    def generate(self, requests: Iterable[GenerationRequest]) -> Iterator[GenerationResult]:
        seen = os.environ.get("CUDA_VISIBLE_DEVICES", "(unset)")
        for r in requests:
            time.sleep(self.options.delay_s)
            yield GenerationResult(
                index=r.index, text=seen, prompt_tokens=1, completion_tokens=1, latency_s=0.01
            )

    def close(self) -> None:
        pass


class ParentBackend:
    """Answers every request with its worker's parent pid: which process forked it."""

    name: ClassVar[str] = "parent"
    Options: ClassVar[type[BaseModel]] = FaultOptions

    def __init__(self, options: FaultOptions, context: BackendContext) -> None:
        pass

    def load(self) -> LoadInfo:
        return LoadInfo(load_time_s=0.0)

    def generate(self, requests: Iterable[GenerationRequest]) -> Iterator[GenerationResult]:
        for r in requests:
            yield GenerationResult(
                index=r.index, text=str(os.getppid()), prompt_tokens=1, completion_tokens=1
            )

    def close(self) -> None:
        pass
