"""The exception tree.

    FleetbenchError            anything fleetbench raises on purpose
    ├── UserError              bad input from the user: printed as one line, exit code 2
    │   ├── PlanError          an invalid plan file (names file, line and field)
    │   ├── CatalogError       an invalid catalogue file (names file, row and field)
    │   └── ConfigError        an invalid option or combination of options
    ├── BackendError           a backend failed to load or generate
    │   └── BackendUnavailable an optional dependency or device is missing
    └── StoreError             the results store is unreadable or from a newer fleetbench

User-facing errors never carry a traceback: the CLI catches ``UserError`` and prints
``error: <message>``. Messages must never contain secrets.
"""

from __future__ import annotations


class FleetbenchError(Exception):
    """Base of every error fleetbench raises on purpose."""


class UserError(FleetbenchError):
    """Bad input: the CLI prints the message as one line and exits with code 2."""

    exit_code = 2


class PlanError(UserError):
    """An invalid plan file."""


class CatalogError(UserError):
    """An invalid catalogue file."""


class ConfigError(UserError):
    """An invalid option or combination of options."""


class BackendError(FleetbenchError):
    """A backend failed; ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class BackendUnavailable(BackendError):
    """A backend cannot run here (missing package or device); the message says how to fix it."""


class StoreError(UserError):
    """The results store cannot be used (corrupt, or written by a newer fleetbench)."""
