"""Executors decide where and how many runs execute at once.

* ``SequentialExecutor`` — one run after another (the default).
* ``LocalExecutor`` — worker slots on this machine: compute runs on disjoint cores or
  GPUs of their own, network-bound runs alongside, longest expected run first.
* ``RayExecutor`` — each run a Ray task on a cluster; results stream back and only this
  process writes the store (``fleetbench[ray]``).
"""

from __future__ import annotations

from fleetbench.runner.executors.base import Executor, OutcomeSink, StartSink
from fleetbench.runner.executors.local import LocalExecutor
from fleetbench.runner.executors.resources import demand_of
from fleetbench.runner.executors.schedule import Estimate, Placed, Work, estimate, longest_first
from fleetbench.runner.executors.schedule import simulate as _simulate
from fleetbench.runner.executors.sequential import SequentialExecutor
from fleetbench.runner.plan import ExecutorSettings
from fleetbench.store import Store


def make_executor(settings: ExecutorSettings | None) -> Executor:
    """The executor a plan (or ``--parallel``/``--executor``) asks for."""
    if settings is None or settings.kind == "sequential":
        return SequentialExecutor()
    if settings.kind == "ray":
        from fleetbench.runner.executors.ray import RayExecutor

        return RayExecutor(settings)
    return LocalExecutor(settings)


def preview(
    settings: ExecutorSettings, work: list[Work], store: Store | None
) -> dict[str, tuple[Estimate, Placed]]:
    """For ``--dry-run``: each run's expected duration and the slot it would get, in
    the order the executor would start them."""
    estimates = estimate(work, store)
    ordered = longest_first(work, estimates)
    if settings.kind == "ray":
        placed = {w.spec.run_id: Placed("ray", None) for w in ordered}
    else:
        demands = {w.spec.run_id: demand_of(w.spec) for w in ordered}
        placed = _simulate(ordered, demands, estimates, LocalExecutor(settings).pool())
    return {w.spec.run_id: (estimates[w.spec.run_id], placed[w.spec.run_id]) for w in ordered}


__all__ = [
    "Estimate",
    "Executor",
    "ExecutorSettings",
    "LocalExecutor",
    "OutcomeSink",
    "Placed",
    "SequentialExecutor",
    "StartSink",
    "Work",
    "make_executor",
    "preview",
]
