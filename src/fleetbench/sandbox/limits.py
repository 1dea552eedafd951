"""Sandbox limits and results (plain data; the work happens in ``runner``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal["passed", "failed", "timeout", "memory", "output_limit", "error"]

MIB = 1024 * 1024
# Secrets (home directories, mounted credentials) and the sockets of local services
# (databases, X11, D-Bus: a Unix socket is reachable even on a read-only mount).
HIDDEN_PATHS = ("/home", "/root", "/tmp", "/var/tmp", "/run", "/var/run", "/dev/shm",
                "/dev/mqueue", "/mnt", "/media", "/srv", "/var/lib", "/var/spool",
                "/var/mail")  # fmt: skip


class SandboxLimits(BaseModel):
    """What one program may use. Every limit applies to each program separately."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    cpu_s: float = Field(10.0, gt=0)
    """CPU seconds per process (RLIMIT_CPU, rounded to whole seconds, at least 1)."""
    wall_s: float = Field(15.0, gt=0)
    """Wall-clock seconds; the whole sandbox is killed when they run out."""
    memory_bytes: int = Field(1024 * MIB, ge=32 * MIB)
    """Address space per process (RLIMIT_AS)."""
    processes: int = Field(64, ge=1)
    """Processes and threads of the sandbox user (RLIMIT_NPROC; enforced as root because
    the program runs as a dedicated uid)."""
    output_bytes: int = Field(MIB, ge=1)
    """Bytes kept per stream (stdout, stderr); the program is killed when it writes more."""
    file_bytes: int = Field(16 * MIB, ge=0)
    """Largest file the program may write (RLIMIT_FSIZE)."""
    workdir_bytes: int = Field(64 * MIB, ge=MIB)
    """Size of the work directory (a tmpfs where a mount namespace is permitted)."""
    open_files: int = Field(256, ge=16)
    """Open file descriptors (RLIMIT_NOFILE)."""
    uid_base: int = Field(0x70000000, ge=1000, le=0xFFE00000)
    """As root, programs run as dedicated uids from here on: uid_base + 256 * (pid % 4096)
    + a slot per concurrent program. No passwd entry is needed."""
    hidden_paths: tuple[str, ...] = HIDDEN_PATHS
    """Directories replaced by an empty read-only tmpfs in the sandbox (where a mount
    namespace is permitted); the interpreter is bound back in if it lives below one."""
    namespaces: bool = True
    """Create network, mount, pid, IPC and UTS namespaces where permitted."""
    strict: bool = False
    """Refuse to run (status ``error``) when any part of the isolation is unavailable,
    instead of running with a warning."""
    python: str | None = None
    """Interpreter for the program (default: the one running fleetbench)."""


class SandboxResult(BaseModel):
    """How one program ended. ``stdout``/``stderr`` hold at most ``output_bytes`` each."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    status: Status
    reason: str
    """One human-readable line: why it ended this way."""
    returncode: int | None = None
    signal: str | None = None
    """The signal that ended the program (e.g. ``SIGKILL``), if one did."""
    stdout: str = ""
    stderr: str = ""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    duration_s: float = 0.0
    cpu_s: float | None = None
    warnings: list[str] = Field(default_factory=list)
    """Parts of the isolation that were not available for this run."""
    isolation: list[str] = Field(default_factory=list)
    """Namespaces created, plus ``uid`` when the program ran as a dedicated user."""

    @property
    def passed(self) -> bool:
        return self.status == "passed"
