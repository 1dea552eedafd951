"""Several runs at once on this machine: compute slots, GPU pinning, network runs alongside.

Each run is still one worker process with its own timeout (``run_attempt``), supervised
by a thread of this process; the threads only relay. The workers fork from the batch's
zygote (runner/zygote.py), which imported their modules once, so a slot's next run starts
in milliseconds instead of a fresh interpreter's second. Callbacks (progress, the export
after each run) run on the calling thread, fed through one queue, so the batch sees
the same single-threaded sequence of calls as with the sequential executor. Workers
write their samples to the store themselves — SQLite in WAL mode takes one writer at a
time and each sample is one short transaction.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fleetbench.meters.nvml import GpuMemory, gpu_memory
from fleetbench.runner import zygote as zygotes
from fleetbench.runner.executors.base import EventSink, OutcomeSink, StartSink
from fleetbench.runner.executors.resources import Demand, ResourcePool, Slot, demand_of
from fleetbench.runner.executors.schedule import in_start_order
from fleetbench.runner.job import RunJob, RunOutcome
from fleetbench.runner.plan import ExecutorSettings
from fleetbench.runner.process import run_attempt
from fleetbench.runner.zygote import Zygote
from fleetbench.store import FAILED, Store

# What supervisor threads tell the batch's thread: ("event", run_id, event) or
# ("done", run_id, outcome).
Inbox = queue.Queue[tuple[str, str, Any]]


@dataclass
class _Active:
    job: RunJob
    slot: Slot
    demand: Demand
    started: float
    ended: float | None = None


class LocalExecutor:
    """Runs ``workers`` compute-bound runs and ``network_workers`` network-bound runs at
    once, longest expected first, each GPU run on GPUs of its own."""

    def __init__(self, settings: ExecutorSettings, gpus: list[GpuMemory] | None = None) -> None:
        self.settings = settings
        self._gpus = gpus

    def pool(self) -> ResourcePool:
        return ResourcePool(self.settings, self.gpu_inventory())

    def gpu_inventory(self) -> list[GpuMemory]:
        if self._gpus is None:
            found, _ = gpu_memory()
            self._gpus = _select(found, self.settings.gpus)
        return self._gpus

    def execute(
        self,
        jobs: Sequence[RunJob],
        store: Store,
        on_start: StartSink,
        on_event: EventSink,
        on_outcome: OutcomeSink,
    ) -> None:
        zygote = zygotes.take()  # prestarted by `fleetbench run`, else imports meanwhile
        pool = self.pool()
        demands = {j.spec.run_id: demand_of(j.spec) for j in jobs}
        waiting = in_start_order(jobs, store)
        inbox: Inbox = queue.Queue()
        cancel = threading.Event()
        active: dict[str, _Active] = {}
        history: list[_Active] = []
        threads: list[threading.Thread] = []

        def dispatch() -> None:
            """Start every waiting run a slot can take now, longest expected first."""
            for job in list(waiting):
                rid = job.spec.run_id
                why = pool.impossible(demands[rid])
                if why is not None:
                    waiting.remove(job)
                    on_start(job)
                    on_outcome(RunOutcome(run_id=rid, status=FAILED, error=why))
                    continue
                slot = pool.acquire(demands[rid])
                if slot is None:
                    continue
                waiting.remove(job)
                placed = _placed(job, slot)
                run = _Active(placed, slot, demands[rid], time.time())
                active[rid] = run
                history.append(run)
                on_start(placed)
                thread = threading.Thread(target=_attempt, args=(placed, inbox, cancel, zygote))
                thread.daemon = True
                thread.start()
                threads.append(thread)

        try:
            dispatch()
            while active:
                kind, rid, payload = inbox.get()
                if kind == "event":
                    on_event(rid, payload)
                    continue
                run = active.pop(rid)
                run.ended = time.time()
                pool.release(run.slot, run.demand)
                _record_sharing(store, run, history)
                dispatch()  # the freed slot starts its next run before this one's export
                on_outcome(payload)
        except BaseException:
            cancel.set()  # Ctrl-C: every supervisor kills its worker's process group
            for thread in threads:
                thread.join(timeout=30)
            raise
        finally:
            if zygote is not None:
                zygote.close()


def _placed(job: RunJob, slot: Slot) -> RunJob:
    update: dict[str, Any] = {"slot": slot.label}
    if slot.gpus is not None:
        update["cuda_devices"] = list(slot.gpus)
    if slot.cpus is not None:
        update["cpus"] = list(slot.cpus)
    return job.model_copy(update=update)


def _attempt(job: RunJob, inbox: Inbox, cancel: threading.Event, zygote: Zygote | None) -> None:
    """One run in a supervisor thread: its own store connection, events to the inbox."""
    rid = job.spec.run_id
    store = Store(job.db_path)
    try:
        relay = lambda r, e: inbox.put(("event", r, e))  # noqa: E731
        outcome = run_attempt(job, store, relay, cancel, zygote)
    except Exception as exc:  # a supervisor bug must not hang the batch
        outcome = RunOutcome(run_id=rid, status=FAILED, error=f"{type(exc).__name__}: {exc}")
    finally:
        store.close()
    inbox.put(("done", rid, outcome))


def _record_sharing(store: Store, run: _Active, history: list[_Active]) -> None:
    """Name the devices this run shared with runs executing at the same time: a
    device-wide meter (RAPL, NVML) then measured their sum, not this run alone."""
    end = run.ended or time.time()
    shared: list[str] = []
    for other in history:
        if other is run or other.started >= end or (other.ended or end) <= run.started:
            continue
        if run.slot.kind != "network" and other.slot.kind != "network":
            shared.append("cpu")
        common = set(run.slot.gpu_indices) & set(other.slot.gpu_indices)
        shared += [f"gpu {i}" for i in sorted(common)]
    if not shared:
        return
    attempt = store.conn.execute(
        "SELECT MAX(attempt) FROM attempts WHERE run_id = ?", (run.job.spec.run_id,)
    ).fetchone()[0]
    if attempt is not None:
        devices = ", ".join(dict.fromkeys(shared))
        store.update_attempt(run.job.spec.run_id, int(attempt), shared_device=devices)


def _select(found: list[GpuMemory], wanted: str | list[int | str]) -> list[GpuMemory]:
    """The GPU pool: every visible GPU, or those named by CUDA index or UUID (prefix)."""
    if wanted == "auto":
        return found
    if not found:  # no NVML here: pin by the names given, nothing known of their memory
        return [GpuMemory(i, str(item), "GPU", 0, 0) for i, item in enumerate(wanted)]
    out: list[GpuMemory] = []
    for item in wanted:
        for gpu in found:
            text = str(item)
            if (text.isdigit() and gpu.index == int(text)) or (
                not text.isdigit() and gpu.uuid.upper().startswith(text.upper())
            ):
                out.append(gpu)
                break
    return out
