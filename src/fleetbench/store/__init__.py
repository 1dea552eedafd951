"""Results storage: the SQLite store, its migrations, the sample row and the output lock."""

from fleetbench.store.opener import open_store
from fleetbench.store.rows import SAMPLE_FIELDS, SampleRow
from fleetbench.store.sqlite import (
    COMPLETED,
    DB_NAME,
    FAILED,
    PENDING,
    RUNNING,
    TIMEOUT,
    Store,
)

__all__ = [
    "COMPLETED",
    "DB_NAME",
    "FAILED",
    "PENDING",
    "RUNNING",
    "SAMPLE_FIELDS",
    "TIMEOUT",
    "SampleRow",
    "Store",
    "open_store",
]
