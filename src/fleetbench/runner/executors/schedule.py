"""Which run goes first: longest expected first, so the batch ends early.

A run's expected duration comes from what the store already knows about it (seconds
per sample of earlier attempts, plus their load time) times the samples still to do;
a run never measured is weighed by its size (parameters, else weights on disk) times
its samples, converted to seconds by the measured runs' median seconds per unit of
weight when there are any. Greedy longest-first list scheduling is within 4/3 of the
optimal makespan (Graham), and needs nothing but these estimates.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fleetbench.runner.executors.resources import Demand, ResourcePool, Slot
from fleetbench.runner.fit import weights_on_disk
from fleetbench.runner.job import RunJob
from fleetbench.runner.plan import RunSpec
from fleetbench.store import Store


@dataclass(frozen=True)
class Work:
    """A run to schedule: its spec and the samples it still plans to generate."""

    spec: RunSpec
    samples: int


@dataclass(frozen=True)
class Estimate:
    seconds: float | None  # None: no history, and nothing measured to convert the weight
    basis: str  # "history", "size" (converted by measured runs) or "size (relative)"
    weight: float  # the figure runs are ordered by


def estimate(jobs: Sequence[Work], store: Store | None) -> dict[str, Estimate]:
    weights = {job.spec.run_id: _weight(job) for job in jobs}
    known = {job.spec.run_id: _history(job, store) for job in jobs}
    ratios = [
        secs / weights[rid] for rid, secs in known.items() if secs is not None and weights[rid]
    ]
    per_weight = statistics.median(ratios) if ratios else None
    out: dict[str, Estimate] = {}
    for job in jobs:
        rid = job.spec.run_id
        secs = known[rid]
        if secs is not None:
            out[rid] = Estimate(secs, "history", secs)
        elif per_weight is not None:
            guess = weights[rid] * per_weight
            out[rid] = Estimate(guess, "size", guess)
        else:
            out[rid] = Estimate(None, "size (relative)", weights[rid])
    return out


def longest_first(jobs: Sequence[Work], estimates: dict[str, Estimate]) -> list[Work]:
    """Jobs by expected duration, longest first; ties keep the plan's order. Only the
    relative order matters, so weights of unmeasured runs sort among themselves. The
    checkpoints of one discovered training folder are one model at different steps:
    they share the group's longest estimate, so they start in step order."""
    timed = any(e.seconds is not None for e in estimates.values())

    def value(job: Work) -> float:
        e = estimates[job.spec.run_id]
        return (e.seconds if timed and e.seconds is not None else e.weight) or 0.0

    group_max: dict[str, float] = {}
    for job in jobs:
        group = sweep_of(job.spec)
        if group is not None:
            group_max[group] = max(group_max.get(group, 0.0), value(job))

    def key(item: tuple[int, Work]) -> tuple[float, int]:
        position, job = item
        group = sweep_of(job.spec)
        return (-(group_max[group] if group is not None else value(job)), position)

    return [job for _, job in sorted(enumerate(jobs), key=key)]


def in_start_order(jobs: Sequence[RunJob], store: Store | None) -> list[RunJob]:
    """The jobs in the order an executor starts them: longest expected first."""
    by_id = {j.spec.run_id: j for j in jobs}
    work = [Work(j.spec, j.total_samples) for j in jobs]
    return [by_id[w.spec.run_id] for w in longest_first(work, estimate(work, store))]


def sweep_of(spec: RunSpec) -> str | None:
    """The training folder a discovered checkpoint belongs to (its entry's source is
    the checkpoint path it runs), or None for any other model."""
    source, path = spec.model.source, spec.backend_options.get("model_path")
    if not source or not isinstance(path, str) or "/" not in spec.model.name:
        return None
    if Path(path).resolve() != Path(source).resolve():
        return None
    return f"{spec.model.name.split('/', 1)[0]}|{spec.task.name}|{spec.settings_label}"


@dataclass(frozen=True)
class Placed:
    slot: str
    start_s: float | None  # expected, from the batch start; None without estimates
    reason: str | None = None  # why it cannot be placed at all


def simulate(
    jobs: Sequence[Work],
    demands: dict[str, Demand],
    estimates: dict[str, Estimate],
    pool: ResourcePool,
) -> dict[str, Placed]:
    """The slot each job would get and when it would start, by playing the schedule
    through with the expected durations (for ``--dry-run``)."""
    clock = 0.0
    running: list[tuple[float, Slot, Demand]] = []
    placed: dict[str, Placed] = {}
    waiting = list(jobs)
    timed = all(estimates[j.spec.run_id].seconds is not None for j in jobs)
    while waiting:
        progressed = False
        for job in list(waiting):
            rid = job.spec.run_id
            demand = demands[rid]
            why = pool.impossible(demand)
            if why is not None:
                placed[rid] = Placed("-", None, why)
                waiting.remove(job)
                continue
            slot = pool.acquire(demand)
            if slot is None:
                continue
            waiting.remove(job)
            progressed = True
            e = estimates[rid]
            length = (e.seconds if e.seconds is not None else e.weight) or 0.0
            running.append((clock + length, slot, demand))
            placed[rid] = Placed(slot.label, clock if timed else None)
        if waiting and not progressed:
            if not running:  # nothing can free a slot: stop rather than loop
                for job in waiting:
                    placed[job.spec.run_id] = Placed("-", None, "no slot can take it")
                break
            running.sort(key=lambda r: r[0])
            end, slot, demand = running.pop(0)
            clock = end
            pool.release(slot, demand)
    for _, slot, demand in running:
        pool.release(slot, demand)
    return placed


def _history(job: Work, store: Store | None) -> float | None:
    """Seconds the remaining samples should take, from this run's stored samples."""
    if store is None:
        return None
    rows = store.conn.execute(
        "SELECT COUNT(*), SUM(latency_s), MIN(sent_at), MAX(received_at) FROM samples "
        "WHERE run_id = ? AND latency_s IS NOT NULL",
        (job.spec.run_id,),
    ).fetchone()
    count = int(rows[0] or 0)
    if not count:
        return None
    per_sample = float(rows[1]) / count
    if rows[2] is not None and rows[3] is not None and rows[3] > rows[2]:
        per_sample = min(per_sample, (float(rows[3]) - float(rows[2])) / count)  # concurrency
    load = store.conn.execute(
        "SELECT MAX(load_time_s) FROM attempts WHERE run_id = ?", (job.spec.run_id,)
    ).fetchone()[0]
    # Every stored round counts: an estimate for ordering runs, not a progress figure.
    done = len(store.done_keys(job.spec.run_id))
    remaining = max(job.samples - done, 0) or job.samples
    return per_sample * remaining + float(load or 0.0)


def _weight(job: Work) -> float:
    model = job.spec.model
    if model.params_b is not None:
        size = float(model.params_b)
    else:
        on_disk = weights_on_disk(job.spec.backend_options)
        size = on_disk / 2e9 if on_disk else 1.0  # ~2 bytes per parameter
    return max(size, 1e-3) * job.samples
