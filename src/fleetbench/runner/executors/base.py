"""The executor protocol: the batch hands over jobs and callbacks, the executor reports
every run's outcome. Callbacks are always called on the batch's own thread."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from fleetbench.runner.job import RunJob, RunOutcome
from fleetbench.runner.process import EventSink
from fleetbench.store import Store

OutcomeSink = Callable[[RunOutcome], None]
StartSink = Callable[[RunJob], None]


class Executor(Protocol):
    def execute(
        self,
        jobs: Sequence[RunJob],
        store: Store,
        on_start: StartSink,
        on_event: EventSink,
        on_outcome: OutcomeSink,
    ) -> None: ...


__all__ = ["EventSink", "Executor", "OutcomeSink", "StartSink"]
