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
        check_output(self.path.parent)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:  # what the checks cannot foresee (a full disk, root on NFS)
            raise ConfigError(
                f"{self.path.parent}: cannot write the results folder: {exc.strerror or exc}"
            ) from None
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


def check_output(output: Path) -> None:
    """Refuse an output folder that cannot be used, before anything runs or is written:
    an existing file, a path under a file, or a folder this user cannot write to."""
    hint = "choose another folder with -o/--output"
    if output.exists() and not output.is_dir():
        raise ConfigError(f"{output}: the output folder is an existing file; {hint}")
    existing = output
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(
            f"{output}: cannot create the output folder: {existing} is a file; {hint}"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{output}: the output folder is not writable ({existing}); {hint}")
