"""What a repository task changed: a unified diff of the workspace against the starting
repo, and its statistics (files modified, lines added and removed).

Lines are counted from ``difflib``'s opcodes (the same matching the unified diff shows),
so a changed line counts once as removed and once as added. A file that is not UTF-8
text counts as modified with no lines. Caches that running code leaves behind
(``__pycache__``, ``.pytest_cache``) are not the model's change and are skipped.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path

SKIPPED_DIRS = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"})
DIFF_CAP = 20_000  # characters of the stored diff
NO_NEWLINE = "\n\\ No newline at end of file\n"


@dataclass(frozen=True)
class DiffStats:
    files_modified: int  # changed, added or deleted
    lines_added: int
    lines_removed: int
    diff: str  # unified, at most ``cap`` characters
    diff_truncated: bool


def tree_files(root: Path) -> dict[str, bytes]:
    """Relative path -> bytes of every regular file under ``root`` (links not followed)."""
    out: dict[str, bytes] = {}
    for current, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
        for name in sorted(files):
            path = Path(current, name)
            if path.is_file() and not path.is_symlink():
                out[path.relative_to(root).as_posix()] = path.read_bytes()
    return out


def _lines(data: bytes | None) -> list[str] | None:
    if data is None:
        return []
    try:
        return data.decode("utf-8").splitlines(keepends=True)
    except UnicodeDecodeError:
        return None


def diff_trees(before: Path, after: Path, cap: int = DIFF_CAP) -> DiffStats:
    """Compare two trees (the starting repo, the workspace)."""
    old, new = tree_files(before), tree_files(after)
    modified = added = removed = 0
    chunks: list[str] = []
    for rel in sorted(old.keys() | new.keys()):
        a, b = old.get(rel), new.get(rel)
        if a == b:
            continue
        modified += 1
        a_lines, b_lines = _lines(a), _lines(b)
        if a_lines is None or b_lines is None:
            chunks.append(f"Binary files a/{rel} and b/{rel} differ\n")
            continue
        matcher = difflib.SequenceMatcher(None, a_lines, b_lines, autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag in ("replace", "delete"):
                removed += i2 - i1
            if tag in ("replace", "insert"):
                added += j2 - j1
        src = f"a/{rel}" if a is not None else "/dev/null"
        dst = f"b/{rel}" if b is not None else "/dev/null"
        for line in difflib.unified_diff(a_lines, b_lines, src, dst):
            chunks.append(
                line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
            )
    text = "".join(chunks)
    return DiffStats(modified, added, removed, text[:cap], len(text) > cap)
