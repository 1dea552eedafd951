"""Results storage: the SQLite store, its migrations, the sample row and the output lock."""

from fleetbench.store.opener import open_store
from fleetbench.store.rows import SAMPLE_FIELDS, SampleRow
from fleetbench.store.sqlite import (
    COMPLETED,
    COMPLETED_WITH_ERRORS,
    DB_NAME,
    FAILED,
    INTERRUPTED,
    PENDING,
    RUNNING,
    Store,
)

__all__ = [
    "COMPLETED",
    "COMPLETED_WITH_ERRORS",
    "DB_NAME",
    "FAILED",
    "INTERRUPTED",
    "PENDING",
    "RUNNING",
    "SAMPLE_FIELDS",
    "SampleRow",
    "Store",
    "open_store",
]
