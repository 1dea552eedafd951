"""What crosses the process boundary between the batch and a run's worker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from fleetbench.runner.plan import RunSpec

LOG_FILE = "run.log"
JOB_FILE = "job.json"


class RunJob(BaseModel):
    """One attempt at one run, handed to a worker process as JSON."""

    spec: RunSpec
    planned_samples: int
    attempt: int = 0  # assigned when the attempt starts
    batch_id: str
    db_path: Path
    run_dir: Path
    timeout_s: float
    parent_pid: int
    # Placement by a parallel executor: the slot's name, the GPUs the worker sees
    # (CUDA_VISIBLE_DEVICES; None: the fit check's pin or the batch's own) and the
    # cores it may run on (None: every core of the batch).
    slot: str | None = None
    cuda_devices: list[str] | None = None
    cpus: list[int] | None = None
    # A worker on another machine (Ray) sends its writes to the coordinator instead of
    # writing the store, and learns from the job which samples are already done.
    stream_results: bool = False
    done_indices: list[int] | None = None


class RunOutcome(BaseModel):
    run_id: str
    status: str
    error: str | None = None
    samples_stored: int = 0


Event = dict[str, Any]
