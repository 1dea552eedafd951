"""One batch at a time per output folder: an advisory lock the OS drops if we die."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from fleetbench.errors import ConfigError

LOCK_NAME = ".fleetbench.lock"


class OutputLock:
    def __init__(self, output: Path) -> None:
        self.path = output / LOCK_NAME
        self._fd: int | None = None

    def __enter__(self) -> OutputLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise ConfigError(
                f"{self.path.parent}: another fleetbench batch (pid {holder}) is writing here; "
                "wait for it or choose another --output"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the lock
            self._fd = None
