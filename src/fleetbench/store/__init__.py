"""Results storage: the SQLite store, its migrations and the output lock."""

from fleetbench.store.opener import open_store
from fleetbench.store.sqlite import (
    COMPLETED,
    DB_NAME,
    FAILED,
    PENDING,
    RUNNING,
    TIMEOUT,
    Store,
)

__all__ = ["COMPLETED", "DB_NAME", "FAILED", "PENDING", "RUNNING", "TIMEOUT", "Store", "open_store"]
