"""Results storage: the SQLite store and the files exported from it."""

from fleetbench.store.sqlite import (
    COMPLETED,
    DB_NAME,
    FAILED,
    PENDING,
    RUNNING,
    TIMEOUT,
    Store,
)

__all__ = ["COMPLETED", "DB_NAME", "FAILED", "PENDING", "RUNNING", "TIMEOUT", "Store"]
