"""Credentials in a URL (``http://user:password@host``), kept out of every options dump.

Options are dumped into the store, job.json and results; a URL's user-info must not
be. Validation (of a catalogue entry's ``options`` and of a backend's URL options)
moves it into this process's environment under a name derived from the URL, and the
options keep ``http://***@host``; the backend puts the user-info back when it
connects (``with_userinfo``). The run's worker inherits the environment; the sandbox
does not (it builds its environment from an allowlist). A changed password is then
not a new run, and the error scrubber learns every form the credentials may be
echoed in (``userinfo_secrets``).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from typing import Any
from urllib.parse import unquote

from fleetbench.errors import BackendError

_USERINFO_PREFIX = "FLEETBENCH_URL_USERINFO_"
_URL_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^/?#@\s]*)@")
HIDDEN = "***"  # what options keep in place of the user-info


def _userinfo_variable(hidden_url: str) -> str:
    digest = hashlib.sha256(hidden_url.encode()).hexdigest()[:16].upper()
    return _USERINFO_PREFIX + digest


def hide_userinfo_in(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with the user-info of every top-level URL value set aside."""
    return {k: hide_userinfo(v) if isinstance(v, str) else v for k, v in options.items()}


def hide_userinfo(url: str | None) -> str | None:
    """For a validator of a URL option: ``http://user:pw@host`` becomes
    ``http://***@host``, and ``user:pw`` is set aside for ``with_userinfo``. Two URLs
    that differ only in their credentials cannot both be kept: a ValueError says so."""
    if url is None:
        return None
    match = _URL_USERINFO.match(url)
    if match is None or match.group(2) == HIDDEN:
        return url
    hidden = f"{match.group(1)}{HIDDEN}@{url[match.end() :]}"
    name, info = _userinfo_variable(hidden), match.group(2)
    kept = os.environ.get(name)
    if kept is not None and kept != info:
        raise ValueError(
            "two URLs differ only in their user:password@ part; use one set of "
            "credentials per address"
        )
    os.environ[name] = info
    return hidden


def with_userinfo(url: str) -> str:
    """``url`` with the user-info ``hide_userinfo`` set aside for it put back; a URL
    without hidden user-info as it is. BackendError if the credentials are not in
    this process (they are never stored: run from the plan that has them)."""
    match = _URL_USERINFO.match(url)
    if match is None or match.group(2) != HIDDEN:
        return url
    info = os.environ.get(_userinfo_variable(url))
    if not info:
        raise BackendError(
            f"the user:password@ of {url} is not known to this process (credentials "
            "are never stored): run from the plan or catalogue that gives them"
        )
    return f"{match.group(1)}{info}@{url[match.end() :]}"


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
