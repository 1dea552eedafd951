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
import time
from collections.abc import Callable

from fleetbench.backends.managed import kill_leftover_server
from fleetbench.fsutil import atomic_write_text
from fleetbench.meters import host_info
from fleetbench.runner.heartbeat import Heartbeat
from fleetbench.runner.job import JOB_FILE, LOG_FILE, Event, RunJob, RunOutcome
from fleetbench.store import COMPLETED, FAILED, Store

EventSink = Callable[[str, Event], None]


def run_attempt(job: RunJob, store: Store, on_event: EventSink) -> RunOutcome:
    """Run one attempt to its end, record it in the store and return its outcome."""
    run_id = job.spec.run_id
    attempt = store.start_attempt(run_id, job.batch_id, host_info())
    job = job.model_copy(update={"attempt": attempt})
    job.run_dir.mkdir(parents=True, exist_ok=True)
    job_file = job.run_dir / JOB_FILE
    atomic_write_text(job_file, job.model_dump_json(indent=2))
    with open(job.run_dir / LOG_FILE, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fleetbench.runner.worker", str(job_file)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            env=worker_env(job),
            start_new_session=True,
        )
    beat = Heartbeat(store, run_id, job.attempt)
    status, error = _supervise(proc, job, lambda e: on_event(run_id, e), beat)
    stored = len(store.done_indices(run_id))
    if status == FAILED and error and error.startswith("timed out"):
        error = f"{error} ({stored}/{job.planned_samples} samples stored)"
    if status == COMPLETED and stored < job.planned_samples:
        status, error = FAILED, f"worker ended with {stored}/{job.planned_samples} samples stored"
    store.finish_attempt(run_id, job.attempt, status, error)
    return RunOutcome(run_id=run_id, status=status, error=error, samples_stored=stored)


def worker_env(job: RunJob, base: dict[str, str] | None = None) -> dict[str, str]:
    """The worker's environment: the batch's, pinned to the GPUs the fit check chose
    (by UUID, which no device ordering can confuse)."""
    env = dict(os.environ if base is None else base)
    if job.spec.gpus:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(job.spec.gpus)
    return env


def _supervise(
    proc: subprocess.Popen[bytes],
    job: RunJob,
    on_event: Callable[[Event], None],
    beat: Callable[[], None],
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
            beat()  # the attempt is alive while we watch it (runner/heartbeat.py)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                _kill_group(proc)
                return FAILED, f"timed out after {job.timeout_s:g} s (--timeout); run killed"
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
        kill_leftover_server(job.run_dir)  # a managed server lives in a group of its own
    if code == 0 and done:
        return COMPLETED, None
    if error is None:
        error = f"worker exited with code {code}" + _signal_name(code)
        error += f"; see {job.run_dir / LOG_FILE}"
    return FAILED, error


def _parse(line: bytes) -> Event | None:
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def _wait(proc: subprocess.Popen[bytes], timeout: float) -> int:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        return proc.wait()


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
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
