"""Runs on a Ray cluster: each run one Ray task, results streamed back to this process.

A task asks Ray for the resources its run needs (a CPU, or its GPUs; network runs
need none), so Ray spreads a fleet over the cluster's nodes and pins GPUs itself. On
its node the task starts the ordinary worker process (isolation and timeout as on
one machine) in streaming mode: instead of writing the SQLite file — which lives on
the coordinator — the worker sends each write as an event; the task relays events
through a Ray queue and this process applies them to the store, one transaction per
sample. Only the coordinator writes the store, so resume and kill -9 safety hold.

``pip install 'fleetbench[ray]'``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fleetbench.errors import BackendUnavailable
from fleetbench.runner.executors.base import EventSink, OutcomeSink, StartSink
from fleetbench.runner.executors.resources import Demand, demand_of
from fleetbench.runner.executors.schedule import in_start_order
from fleetbench.runner.heartbeat import Heartbeat
from fleetbench.runner.job import LOG_FILE, RunJob
from fleetbench.runner.plan import ExecutorSettings
from fleetbench.runner.process import begin_attempt, end_attempt, run_worker
from fleetbench.runner.recorder import STORE_EVENT, apply
from fleetbench.store import FAILED, Store

_POLL_S = 0.1
_LOG_TAIL = 16_384  # bytes of a remote worker's run.log sent back with its result


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise BackendUnavailable(
            "the ray executor needs Ray; run: pip install 'fleetbench[ray]'"
        ) from None
    return ray


def connect(ray: Any, address: str) -> None:
    """Join the cluster at ``address``; ``auto`` joins a running one (RAY_ADDRESS or a
    local head) and otherwise starts a local instance; ``local`` always starts one."""
    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a local instance needs no token
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    if address == "local":
        ray.init(**kwargs)
    elif address == "auto":
        try:
            ray.init(address="auto", **kwargs)
        except (ConnectionError, RuntimeError, ValueError):
            ray.init(**kwargs)
    else:
        ray.init(address=address, **kwargs)


def ray_options(demand: Demand) -> dict[str, Any]:
    """Ray resources of a run: GPUs for GPU runs (Ray sets CUDA_VISIBLE_DEVICES),
    one CPU for local compute, none for network-bound runs."""
    gpus = max(demand.gpus, 1) if demand.kind == "gpu" else 0
    cpus = 0 if demand.kind == "network" else 1
    return {"num_cpus": cpus, "num_gpus": gpus, "max_retries": 0}


class RayExecutor:
    def __init__(self, settings: ExecutorSettings) -> None:
        self.settings = settings

    def execute(
        self,
        jobs: Sequence[RunJob],
        store: Store,
        on_start: StartSink,
        on_event: EventSink,
        on_outcome: OutcomeSink,
    ) -> None:
        ray = import_ray()
        connect(ray, self.settings.address)
        from ray.util.queue import Queue

        inbox = Queue()
        task = ray.remote(_run_on_node)
        pending: dict[Any, RunJob] = {}
        try:
            for planned in in_start_order(jobs, store):
                job = begin_attempt(planned, store)
                on_start(job)
                options = ray_options(demand_of(job.spec))
                pending[task.options(**options).remote(job.model_dump_json(), inbox)] = job
            running = {j.spec.run_id: j for j in pending.values()}
            beats = {rid: Heartbeat(store, rid, j.attempt) for rid, j in running.items()}
            while pending:
                for rid in running:
                    beats[rid]()  # queued or running on the cluster: alive
                self._drain(inbox, running, store, on_event)
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=_POLL_S)
                for ref in ready:
                    job = pending.pop(ref)
                    status, error, log_tail = _result(ray, ref)
                    self._drain(inbox, running, store, on_event)  # events sent before it ended
                    _keep_log(job, log_tail)
                    running.pop(job.spec.run_id, None)
                    on_outcome(end_attempt(job, store, status, error))
        except BaseException:
            for ref in pending:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
            raise
        finally:
            with contextlib.suppress(Exception):
                ray.kill(inbox.actor)

    @staticmethod
    def _drain(inbox: Any, running: dict[str, RunJob], store: Store, on_event: EventSink) -> None:
        while True:
            try:
                batch = inbox.get_nowait_batch(min(inbox.qsize(), 500))
            except Exception:
                return
            if not batch:
                return
            for run_id, event in batch:
                job = running.get(run_id)
                if job is None:
                    continue
                if event.get("event") == STORE_EVENT:
                    apply(store, job, event)
                else:
                    on_event(run_id, event)


def _result(ray: Any, ref: Any) -> tuple[str, str | None, str]:
    try:
        status, error, tail = ray.get(ref)
        return str(status), error, str(tail)
    except Exception as exc:  # the task itself died (node lost, worker OOM-killed)
        return FAILED, f"ray task failed: {type(exc).__name__}: {exc}", ""


def _keep_log(job: RunJob, tail: str) -> None:
    """A worker on another node wrote its run.log there: keep its tail here."""
    if not tail:
        return
    job.run_dir.mkdir(parents=True, exist_ok=True)
    with open(job.run_dir / LOG_FILE, "a", encoding="utf-8") as log:
        log.write(f"--- run.log of the Ray worker (last {_LOG_TAIL} bytes) ---\n{tail}")


def _run_on_node(job_json: str, inbox: Any) -> tuple[str, str | None, str]:
    """The Ray task: run the worker here, relay its events, return status, error and
    (when the run folder is not the coordinator's) the tail of the worker's log."""
    job = RunJob.model_validate_json(job_json)
    local = _node_run_dir(job)
    shared = local == job.run_dir
    job = job.model_copy(
        update={"run_dir": local, "stream_results": True, "parent_pid": os.getpid()}
    )
    buffered: list[tuple[str, dict[str, Any]]] = []
    last = time.monotonic()

    def relay(event: dict[str, Any]) -> None:
        nonlocal last
        buffered.append((job.spec.run_id, event))
        if len(buffered) >= 64 or time.monotonic() - last > _POLL_S:
            inbox.put_nowait_batch(list(buffered))
            buffered.clear()
            last = time.monotonic()

    # This node's environment, where Ray set CUDA_VISIBLE_DEVICES for the GPUs it gave
    # the task; the coordinator's fit-check pin names GPUs of another machine.
    status, error = run_worker(job, dict(os.environ), relay)
    if buffered:
        inbox.put_nowait_batch(list(buffered))
    return status, error, "" if shared else _tail(local / LOG_FILE)


def _node_run_dir(job: RunJob) -> Path:
    """The run folder where the coordinator has it (same machine or a shared disk),
    else a temporary folder on this node."""
    try:
        job.run_dir.mkdir(parents=True, exist_ok=True)
        probe = job.run_dir / f".ray-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
        return job.run_dir
    except OSError:
        return Path(tempfile.mkdtemp(prefix=f"fleetbench-{job.spec.run_id}-"))


def _tail(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - _LOG_TAIL))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""
