"""Ollama discovery: the models pulled into a local Ollama, as catalogue entries.

``GET /api/tags`` lists the installed models; ``POST /api/show`` adds what each one is
(parameter count, quantisation, family, context length). Each becomes an entry for
the ``openai`` backend with the ``ollama`` preset pointed at the same server, so a
discovered model runs like any OpenAI-compatible one (TTFT and inter-token latency
from the stream). What Ollama reports goes into ``details`` (informational: it does
not change a run's identity, so re-discovering after ``ollama pull`` of the same
model resumes its runs).

Only the standard library is used: discovery must work before any extra is installed.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from typing import Any

from fleetbench.catalog.spec import ModelSpec
from fleetbench.errors import CatalogError
from fleetbench.safeparse import loads_json
from fleetbench.urlauth import hide_userinfo

DEFAULT_URL = "http://127.0.0.1:11434"
DEFAULT_PORT = 11434
TIMEOUT_S = 10.0
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([KMBT])\s*$", re.IGNORECASE)
_SCALE = {"K": 1e-6, "M": 1e-3, "B": 1.0, "T": 1e3}


def ollama_url(value: str | None = None) -> str:
    """The server's root URL: ``value``, else ``OLLAMA_HOST``, else the local default.

    Accepts what ``OLLAMA_HOST`` accepts (``host``, ``host:port``, a URL) and a URL
    that ends in ``/v1`` or ``/api``; ``0.0.0.0`` (a listen address) means loopback.
    """
    raw = (value or os.environ.get("OLLAMA_HOST") or DEFAULT_URL).strip().rstrip("/")
    bare = "://" not in raw
    if bare:
        raw = f"http://{raw}"
    for suffix in ("/v1", "/api"):
        if raw.endswith(suffix):
            raw = raw[: -len(suffix)]
    scheme, _, rest = raw.partition("://")
    host, slash, path = rest.partition("/")
    # As Ollama reads OLLAMA_HOST: a bare host gets port 11434, a URL its scheme's port.
    if bare and not re.search(r":\d+$", host) and not host.endswith("]"):
        host = f"{host}:{DEFAULT_PORT}"
    if host.startswith("0.0.0.0:"):  # a listen address, reached on the loopback
        host = "127.0.0.1:" + host.split(":", 1)[1]
    return f"{scheme}://{host}{slash}{path}"


def discover_ollama(
    url: str | None = None, timeout_s: float = TIMEOUT_S, native: bool = False
) -> list[ModelSpec]:
    """One entry per installed model, in the order ``/api/tags`` lists them; ``native``
    runs them on Ollama's own /api/chat (``api: native``: the server's load,
    prompt-eval and eval durations are recorded)."""
    root = ollama_url(url)
    shown = hide_userinfo(root) or root
    tags = _call(root, shown, "/api/tags", None, timeout_s)
    models = tags.get("models") if isinstance(tags, dict) else None
    if not isinstance(models, list):
        raise CatalogError(f"Ollama at {shown}: /api/tags: expected {{'models': [...]}}")
    entries: list[ModelSpec] = []
    for item in models:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        name = item["name"]
        show = _call(root, shown, "/api/show", {"model": name}, timeout_s)
        entry = _entry(root, shown, name, item, show if isinstance(show, dict) else {})
        if native:
            entry = entry.model_copy(update={"options": {**entry.options, "api": "native"}})
        entries.append(entry)
    return entries


def _call(root: str, shown: str, path: str, body: Any, timeout_s: float) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        root + path, data=data, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as reply:
            text = reply.read(16 * 1024 * 1024).decode("utf-8", errors="replace")
    except urllib.error.HTTPError as exc:
        raise CatalogError(
            f"Ollama at {shown}: {path} answered HTTP {exc.code}; is this an Ollama server?"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CatalogError(
            f"Ollama is not reachable at {shown} ({reason}); start it with `ollama serve`, "
            "or give its URL (--ollama URL, OLLAMA_HOST, or catalog: {ollama: URL})"
        ) from None
    try:
        return loads_json(text)
    except (json.JSONDecodeError, ValueError):
        raise CatalogError(f"Ollama at {shown}: {path}: the reply is not JSON") from None


def params_b(size: Any) -> float | None:
    """Ollama's ``parameter_size`` (``"8.0B"``, ``"137M"``) in billions, or None."""
    match = _SIZE.match(size) if isinstance(size, str) else None
    if match is None:
        return None
    return round(float(match.group(1)) * _SCALE[match.group(2).upper()], 6) or None


def _context_length(model_info: Any) -> int | None:
    if not isinstance(model_info, dict):
        return None
    for key, value in model_info.items():
        if str(key).endswith(".context_length") and isinstance(value, int):
            return value
    return None


def _entry(
    root: str, shown: str, name: str, tag: dict[str, Any], show: dict[str, Any]
) -> ModelSpec:
    details = {**(tag.get("details") or {}), **(show.get("details") or {})}
    facts: dict[str, Any] = {
        "server": "ollama",
        "ollama_family": details.get("family"),
        "parameter_size": details.get("parameter_size"),
        "quantization": details.get("quantization_level"),
        "format": details.get("format"),
        "context_length": _context_length(show.get("model_info")),
        "size_bytes": tag.get("size") if isinstance(tag.get("size"), int) else None,
        "digest": tag.get("digest") if isinstance(tag.get("digest"), str) else None,
    }
    return ModelSpec(
        name=name,
        id=name,
        backend="openai",
        options={"preset": "ollama", "base_url": f"{root}/v1", "model": name},
        params_b=params_b(details.get("parameter_size")),
        details={k: v for k, v in facts.items() if v is not None},
        source=f"ollama {shown}: {name}",
    )
