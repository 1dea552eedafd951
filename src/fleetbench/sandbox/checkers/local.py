"""The ``local`` checker: a Python solution in fleetbench's sandbox, stdin fed to it.

The sandbox gives every program stdin on /dev/null, so the program it runs is a small
wrapper: it compiles the solution first (a ``SyntaxError`` is a compile error, told
apart from a runtime error by a marker on stderr and its own exit code), writes the
test input to a file in the sandbox's private work directory, puts that file on fd 0
(so ``input()``, ``sys.stdin``, ``sys.stdin.buffer`` and ``open(0)`` all read it) and
runs the solution as ``__main__``.
"""

from __future__ import annotations

import secrets

from fleetbench.errors import ConfigError
from fleetbench.sandbox import SandboxLimits, run_program
from fleetbench.sandbox.checkers import Ending, Execution, RunLimits

LANGUAGES = frozenset({"python", "python3", "py"})
_COMPILE_EXIT = 97
# Sandbox statuses other than "passed"; "failed" and "output_limit" are runtime errors.
_ENDINGS: dict[str, Ending] = {"timeout": "time_limit", "memory": "memory_limit", "error": "error"}


def wrapper(code: str, stdin: str, marker: str) -> str:
    """The program the sandbox runs for one test."""
    return "\n".join([
        "import os, sys",
        f"_src = {code!r}",
        "try:",
        "    _code = compile(_src, 'solution.py', 'exec')",
        "except (SyntaxError, ValueError) as exc:",
        f"    sys.stderr.write({marker!r} + type(exc).__name__ + ': ' + str(exc) + '\\n')",
        f"    sys.exit({_COMPILE_EXIT})",
        "with open('stdin.txt', 'w', encoding='utf-8') as _f:",
        f"    _f.write({stdin!r})",
        "_fd = os.open('stdin.txt', os.O_RDONLY)",
        "os.dup2(_fd, 0)",
        "os.close(_fd)",
        "sys.stdin = open(0, 'r', encoding='utf-8', closefd=False)",
        "del _f, _fd",
        "exec(_code, {'__name__': '__main__', '__builtins__': __builtins__})",
    ])  # fmt: skip


class LocalChecker:
    name = "local"

    def validate(self, languages: set[str]) -> None:
        other = sorted(languages - LANGUAGES)
        if other:
            raise ConfigError(
                f"language {other[0]!r}: the local checker runs Python only; valid: "
                f"{', '.join(sorted(LANGUAGES))} (or use --checker piston)"
            )

    def execute(self, code: str, language: str, stdin: str, limits: RunLimits) -> Execution:
        marker = f"__fleetbench_compile_error_{secrets.token_hex(6)}__ "
        box = SandboxLimits(
            cpu_s=limits.time_s,
            wall_s=limits.time_s + 1.0,  # start-up is not the solution's time
            memory_bytes=max(limits.memory_mb, 64) * 2**20,
        )
        result = run_program(wrapper(code, stdin, marker), box)
        if result.returncode == _COMPILE_EXIT and marker in result.stderr:
            line = result.stderr.split(marker, 1)[1].splitlines()[0]
            return Execution("compile_error", detail=line[:300], duration_s=result.duration_s)
        if result.status == "passed":
            return Execution("exited", result.stdout, "exit code 0", result.duration_s)
        ending = _ENDINGS.get(result.status, "runtime_error")
        return Execution(ending, result.stdout, result.reason, result.duration_s)
