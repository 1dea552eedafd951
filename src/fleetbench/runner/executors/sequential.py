"""One run after another, each in its own worker process: the default."""

from __future__ import annotations

from collections.abc import Sequence

from fleetbench.runner.executors.base import EventSink, OutcomeSink, StartSink
from fleetbench.runner.job import RunJob
from fleetbench.runner.process import run_attempt
from fleetbench.store import Store


class SequentialExecutor:
    def execute(
        self,
        jobs: Sequence[RunJob],
        store: Store,
        on_start: StartSink,
        on_event: EventSink,
        on_outcome: OutcomeSink,
    ) -> None:
        for job in jobs:
            on_start(job)
            on_outcome(run_attempt(job, store, on_event))
