"""Optional control groups: one memory and process budget for all of a sandbox's processes.

rlimits bound each process separately (a program that forks N children may use N times the
memory limit); a cgroup bounds them together, and the tmpfs work directory is charged to it
too. Used where a writable hierarchy exists: cgroup v2 when our cgroup already delegates the
``memory``/``pids`` controllers to children, else v1 ``memory`` and ``pids`` hierarchies.
Anywhere else the sandbox runs without one and reports it as a warning.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

PREFIX = "fleetbench-sbx-"  # then the owning process id: lets a later run clean up
_lock = threading.Lock()
_layout: tuple[list[tuple[str, Path]], str | None] | None = None  # cached detection


@dataclass
class Cgroup:
    """The cgroup directories of one sandbox (one per v1 hierarchy, or one v2 directory)."""

    dirs: list[tuple[str, Path]]  # (kind, directory): kind is "v2", "memory" or "pids"

    @property
    def procs_files(self) -> list[str]:
        return [str(path / "cgroup.procs") for _, path in self.dirs]

    def oom_killed(self) -> bool:
        for kind, path in self.dirs:
            name = {"v2": "memory.events", "memory": "memory.oom_control"}.get(kind)
            if name is None:
                continue
            with contextlib.suppress(OSError):
                for line in (path / name).read_text().splitlines():
                    key, _, value = line.partition(" ")
                    if key in ("oom_kill", "under_oom") and value.strip() not in ("", "0"):
                        return True
        return False

    def remove(self) -> None:
        """Remove the directories (empty once every process is reaped; retried briefly)."""
        for _, path in self.dirs:
            for _ in range(50):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)


def stale(paths: Iterable[Path]) -> list[Path]:
    """The ``PREFIX<pid>-…`` directories of fleetbench processes that are gone."""
    out = []
    for path in paths:
        pid = path.name[len(PREFIX) :].partition("-")[0]
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            out.append(path)
    return out


def remove_stale(paths: Iterable[Path]) -> None:
    for path in stale(paths):
        with contextlib.suppress(OSError):
            path.rmdir()  # a cgroup directory goes with rmdir (it only holds control files)


def _mounts() -> list[tuple[str, str, set[str]]]:
    """(mount point, fstype, super options) of the cgroup mounts."""
    out = []
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        for line in handle:
            left, _, right = line.partition(" - ")
            fstype, _, options = right.split()[:3]
            if fstype in ("cgroup", "cgroup2"):
                out.append((left.split()[4], fstype, set(options.split(","))))
    return out


def _own_paths() -> dict[str, str]:
    """Our cgroup path per v1 controller, and under "v2" for the unified hierarchy."""
    paths = {}
    with open("/proc/self/cgroup", encoding="utf-8") as handle:
        for line in handle:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for name in controllers.split(",") if controllers else ["v2"]:
                paths[name] = path
    return paths


def _detect() -> tuple[list[tuple[str, Path]], str | None]:
    """Parent directories to create sandbox cgroups in, or a reason why there are none."""
    if os.geteuid() != 0:
        return [], "no cgroup (not root): memory is limited per process only"
    try:
        mounts, paths = _mounts(), _own_paths()
    except (OSError, ValueError) as exc:
        return [], f"no cgroup: {exc}"
    for point, fstype, _ in mounts:
        if fstype == "cgroup2" and "v2" in paths:
            base = Path(point + paths["v2"])
            with contextlib.suppress(OSError):
                delegated = set((base / "cgroup.subtree_control").read_text().split())
                if {"memory", "pids"} <= delegated and os.access(base, os.W_OK):
                    remove_stale(base.glob(f"{PREFIX}*"))
                    return [("v2", base)], None
    found: list[tuple[str, Path]] = []
    for kind in ("memory", "pids"):
        for point, fstype, options in mounts:
            if fstype == "cgroup" and kind in options and kind in paths:
                base = Path(point + paths[kind])
                if os.access(base, os.W_OK):
                    found.append((kind, base))
                    break
    if any(kind == "memory" for kind, _ in found):
        for _, base in found:
            remove_stale(base.glob(f"{PREFIX}*"))
        return found, None
    return [], "no writable cgroup: memory is limited per process only"


def create(name: str, memory_bytes: int, processes: int) -> tuple[Cgroup | None, str | None]:
    """A cgroup for one sandbox with the given budgets, or (None, why not)."""
    global _layout
    with _lock:
        if _layout is None:
            _layout = _detect()
        parents, why = _layout
    if not parents:
        return None, why
    made: list[tuple[str, Path]] = []
    try:
        for kind, parent in parents:
            path = parent / name
            path.mkdir()
            made.append((kind, path))
            if kind in ("v2", "memory"):
                limit = "memory.max" if kind == "v2" else "memory.limit_in_bytes"
                (path / limit).write_text(str(memory_bytes))
                swap = path / ("memory.swap.max" if kind == "v2" else "memory.memsw.limit_in_bytes")
                with contextlib.suppress(OSError):  # absent without swap accounting
                    swap.write_text("0" if kind == "v2" else str(memory_bytes))
            if kind in ("v2", "pids"):
                (path / "pids.max").write_text(str(processes + 2))  # + launcher and init
    except OSError as exc:
        Cgroup(made).remove()
        return None, f"cannot set up a cgroup: {exc}"
    return Cgroup(made), None
