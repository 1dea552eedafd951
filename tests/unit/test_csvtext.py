"""CSV made a column at a time (``csvtext``) is what ``csv.writer`` writes a row at a
time, whatever the columns hold: the master CSV against its former row-by-row writer."""

from __future__ import annotations

import csv
import io
import random
from typing import Any

import pytest

from fleetbench import csvtext
from fleetbench.report.master import MASTER_COLUMNS, format_cell, master_csv


def _row_by_row(summaries: list[dict[str, Any]]) -> str:
    """``master_results.csv`` as it was written before: ``csv.writer``, a row at a time."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(MASTER_COLUMNS)
    for summary in summaries:
        writer.writerow([format_cell(summary.get(col)) for col in MASTER_COLUMNS])
    return buf.getvalue()


class _Float(float):
    """A float subclass (as numpy's float64 is): ``format_cell`` writes it as a float."""


_VALUES: list[Any] = [
    None, 0, 1, -3, 4095, 4096, 2**63, True, False, 0.1, -0.0, 1e-7, 123456789.0,
    float("inf"), float("nan"), _Float(2.0 / 3), "plain", "a,b", 'say "hi"', "two\nlines",
    "cr\r", "", " lead", {"k": [1, 2]}, [0.5, "x"], b"by,tes",
]  # fmt: skip


def _summaries(count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        summary: dict[str, Any] = {}
        for k, col in enumerate(MASTER_COLUMNS):
            kind = (seed + k) % 4  # some columns of one type (the fast paths), some mixed
            if kind == 0:
                summary[col] = rng.random() * 10 ** rng.randint(-5, 9)
            elif kind == 1:
                summary[col] = rng.randint(0, 5000)
            elif kind == 2 and rng.random() < 0.8:
                summary[col] = rng.choice(_VALUES)
            # kind 3 (and some of 2): missing, an empty cell
        out.append(summary)
    return out


@pytest.mark.parametrize("quoting_left_to_csv", [False, True])
def test_master_csv_is_what_csv_writer_writes(
    monkeypatch: pytest.MonkeyPatch, quoting_left_to_csv: bool
) -> None:
    if quoting_left_to_csv:  # a Python whose ``csv`` quotes by rules ``csvtext`` does not know
        monkeypatch.setattr(csvtext, "_QUOTE", None)
    for seed in range(30):
        summaries = _summaries(1 + seed % 9, seed)
        assert master_csv(summaries) == _row_by_row(summaries)
    assert master_csv([]) == _row_by_row([])


def test_a_column_of_ints_with_a_bool_keeps_the_bool() -> None:
    """``str(True)`` is "True": a column of ints holding a bool is not written as 1."""
    assert list(csvtext.cells([0, True, 7], figures=True)) == ["0", "True", "7"]
    assert list(csvtext.cells([2**70, False], figures=True)) == [str(2**70), "False"]
    assert list(csvtext.cells([], figures=True)) == []
