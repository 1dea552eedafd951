"""A CSV file read the way ``pandas.read_csv(path)`` reads it, then ``.astype(str)``.

The WattBot reference scorer reads both files with pandas' defaults and turns each scored
column into strings before comparing anything, so two cells only compare like the
reference compares them once they have gone through the same steps. pandas is not a
dependency of fleetbench; this module reproduces the steps with the ``csv`` module:

* Lines that are empty or hold only spaces and tabs are skipped (also before the header);
  the first remaining record is the header, whose names are kept exactly as written (a
  duplicated name: the first column keeps it, as pandas' renaming of the later ones does).
* A cell that is exactly one of pandas' default NA strings (``STR_NA_VALUES``: ``""``,
  ``NA``, ``N/A``, ``n/a``, ``NaN``, ``nan``, ``null``, ``None``, ``#N/A``, ``<NA>``, ...),
  quoted or not, and a field missing from a short row, are missing values, which
  ``astype(str)`` turns into the string ``nan``.
* Each column's type is inferred from all its cells, as pandas' C parser does (integers,
  else floats, else booleans, else text), and the strings are then what ``str()`` gives for
  that type: an integer column holds ``str(int)`` (``007`` -> ``7``), a float column
  ``str(float)`` (``5`` -> ``5.0`` once the column has a decimal or a missing value,
  ``1e5`` -> ``100000.0``), a boolean column ``True``/``False`` (any case of true/false),
  a text column the cells as written. Integers beyond 64 bits follow pandas' fallbacks.

Known limits, none of which changes a score except exactly at a tolerance boundary: float
literals are read as Python's ``float()`` reads them (pandas >= 3 does the same; pandas 2's
parser is one unit in the last place off for some literals of 17+ digits, and reads a literal
beyond +-1.8e308 as text where pandas 3 and this module read ``inf``); pandas' chunked type
inference for files of more than about 2**19 / (number of columns) rows is not reproduced;
a first data row with more fields than the header makes its extra leading fields, in every
row, pandas' row index (the columns shift; ``Table.index_fields`` says so). One pandas quirk is
not reproduced: after a blank line ended by a lone ``\\r`` (old Mac line ends), pandas drops
a comma that starts the next line.
"""

from __future__ import annotations

import csv
import io
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

# pandas/_libs/parsers.pyx STR_NA_VALUES (keep_default_na=True), unchanged since pandas 2.0.
STR_NA_VALUES = frozenset(
    ("-1.#IND", "1.#QNAN", "1.#IND", "-1.#QNAN", "#N/A N/A", "#N/A", "N/A", "n/a", "NA",
     "<NA>", "#NA", "NULL", "null", "NaN", "-NaN", "nan", "-nan", "", "None")
)  # fmt: skip
NAN = "nan"  # what astype(str) makes of a missing value

_WS = "[ \t\n\r\f\v]*"  # the C parser's isspace_ascii, allowed around numbers
_INT = re.compile(rf"{_WS}[+-]?[0-9]+{_WS}")
_FLOAT = re.compile(rf"{_WS}[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?{_WS}")
_INF = frozenset(("inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"))
_BOOL = {"true": "True", "false": "False"}
_INT64 = (-(2**63), 2**63 - 1)
_UINT64_MAX = 2**64 - 1


class CsvReadError(ValueError):
    """A file that cannot be read as pandas would read it (message: one line, no path)."""


def is_na(cell: str | None) -> bool:
    """Whether pandas reads ``cell`` (None: a field missing from a short row) as missing."""
    return cell is None or cell in STR_NA_VALUES


def as_read(cell: str) -> str:
    """One cell as the reference sees it, where the column's type does not matter."""
    return NAN if cell in STR_NA_VALUES else cell


@dataclass(frozen=True)
class Column:
    values: list[str]  # what astype(str) gives, one per data row
    na: list[bool]  # True where a missing value became "nan"


@dataclass(frozen=True)
class Table:
    header: list[str]
    lines: list[int]  # the physical line on which each data row starts (1-based)
    raw: list[list[str | None]]  # the cells as written; None: missing from a short row
    index_fields: int = 0  # leading fields pandas took as the row index (see parse)

    def __len__(self) -> int:
        return len(self.raw)

    def column(self, name: str) -> Column:
        """The column named exactly ``name`` (the first such; KeyError when absent)."""
        if name not in self.header:
            raise KeyError(name)
        i = self.header.index(name)
        return convert([row[i] for row in self.raw])

    def cell(self, row: int, name: str) -> str | None:
        """The cell as written (None: missing from a short row)."""
        return self.raw[row][self.header.index(name)]


def _float_like(cell: str) -> bool:
    return _FLOAT.fullmatch(cell) is not None or cell.lower() in _INF


def convert(cells: Sequence[str | None]) -> Column:
    """One column's cells as ``astype(str)`` gives them after pandas' type inference."""
    na = [is_na(c) for c in cells]
    present = [c for c in cells if not is_na(c) and c is not None]
    as_int = _integers(cells, na)
    if as_int is not None:
        return as_int
    typed: Callable[[str], str]
    if all(_float_like(c) for c in present):
        typed = _float_text
    elif all(c.lower() in _BOOL for c in present):
        typed = _bool
    else:
        typed = _same
    return Column([NAN if c is None or m else typed(c) for c, m in zip(cells, na, strict=True)], na)


def _float_text(cell: str) -> str:
    return str(float(cell))


def _bool(cell: str) -> str:
    return _BOOL[cell.lower()]


def _same(cell: str) -> str:
    return cell


def _integers(cells: Sequence[str | None], na: list[bool]) -> Column | None:
    """The column as pandas' int64 -> uint64 -> Python int attempts leave it, or None when
    it is not an integer column (the float, bool and text attempts follow)."""
    numbers: list[int | None] = []
    for cell, missing in zip(cells, na, strict=True):
        if missing or cell is None:
            numbers.append(None)
            continue
        if not _INT.fullmatch(cell):
            return None  # "Number is not int": on to float
        value = int(cell)
        if not _INT64[0] <= value <= _INT64[1]:
            return _beyond_int64(cells, na)
        numbers.append(value)
    if any(na):  # int64 cannot hold NaN: pandas upcasts to float64
        return Column([NAN if n is None else str(float(n)) for n in numbers], na)
    return Column([str(n) for n in numbers], na)


def _beyond_int64(cells: Sequence[str | None], na: list[bool]) -> Column | None:
    """pandas' uint64 attempt after an int64 overflow, and its fallbacks."""
    seen_negative = seen_uint = seen_na = False
    for cell, missing in zip(cells, na, strict=True):
        if missing or cell is None:
            seen_na = True
            continue
        if cell.lstrip(" \t\n\r\f\v").startswith("-"):
            seen_negative = True
            continue
        if not _INT.fullmatch(cell):
            return None  # "Number is not int": on to float
        value = int(cell)
        if value > _UINT64_MAX:
            return _python_ints(cells, na)
        seen_uint = seen_uint or value > _INT64[1]
    if seen_uint and (seen_negative or seen_na):
        # "cannot convert to a numerical dtype": kept as written, NA strings included
        return Column([c or "" for c in cells], [False] * len(cells))
    if seen_negative:
        return _python_ints(cells, na)
    return Column([str(int(c or "")) for c in cells], na)


def _python_ints(cells: Sequence[str | None], na: list[bool]) -> Column:
    """pandas' last integer attempt: ``int()`` on the UTF-8 bytes of every present cell."""
    values: list[str] = []
    for cell, missing in zip(cells, na, strict=True):
        if missing or cell is None:
            values.append(NAN)
            continue
        try:
            values.append(str(int(cell.encode())))  # pandas calls int() on the bytes
        except ValueError:
            return Column([c or "" for c in cells], [False] * len(cells))
    return Column(values, na)


class _Lines:
    """Lines handed to ``csv.reader``, remembering the last one (to spot blank lines)."""

    def __init__(self, text: str) -> None:
        self._lines = iter(io.StringIO(text, newline=""))
        self.last = ""

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        self.last = next(self._lines)
        return self.last


def _blank(line: str) -> bool:
    return line.rstrip("\r\n").strip(" \t") == ""


def parse(text: str) -> Table:
    """The header and data rows of CSV ``text`` (see the module docstring)."""
    csv.field_size_limit(max(csv.field_size_limit(), min(sys.maxsize, 2**31 - 1)))
    lines = _Lines(text)
    reader = csv.reader(lines)
    header: list[str] | None = None
    index_fields = 0
    starts: list[int] = []
    rows: list[list[str | None]] = []
    consumed = 0
    for record in reader:
        start, consumed = consumed + 1, reader.line_num
        if consumed == start and _blank(lines.last):
            continue  # pandas' skip_blank_lines (a quoted "" is a cell, not a blank line)
        if header is None:
            header = record
            continue
        if not rows:
            # pandas: a first data row longer than the header makes its extra leading
            # fields, in every row, the row index; the columns then shift
            index_fields = max(0, len(record) - len(header))
        if len(record) > len(header) + index_fields:
            raise CsvReadError(
                f"line {start}: {len(record)} fields, expected at most "
                f"{len(header) + index_fields} (as pandas, which rejects the file)"
            )
        cells: list[str | None] = [*record[index_fields:]]
        starts.append(start)
        rows.append([*cells, *([None] * (len(header) - len(cells)))])
    if header is None:
        raise CsvReadError("empty file, expected a CSV header row")
    if rows and _ends_in_quotes(text, starts[-1]):
        raise CsvReadError(f"line {starts[-1]}: a quoted field is not closed before the end")
    return Table(header=header, lines=starts, raw=rows, index_fields=index_fields)


def _ends_in_quotes(text: str, start: int) -> bool:
    """Whether the record starting on line ``start`` runs to the end of ``text`` inside a
    quoted field (``csv`` accepts that silently; pandas rejects the file)."""
    state = "start"
    for char in "".join(io.StringIO(text, newline="").readlines()[start - 1 :]):
        if state == "quoted":
            state = "quote?" if char == '"' else state
        elif char in ",\r\n":
            state = "start"
        elif state == "start" and char == '"':
            state = "quoted"
        elif state == "quote?" and char == '"':
            state = "quoted"  # a doubled quote inside the quoted field
        else:
            state = "field"  # quote marks inside an unquoted field are text
    return state == "quoted"


def read(path: Path) -> Table:
    """``path`` parsed (UTF-8, a byte-order mark allowed); OSError/UnicodeDecodeError and
    ``CsvReadError`` propagate for the caller to name the file."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        text = handle.read()
    try:
        return parse(text)
    except csv.Error as exc:
        raise CsvReadError(str(exc)) from None
