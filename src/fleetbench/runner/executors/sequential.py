"""One run after another, each in its own worker process: the default.

The workers fork from the batch's zygote (runner/zygote.py) as with the local executor:
each run is still a fresh process and session of its own with its own timeout, but the
next run starts in milliseconds instead of a new interpreter's imports."""

from __future__ import annotations

from collections.abc import Sequence

from fleetbench.runner import zygote as zygotes
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
        zygote = zygotes.take() if jobs else None
        try:
            for job in jobs:
                on_start(job)
                on_outcome(run_attempt(job, store, on_event, zygote=zygote))
        finally:
            if zygote is not None:
                zygote.close()
