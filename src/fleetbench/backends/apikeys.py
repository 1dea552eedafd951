"""Credentials never live in options, so a dumped plan, job.json or the store holds none.

``api_key_env`` names the environment variable that holds an API key; the key itself
never appears in options. A value that is not a variable name (a pasted key, most
likely) is replaced before anything can echo it, in a validation message, a dumped
plan or the store; the backend's preflight then explains with ``not_a_name_problem``.
A URL's ``user:password@`` is set aside the same way (``hide_userinfo``).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from typing import Any
from urllib.parse import unquote

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


# -- credentials in a URL (``http://user:password@host``) ------------------------------
#
# Options are dumped into the store, job.json and results; a URL's user-info must not
# be. Validation moves it into this process's environment (which the run's worker and
# nothing else inherits: the sandbox builds its environment from an allowlist) under a
# name derived from the bare URL, and the options keep only the bare URL; the backend
# puts the user-info back when it connects. Changing the password is then not a new run.

_USERINFO_PREFIX = "FLEETBENCH_URL_USERINFO_"
_URL_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^/?#@\s]*)@")


def _userinfo_variable(bare_url: str) -> str:
    digest = hashlib.sha256(bare_url.encode()).hexdigest()[:16].upper()
    return _USERINFO_PREFIX + digest


def hide_userinfo(url: str | None) -> str | None:
    """For an ``after`` validator of a URL option: the URL without ``user:password@``,
    which is set aside for ``with_userinfo``. Two URLs that differ only in their
    credentials cannot both be kept: a ValueError says so."""
    if url is None:
        return None
    match = _URL_USERINFO.match(url)
    if match is None:
        return url
    bare = match.group(1) + url[match.end() :]
    name, info = _userinfo_variable(bare), match.group(2)
    kept = os.environ.get(name)
    if kept is not None and kept != info:
        raise ValueError(
            "two URLs differ only in their user:password@ part; use one set of "
            "credentials per address"
        )
    os.environ[name] = info
    return bare


def with_userinfo(url: str) -> str:
    """``url`` with the user-info ``hide_userinfo`` set aside for it, if any."""
    info = os.environ.get(_userinfo_variable(url))
    scheme, sep, rest = url.partition("://")
    return f"{scheme}://{info}@{rest}" if info and sep else url


def userinfo_secrets(url: str) -> tuple[str, ...]:
    """The forms in which a URL's credentials may be echoed back: the user-info as
    written, its password (percent-decoded too) and the Basic-auth header value."""
    match = _URL_USERINFO.match(url)
    if match is None or not match.group(2):
        return ()
    info = match.group(2)
    user, _, password = info.partition(":")
    decoded = f"{unquote(user)}:{unquote(password)}"
    forms = {info, decoded, base64.b64encode(decoded.encode()).decode()}
    forms.update(p for p in (password, unquote(password)) if p)
    return tuple(sorted(forms, key=len, reverse=True))  # the longest first
