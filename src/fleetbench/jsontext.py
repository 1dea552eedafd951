"""JSON text of the files a report writes for every run (summaries, stamps, caches):
through orjson, several times faster than ``json``, where a report over a fleet of
1,000 runs writes and reads tens of megabytes of it.

``dumps`` writes what ``json.dumps(value, default=str)`` means (keys that are not
strings as ``json`` writes them, anything else unknown as ``str``), compactly; values
orjson cannot write (integers past 64 bits) go through ``json``. NaN and infinities,
which are not JSON, are written as null.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS


def dumps(value: Any, sort_keys: bool = False) -> str:
    """``value`` as compact JSON text."""
    try:
        return orjson.dumps(
            value, default=str, option=_OPTIONS | (orjson.OPT_SORT_KEYS if sort_keys else 0)
        ).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value, default=str, sort_keys=sort_keys, separators=(",", ":"))


def loads(text: str | bytes) -> Any:
    """The value of JSON text (``ValueError`` if it is not JSON)."""
    return orjson.loads(text)


def pretty(value: Any, depth: int = 2, level: int = 0) -> str:
    """``json.dumps(value, indent=2, default=str)`` for the first ``depth`` levels of
    nesting, each value below on one line (``dumps``): ``summary.json`` lists each
    attempt, each figure of the summary on its own line. The indenting encoder of
    ``json`` is pure Python: 4 ms a run of 100 attempts, seconds at every report of a
    fleet after a round."""
    pad = "  " * (level + 1)
    if level < depth and isinstance(value, dict) and value:
        items = [f"{pad}{_key(k)}: {pretty(v, depth, level + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + "  " * level + "}"
    if level < depth and isinstance(value, (list, tuple)) and value:
        items = [pad + pretty(v, depth, level + 1) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + "  " * level + "]"
    return dumps(value)


def _key(key: Any) -> str:
    """A key as JSON text, as ``json`` writes it (``True`` -> ``"true"``, ``1`` -> ``"1"``)."""
    return dumps(key if isinstance(key, str) else dumps({key: 0})[2:-4])
