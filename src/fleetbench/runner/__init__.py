"""Plan expansion, executors, workers and the batch that ties them together.

The names below load on first use: a worker process (``python -m
fleetbench.runner.worker``) imports this package too, and must not pay for the batch,
its executors and the report modules at every run's start.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_WHERE = {
    **dict.fromkeys(
        ("FILTERED", "RESUME", "RUN", "SKIP", "BatchObserver", "BatchOptions", "PlannedRun",
         "plan_batch", "run_batch"),
        "fleetbench.runner.batch",
    ),
    "Executor": "fleetbench.runner.executors",
    "SequentialExecutor": "fleetbench.runner.executors",
    **dict.fromkeys(("LoadedPlan", "Plan", "RunSpec", "load_plan"), "fleetbench.runner.plan"),
}  # fmt: skip


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'fleetbench.runner' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


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
