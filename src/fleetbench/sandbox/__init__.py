"""A sandbox for model-written code: run untrusted Python programs behind a real boundary.

Each program runs in its own session, in new network/mount/pid/IPC/UTS namespaces (where
permitted), as a dedicated unprivileged uid (when fleetbench runs as root), with a
read-only view of the filesystem except a size-capped temporary work directory, a scrubbed
environment, stdin on /dev/null, ``python -I``, and CPU, wall-clock, memory, process, file
and output limits. ``run_many`` runs many programs in parallel.
"""

from fleetbench.sandbox.limits import SandboxLimits, SandboxResult, Status
from fleetbench.sandbox.runner import (
    new_workdir,
    run_command,
    run_many,
    run_program,
    sandbox_env,
)

__all__ = ["SandboxLimits", "SandboxResult", "Status", "new_workdir", "run_command", "run_many",
           "run_program", "sandbox_env"]  # fmt: skip
