"""Credentials never live in options, so a dumped plan, job.json or the store holds none.

``api_key_env`` names the environment variable that holds an API key; the key itself
never appears in options. A value that is not a variable name (a pasted key, most
likely) is replaced before anything can echo it, in a validation message, a dumped
plan or the store; the backend's preflight then explains with ``not_a_name_problem``.
A URL's ``user:password@`` is set aside too (``fleetbench.urlauth``).
"""

from __future__ import annotations

import re
from typing import Any

NOT_A_NAME = "!not-a-variable-name"
_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def hide_non_name(value: Any) -> Any:
    """For a ``mode="before"`` validator of ``api_key_env``."""
    if isinstance(value, str) and value and not _VAR_NAME.match(value):
        return NOT_A_NAME
    return value


def not_a_name_problem(example: str) -> str:
    return (
        "options.api_key_env must be the NAME of an environment variable "
        f"(letters, digits, _), such as {example}, never the key itself"
    )
