"""Supervise one run attempt in a child process: spawn, relay progress, enforce the timeout.

The child runs in a new session (its own process group), so on timeout the whole
group is killed, including anything the backend spawned. A managed local server runs
in a group of its own, named in the run folder's ``server.pgid``: killed too.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Protocol

from fleetbench.backends.base import PGID_FILE
from fleetbench.fsutil import atomic_write_text
from fleetbench.meters import host_info
from fleetbench.runner.heartbeat import Heartbeat
from fleetbench.runner.job import JOB_FILE, LOG_FILE, Event, RunJob, RunOutcome
from fleetbench.runner.zygote import Zygote, ZygoteGone
from fleetbench.store import COMPLETED, FAILED, Store
from fleetbench.tasks import TASKS

EventSink = Callable[[str, Event], None]
WORKER = "fleetbench.runner.worker"


class Worker(Protocol):
    """What supervision needs of a worker process: ``subprocess.Popen`` or a child of
    the zygote."""

    @property
    def pid(self) -> int: ...
    @property
    def stdout(self) -> IO[bytes] | None: ...
    def wait(self, timeout: float | None = None) -> int: ...


def run_attempt(
    job: RunJob,
    store: Store,
    on_event: EventSink,
    cancel: threading.Event | None = None,
    zygote: Zygote | None = None,
) -> RunOutcome:
    """Run one attempt to its end, record it in the store and return its outcome.
    ``cancel`` (parallel executors) kills the worker when set, e.g. on Ctrl-C; ``zygote``
    forks the worker (runner/zygote.py)."""
    job = begin_attempt(job, store)
    env = worker_env(job)
    store.update_attempt(
        job.spec.run_id,
        job.attempt,
        slot=job.slot,
        cuda_visible_devices=env.get("CUDA_VISIBLE_DEVICES"),
    )
    beat = Heartbeat(store, job.spec.run_id, job.attempt)
    run_id = job.spec.run_id
    status, error = run_worker(job, env, lambda e: on_event(run_id, e), cancel, beat, zygote)
    return end_attempt(job, store, status, error)


def begin_attempt(job: RunJob, store: Store) -> RunJob:
    """Record a new attempt; the job, numbered (and told what is done when its worker
    streams its results instead of writing the store)."""
    run_id = job.spec.run_id
    attempt = store.start_attempt(run_id, job.batch_id, host_info(), job.rounds)
    update: dict[str, object] = {"attempt": attempt}
    if job.stream_results:
        update["done_keys"] = sorted(store.done_keys(run_id))
    return job.model_copy(update=update)


def end_attempt(job: RunJob, store: Store, status: str, error: str | None) -> RunOutcome:
    """Close the attempt: a worker that ended without every sample of its rounds stored
    failed."""
    run_id = job.spec.run_id
    stored = store.count_stored(run_id, job.rounds, job.planned_samples)
    total = job.total_samples
    if status == FAILED and error and error.startswith("timed out"):
        error = f"{error} ({stored}/{total} samples stored)"
    if status == COMPLETED and stored < total:
        status, error = FAILED, f"worker ended with {stored}/{total} samples stored"
    store.finish_attempt(run_id, job.attempt, status, error)
    return RunOutcome(run_id=run_id, status=status, error=error, samples_stored=stored)


def run_worker(
    job: RunJob,
    env: dict[str, str],
    on_event: Callable[[Event], None],
    cancel: threading.Event | None = None,
    beat: Callable[[], None] | None = None,
    zygote: Zygote | None = None,
) -> tuple[str, str | None]:
    """Start the worker process of ``job`` in the run folder and supervise it to its end
    (the part that runs on a Ray node too); returns the status and error."""
    job.run_dir.mkdir(parents=True, exist_ok=True)
    job_file = job.run_dir / JOB_FILE
    atomic_write_text(job_file, job.model_dump_json(indent=2))
    with open(job.run_dir / LOG_FILE, "ab") as log:
        proc = _start(job, job_file, env, log, zygote)
    return _supervise(proc, job, on_event, cancel, beat)


def _start(
    job: RunJob, job_file: Path, env: dict[str, str], log: IO[bytes], zygote: Zygote | None
) -> Worker:
    """The worker process, forked by the batch's zygote when it has one (milliseconds
    instead of a fresh interpreter's imports), else a new interpreter."""
    if zygote is not None:
        try:
            warm = _builtin_task_module(job)
            return zygote.spawn(WORKER, [WORKER, str(job_file)], env, log.fileno(), warm)
        except ZygoteGone as exc:
            log.write(f"fleetbench: {exc}; starting the worker without it\n".encode())
            log.flush()
    return subprocess.Popen(
        [sys.executable, "-m", WORKER, str(job_file)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=log,
        env=env,
        start_new_session=True,
    )


def _builtin_task_module(job: RunJob) -> list[str]:
    """The run's task module when it is a built-in one (the standard library and
    pydantic only), for the zygote to import for the batch's next workers (~15 ms each)."""
    target = TASKS.builtin.get(job.spec.task.name)
    return [target.partition(":")[0]] if target else []


def worker_env(job: RunJob, base: dict[str, str] | None = None) -> dict[str, str]:
    """The worker's environment: the batch's, pinned to the GPUs the fit check chose
    (by UUID, which no device ordering can confuse)."""
    env = dict(os.environ if base is None else base)
    if job.cuda_devices is not None:  # a parallel executor's GPU slot
        env["CUDA_VISIBLE_DEVICES"] = ",".join(job.cuda_devices)
    elif job.spec.gpus:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(job.spec.gpus)
    return env


def _supervise(
    proc: Worker,
    job: RunJob,
    on_event: Callable[[Event], None],
    cancel: threading.Event | None = None,
    beat: Callable[[], None] | None = None,
) -> tuple[str, str | None]:
    assert proc.stdout is not None
    deadline = time.monotonic() + job.timeout_s
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    buffer = b""
    error: str | None = None
    done = False
    try:
        while True:
            if beat is not None:
                beat()  # the attempt is alive while we watch it (runner/heartbeat.py)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                _kill_group(proc)
                return FAILED, f"timed out after {job.timeout_s:g} s (--timeout); run killed"
            if cancel is not None and cancel.is_set():
                _kill_group(proc)
                return FAILED, "interrupted by the user; re-run to resume"
            if not selector.select(timeout=min(remaining, 1.0)):
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break  # the worker closed stdout: it is exiting
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                event = _parse(line)
                if event is None:
                    continue
                if event.get("event") == "error":
                    error = str(event.get("message"))
                done = done or event.get("event") == "done"
                on_event(event)
        code = _wait(proc, max(0.0, deadline - time.monotonic()) + 5.0)
    finally:
        selector.close()
        proc.stdout.close()
        _kill_group(proc)  # reap anything the worker left behind
        _kill_leftover_server(job.run_dir)
    if code == 0 and done:
        return COMPLETED, None
    if error is None:
        error = f"worker exited with code {code}" + _signal_name(code)
        error += f"; see {job.run_dir / LOG_FILE}"
    return FAILED, error


def _kill_leftover_server(run_dir: Path) -> None:
    """A managed server lives in a group of its own, named in the run folder: killed
    too. Without that file there is none, and the module that kills it (which imports
    the request engine and asyncio, ~20 ms) need not load before the first run starts
    (benchmarks/makespan.py)."""
    if (run_dir / PGID_FILE).exists():
        from fleetbench.backends.managed import kill_leftover_server

        kill_leftover_server(run_dir)


def _parse(line: bytes) -> Event | None:
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def _wait(proc: Worker, timeout: float) -> int:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        return proc.wait()


def _kill_group(proc: Worker) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _signal_name(code: int) -> str:
    if code < 0:
        try:
            return f" (killed by {signal.Signals(-code).name})"
        except ValueError:
            return ""
    return ""
