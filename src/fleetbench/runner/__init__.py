"""Plan expansion, executors, workers and the batch that ties them together."""

from fleetbench.runner.batch import (
    FILTERED,
    RESUME,
    RUN,
    SKIP,
    BatchObserver,
    BatchOptions,
    PlannedRun,
    plan_batch,
    run_batch,
)
from fleetbench.runner.executors import Executor, SequentialExecutor
from fleetbench.runner.plan import LoadedPlan, Plan, RunSpec, load_plan

__all__ = [
    "FILTERED",
    "RESUME",
    "RUN",
    "SKIP",
    "BatchObserver",
    "BatchOptions",
    "Executor",
    "LoadedPlan",
    "Plan",
    "PlannedRun",
    "RunSpec",
    "SequentialExecutor",
    "load_plan",
    "plan_batch",
    "run_batch",
]
