"""Executors decide where and how many runs execute at once.

The batch hands an executor the jobs in order and three callbacks (a run starts, a run
reports progress, a run ends); the executor reports every run's outcome. There is one
executor, ``SequentialExecutor``: one run after another, each in its own worker process.
``Executor`` is the protocol another one would implement.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from fleetbench.runner.job import RunJob, RunOutcome
from fleetbench.runner.process import EventSink, run_attempt
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


class SequentialExecutor:
    """One run after another, each in its own worker process."""

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
