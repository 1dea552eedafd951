"""An attempt's heartbeat: its ``last_seen_at`` moves every few seconds while it runs.

A batch killed with ``kill -9`` cannot record when its attempt ended. The next batch
to take the output lock marks the attempt ``interrupted`` at its last heartbeat
(``Store.interrupt_dead``), so ``total_duration_seconds`` counts the time it really
ran, to within ``HEARTBEAT_S`` — not only up to its last stored sample, which misses a
long sample, a slow load or a hang. The process that supervises the worker beats (it
wakes at least once a second anyway), so a worker stuck in native code is still seen
as alive for as long as it is being waited for.
"""

from __future__ import annotations

import logging
import sqlite3
import time

from fleetbench.store import Store

HEARTBEAT_S = 2.0

log = logging.getLogger(__name__)


class Heartbeat:
    """Call it as often as you like; it writes at most once every ``every_s`` seconds."""

    def __init__(
        self, store: Store, run_id: str, attempt: int, every_s: float = HEARTBEAT_S
    ) -> None:
        self.store, self.run_id, self.attempt, self.every_s = store, run_id, attempt, every_s
        self._last = time.monotonic()

    def __call__(self) -> None:
        now = time.monotonic()
        if now - self._last < self.every_s:
            return
        self._last = now
        try:
            self.store.update_attempt(self.run_id, self.attempt, last_seen_at=time.time())
        except sqlite3.Error as exc:  # best effort: a missed beat only shortens the count
            log.warning("heartbeat of %s attempt %d not stored: %s", self.run_id, self.attempt, exc)
