"""A run's outcome from its stored samples: completed, completed_with_errors or failed.

A worker that gets through every sample has done its job, but the run has not
succeeded if its samples failed (every request answered 401, say). Once all planned
samples are stored, the run's status follows from their errors alone:

* none failed, or a share of at most ``max_failed_share`` (a plan field; default 0):
  ``completed`` (with a summary in the error column when some failed);
* every sample failed: ``failed``, with the most common error as its error message;
* otherwise: ``completed_with_errors``, error ``"3/20 samples failed: <most common>"``.

The batch applies this after every attempt that stored all samples and to every fully
stored run it selects, so a changed threshold applies on the next ``fleetbench run``.
Runs that are not ``completed`` exit the batch with code 1 and get no energy stars.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from fleetbench.store import COMPLETED, COMPLETED_WITH_ERRORS, FAILED, Store


@dataclass(frozen=True)
class Settled:
    status: str
    error: str | None


def settle(errors: list[str | None], max_failed_share: float) -> Settled:
    """The outcome of a run whose samples (all stored) ended with these errors."""
    failed = [e for e in errors if e is not None]
    if not failed:
        return Settled(COMPLETED, None)
    common = Counter(failed).most_common(1)[0][0]
    if len(failed) == len(errors):
        return Settled(FAILED, common)
    summary = f"{len(failed)}/{len(errors)} samples failed: {common}"
    if len(failed) / len(errors) <= max_failed_share:
        return Settled(COMPLETED, f"{summary} (within max_failed_share {max_failed_share:g})")
    return Settled(COMPLETED_WITH_ERRORS, summary)


def settle_stored(store: Store, run_id: str, planned: int, max_failed_share: float) -> Settled:
    """Settle a run whose ``planned`` samples are all stored and record the outcome
    (written only when it changed, so the run's timestamp stays that of its last change)."""
    settled = settle(store.sample_errors(run_id, planned), max_failed_share)
    row = store.get_run(run_id)
    if row is not None and (row["status"], row["error_message"]) != (settled.status, settled.error):
        store.set_run_status(run_id, settled.status, settled.error)
    return settled
