"""Checkers: where a stdin/stdout solution is run against one test.

A checker is anything with ``name``, ``validate(languages)`` and ``execute(code,
language, stdin, limits)``. ``local`` (the default) is fleetbench's own sandbox (Python
only); ``piston`` sends each test to a Piston v2 code-execution service. Both answer an
``Execution``: how the program ended, in a checker-neutral form that
``fleetbench.scoring.code_io`` turns into a verdict.

``validate`` is called once, before any work, with every language the solutions use:
a checker that cannot run one of them (or cannot be reached) raises ``ConfigError`` with
one line, so a sweep does not score half its files and then fail.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from fleetbench.errors import ConfigError

# How the program ended, before its output is compared with the expected one.
Ending = Literal["exited", "compile_error", "time_limit", "memory_limit", "runtime_error", "error"]
CHECKERS = ("local", "piston")


@dataclass(frozen=True)
class RunLimits:
    """Per-test limits; a checker applies them as closely as it can."""

    time_s: float = 2.0
    memory_mb: int = 512


@dataclass(frozen=True)
class Execution:
    ending: Ending
    stdout: str = ""
    detail: str = ""
    """One line: the exit code or signal, the last stderr line, the checker's message."""
    duration_s: float = 0.0


class Checker(Protocol):
    name: str

    def validate(self, languages: set[str]) -> None:
        """ConfigError (one line) unless every language can run here; called before work."""
        ...

    def execute(self, code: str, language: str, stdin: str, limits: RunLimits) -> Execution:
        """Run ``code`` once with ``stdin``; an unreachable service raises ConfigError."""
        ...


def make_checker(name: str, endpoint: str | None = None) -> Checker:
    """The checker ``name`` (``local`` or ``piston``); ``endpoint`` only for piston."""
    if name == "local":
        if endpoint:
            raise ConfigError("--endpoint: only the piston checker takes an endpoint")
        from fleetbench.sandbox.checkers.local import LocalChecker

        return LocalChecker()
    if name == "piston":
        from fleetbench.sandbox.checkers.piston import DEFAULT_ENDPOINT, PistonChecker

        return PistonChecker(endpoint or DEFAULT_ENDPOINT)
    raise ConfigError(f"--checker: unknown checker {name!r}; valid: {', '.join(CHECKERS)}")


__all__ = ["CHECKERS", "Checker", "Ending", "Execution", "RunLimits", "make_checker"]
