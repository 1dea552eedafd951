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
    planned_samples: int  # per round
    # The rounds this attempt measures, in order (``--repeat K``: 1..K; a schedule's
    # tick: its one round). The worker loads the model once and measures them in turn.
    rounds: list[int] = [1]
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
    # writing the store, and learns from the job which (round, index) are already done.
    stream_results: bool = False
    done_keys: list[tuple[int, int]] | None = None

    @property
    def total_samples(self) -> int:
        """Samples over all the attempt's rounds."""
        return self.planned_samples * len(self.rounds)


class RunOutcome(BaseModel):
    run_id: str
    status: str
    error: str | None = None
    samples_stored: int = 0


Event = dict[str, Any]
