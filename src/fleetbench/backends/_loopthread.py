"""An asyncio event loop in a helper thread, for backends whose API is synchronous.

The runner consumes ``generate()`` as a plain iterator in its own thread; the HTTP
work runs as coroutines on this loop, so many requests can be in flight at once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import httpx

T = TypeVar("T")


class LoopThread:
    """An asyncio loop in a daemon thread: the caller's thread stays synchronous."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="fleetbench-http", daemon=True
        )
        self._thread.start()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return self.submit(coro).result(timeout)

    def stop(self, timeout: float = 10) -> None:
        """Stop the loop and wait up to ``timeout`` s for the thread; close the loop if
        the thread ended. Call once."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self.loop.close()


async def shutdown(client: httpx.AsyncClient | None) -> None:
    """Cancel requests still in flight (a consumer that stopped early), then close."""
    current = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if client is not None:
        await client.aclose()
