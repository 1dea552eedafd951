"""CSV text made a column at a time: what ``csv.writer`` writes a row at a time, byte
for byte, for the big tables (``samples.csv``; ``master_results.csv`` and the report's
comparison CSVs through ``report.master.records_csv``).

``csv`` looks every character of every cell up in the line terminator, 3.5 µs a row
of ``samples.csv``; a column of one type formats in one C-level ``map``, and a
column whose text holds no quoting character is used as it is. What is left is
mostly Python's float formatting. Figures (``figures``) are floats to 6 significant
digits, as ``report.master.format_cell`` writes them; other floats in full (``repr``).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from itertools import repeat
from typing import Any


def rows_text(columns: Sequence[Sequence[str]]) -> str:
    """The CSV lines (no header) of these columns of cells (``cells``), all as long."""
    if not columns or not columns[0]:
        return ""
    if _QUOTE is None:  # this ``csv`` quotes by other rules: it writes the rows itself
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(zip(*columns, strict=True))
        return buf.getvalue()
    return "\n".join(map(",".join, zip(*columns, strict=True))) + "\n"


def cells(column: Sequence[Any], figures: bool) -> Sequence[str]:
    """A column's values as ``csv`` writes them: None empty, the figures' floats to 6
    significant digits, other floats in full (``repr``), the rest ``str``, quoted where
    ``csv`` quotes (``_quoted``). A column of one type, as columns are, in one ``map``
    (numbers need no quotes); any other value by value."""
    if not column:
        return []
    kind = column[0].__class__
    try:  # each raises TypeError at a value of another type (None too)
        if kind is str:
            return _quoted(column, "".join(column))
        if kind is int and set(map(type, column)) == _INT:  # (no bools: str(True))
            if min(column) >= 0 and max(column) < len(_DECIMALS):
                return list(map(_DECIMALS.__getitem__, column))
            return list(map(int.__repr__, column))
        if kind is float and figures:
            return list(map(float.__format__, column, repeat(".6g")))
        if kind is float:
            return list(map(float.__repr__, column))
    except TypeError:
        pass
    if column.count(None) == len(column):  # (counting Nones among others is slower)
        return ("",) * len(column)
    texts = [_cell(value, figures) for value in column]
    return _quoted(texts, "".join(texts))


def _cell(value: Any, figure: bool) -> str:
    """One value as ``csv`` writes it, unquoted (``cells``)."""
    if value is None:
        return ""
    if isinstance(value, float):  # (``format_cell``'s test)
        return format(value, ".6g") if figure else repr(value)
    return value if value.__class__ is str else str(value)


def _quote_chars() -> str | None:
    """The characters that make this Python's ``csv`` quote a cell (the delimiter, the
    quote character, the line terminator's: whether ``\\r`` is one differs between
    versions), or None if it quotes by another rule than "a cell with one of them"."""

    def line(cells: list[str | None]) -> str:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(cells)
        return buf.getvalue()

    odd = ",\"\n\r\t\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029 \x00'\\;"
    chars = "".join(c for c in odd if line([f"a{c}b", "x"]) != f"a{c}b,x\n")
    probe: list[str | None] = [None, "", " a", "a ", '""x', *odd, odd + odd]
    plain = [cell or "" for cell in probe]
    ours = ['"' + c.replace('"', '""') + '"' if any(q in c for q in chars) else c for c in plain]
    return chars if chars[:2] == ',"' and line(probe) == ",".join(ours) + "\n" else None


_INT = {int}
# The text of the small ints (indices, rounds, most token counts), made once.
_DECIMALS = tuple(map(str, range(4096)))
# The characters ``csv`` quotes a cell for (None: ``rows_text`` leaves the quoting to it).
_QUOTE = _quote_chars()
_QUOTE_SEARCH = re.compile(f"[{re.escape(_QUOTE or ',')}]").search


def _quoted(cells: Sequence[str], joined: str) -> Sequence[str]:
    """``cells`` (``joined``: their text) quoted as ``csv`` quotes them: in double
    quotes, doubled inside, those with a ``_QUOTE`` character; most columns have none,
    which one search of their text says."""
    if _QUOTE is None or not any(c in joined for c in _QUOTE):
        return cells
    if "\0" not in joined and sum(map(str.__contains__, cells, repeat('"'))) == len(cells):
        # All quoted (JSON, as scores are): in one go, NUL standing between the cells.
        text = "\0".join(cells).replace('"', '""').replace("\0", '"\0"')
        return f'"{text}"'.split("\0")
    search, quote, quotes = _QUOTE_SEARCH, '"', '""'
    return [f'"{cell.replace(quote, quotes)}"' if search(cell) else cell for cell in cells]
