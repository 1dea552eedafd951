"""A backend whose runs take a known time (``delay_s`` per request, on the CPU slot
it is given), for measuring how well executors pack runs of unequal length."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from fleetbench.backends import BackendContext, GenerationRequest, GenerationResult, LoadInfo


class SleepOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delay_s: float = 1.0


class SleepBackend:
    name: ClassVar[str] = "sleep"
    Options: ClassVar[type[BaseModel]] = SleepOptions

    def __init__(self, options: SleepOptions, context: BackendContext) -> None:
        self.options = options

    @staticmethod
    def placement(options: SleepOptions) -> str:
        return "ram"  # a local compute run: it takes a worker slot

    def load(self) -> LoadInfo:
        return LoadInfo(load_time_s=0.0)

    def generate(self, requests: Iterable[GenerationRequest]) -> Iterator[GenerationResult]:
        for r in requests:
            start = time.perf_counter()
            time.sleep(self.options.delay_s)
            yield GenerationResult(
                index=r.index, text="ok", prompt_tokens=1, completion_tokens=1,
                latency_s=time.perf_counter() - start,
            )  # fmt: skip

    def close(self) -> None:
        pass
