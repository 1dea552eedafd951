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


class RunOutcome(BaseModel):
    run_id: str
    status: str
    error: str | None = None
    samples_stored: int = 0


Event = dict[str, Any]
