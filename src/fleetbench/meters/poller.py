"""One background thread that calls a few functions at fixed rates.

Power polling (NVML without an energy counter), RAPL wrap-around guards and GPU
memory peaks all share it, so metering costs one mostly sleeping thread. The thread
measures its own CPU time, which ``benchmarks/meter_overhead.py`` reports.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("fleetbench.meters")
SHORT_PAUSE_S = 0.2


@dataclass
class _Task:
    name: str
    period_s: float
    fn: Callable[[], object]
    due: float = 0.0
    failures: int = 0


class Poller:
    def __init__(self) -> None:
        self._tasks: list[_Task] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cpu_s = 0.0
        self.ticks = 0

    def add(self, name: str, hz: float, fn: Callable[[], object]) -> None:
        if self._thread is not None:
            raise RuntimeError("add tasks before start()")
        self._tasks.append(_Task(name, 1.0 / hz, fn))

    def start(self) -> None:
        if self._tasks and self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="fleetbench-meter", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    @property
    def cpu_seconds(self) -> float:
        """CPU time the polling thread used (exact once stopped)."""
        return self._cpu_s

    def _loop(self) -> None:
        now = time.monotonic()
        for task in self._tasks:
            task.due = now
        while not self._stop.is_set():
            now = time.monotonic()
            for task in self._tasks:
                if now >= task.due:
                    self._run(task)
                    # Schedule from the plan, not from now: no drift; skip missed ticks.
                    task.due += task.period_s * max(1, int((now - task.due) / task.period_s) + 1)
            self.ticks += 1
            self._cpu_s = time.thread_time()
            pause = max(0.0, min(t.due for t in self._tasks) - time.monotonic())
            # A plain sleep wakes up for about half the CPU of Event.wait (measured on a
            # VM: ~80 vs ~130 us); long pauses stay interruptible so stop() is prompt.
            if pause <= SHORT_PAUSE_S:
                time.sleep(pause)
            else:
                self._stop.wait(pause)
        self._cpu_s = time.thread_time()

    def _run(self, task: _Task) -> None:
        try:
            task.fn()
        except Exception as exc:  # a flaky sensor must not kill the run
            task.failures += 1
            if task.failures == 1:
                log.warning("meter poll %s failed: %s", task.name, exc)
