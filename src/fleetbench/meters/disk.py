"""Model size on disk: the weights file, or the whole model folder, a backend loaded.

Read from the ``LoadInfo`` a backend recorded with each attempt (``details_json``):
its ``model_size_bytes`` when the backend measured it, else the size of
``model_path`` when that is a file or folder on this machine. A remote model (hosted
API, an HTTP server fleetbench did not start from a file) has no size: ``None`` with
the reason why.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def disk_bytes(path: Path) -> int | None:
    """Bytes of a file, or of every file under a folder (symbolic links followed, as
    in a Hugging Face cache snapshot); ``None`` if the path does not exist."""
    if path.is_file():
        return path.stat().st_size
    if not path.is_dir():
        return None
    total = 0
    for root, _dirs, files in os.walk(path, followlinks=False):
        for name in files:
            try:
                total += (Path(root) / name).stat().st_size
            except OSError:  # a dangling link
                continue
    return total


def model_disk(details: Iterable[str | None]) -> tuple[int | None, str]:
    """(bytes, reason) from attempts' ``details_json``, newest attempt last; the reason
    is empty when the size is known."""
    infos = [_load(d) for d in details]
    loaded = [i for i in infos if i is not None]
    if not loaded:
        return None, "model not loaded (no attempt reached loading)"
    info = loaded[-1]
    size = info.get("model_size_bytes")
    if isinstance(size, int) and size >= 0:
        return size, ""
    raw = info.get("model_path")
    if not raw:
        return None, "the backend reports no model file (remote or server-side model)"
    path = Path(str(raw))
    if not path.is_absolute() and not path.exists():
        return None, f"not a local path: {raw} (remote or hub model)"
    size = disk_bytes(path)
    if size is None:
        return None, f"model path not found on this machine: {raw}"
    return size, ""


def _load(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
