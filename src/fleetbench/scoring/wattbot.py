"""The WattBot 2025 score, computed as the reference computes it, quirks included.

The reference is ``scripts/score.py`` of the public KohakuRAG_UI project (the score the
WattBot 2025 benchmarking guide names). Every rule below is the reference's own; the code
follows its steps in the same order, so the four numbers agree (to rounding) on any pair of
files the reference accepts.

* **Reading** (scoring/pandas_csv.py): both files as ``pandas.read_csv`` reads them with its
  defaults, the scored columns then turned into strings. Cells in pandas' default NA list
  (``""``, ``NA``, ``N/A``, ``n/a``, ``NaN``, ``nan``, ``null``, ``None``, ``#N/A``,
  ``<NA>``, ...) become the string ``nan``, which is **not blank**; column types are inferred
  (``007`` in an all-integer column is ``7``; ``5`` in a column with a decimal or a missing
  value is ``5.0``). Header names must match exactly.
* **Join**: rows are paired on the ``id`` strings, not trimmed (an inner join; an id that
  appears more than once pairs every copy with every copy, as pandas' join does).
* **blank**: a value that, trimmed and lower-cased, is ``""``, ``na``, ``n/a``, ``is_blank``
  or starts with ``unable to answer with confidence based on the provided documents``.
* **normalisation** of the submitted ``answer_value`` (never the truth), in this order, on
  the trimmed value: a blank value stays as it is; ``true``/``yes`` -> ``1``,
  ``false``/``no`` -> ``0``; when the value with *all* commas removed is a number for
  Python's ``float()``, that is the value (``1,3`` -> ``13``); ONE leading hedge is dropped
  (``more than``, ``about``, ``up to``, ... followed by whitespace, or one of ``~ ≈ > <``),
  then the commas again; a number with a K/M/B/T suffix, whitespace allowed before it
  (``2.51 M``), becomes the float product written without ``.0`` when whole; a range
  ``a-b`` (hyphen, en or em dash) / ``a to b`` / ``from a to b`` whose ends are plain numbers
  (digits and dots, optional minus) becomes ``[lo,hi]``; anything else is kept.
* **value correctness** (0 or 1); a blank truth is always correct. A truth in ``[...]`` is a
  list (JSON after replacing ``'`` by ``"``, else the text between the brackets split on
  commas; items that ``float()`` reads are numbers, the rest lower-cased text), one in
  ``{...}`` a sorted set of lower-cased terms; the answer is parsed the same way. Two lists:
  all-numeric ones match pairwise after sorting within ``math.isclose(rel_tol=1e-3,
  abs_tol=1e-3)``, else their sorted ``str()`` forms must be equal. A two-number list truth
  and an answer that is not a list: ``lo - 0.001 <= x <= hi + 0.001``. Any other list truth
  against a non-list answer: wrong. Otherwise two values ``float()`` reads match within the
  isclose tolerance, else by trimmed case-insensitive equality.
* **ref_id**: a value starting with ``[`` is parsed as JSON after replacing ``'`` by ``"``
  (items trimmed, lower-cased; ``null`` is the id ``""``); when that fails, or for any other
  value, the whole trimmed lower-cased value is one id (``[chung2025]`` is the id
  ``[chung2025]``); empty means no ids. ref score = Jaccard (both empty -> 1, one empty -> 0).
* **NA recall**: share of blank-truth pairs whose submitted answer is blank (1.0 if none).
* **overall** = 0.75 * mean value correctness + 0.15 * mean ref score + 0.10 * NA recall.
* Only a submission ``explanation`` that is whitespace is an error (an empty cell reads as
  ``nan``, which passes); no id in common is an error.

Where fleetbench is more lenient than the reference (the numbers are unaffected):
``answer_unit`` (weight 0) is not required in either file, nor the solution's evidence-flag
columns (``Quote``, ``Table``, ``Figure``, ``Math``, ``is_NA``) the reference needs for its
extra printout; a result the reference would crash on (a K/M/B/T or range number beyond
1.8e308) is written ``inf``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from fleetbench.errors import UserError
from fleetbench.scoring import pandas_csv
from fleetbench.scoring.pandas_csv import NAN

WEIGHTS = {"value": 0.75, "ref": 0.15, "na": 0.10}
TOL = 1e-3
SOLUTION_COLUMNS = ("id", "answer_value", "ref_id")
SUBMISSION_COLUMNS = ("id", "answer_value", "ref_id", "explanation")
BLANK = "is_blank"
MAX_LISTED = 10  # cells or ids named in one warning

_BLANK_WORDS = {"", "na", "n/a", "is_blank"}
_UNABLE = "unable to answer with confidence based on the provided documents"
HEDGES = (
    "more than", "less than", "greater than", "fewer than", "approximately", "about", "around",
    "over", "under", "nearly", "roughly", "up to", "at least", "at most",
)  # fmt: skip
_HEDGE_WORDS = "|".join(h.replace(" ", r"\s+") for h in HEDGES)
_HEDGE = re.compile(rf"^(?:(?:{_HEDGE_WORDS})\s+|[~\u2248><]\s*)", re.IGNORECASE)
_MAGNITUDE = {"k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}
_MAG = re.compile(r"^(-?\d+(?:\.\d+)?)\s*([KkMmBbTt])$")
_RANGE = re.compile(
    r"^(?:from\s+)?(-?[\d.]+)\s*(?:[-\u2013\u2014]|to)\s*(-?[\d.]+)$", re.IGNORECASE
)


class ScoreInputError(UserError):
    """A solution or submission file that cannot be scored (one line, names the file)."""


def is_blank(value: str) -> bool:
    text = value.strip().lower()
    return text in _BLANK_WORDS or text.startswith(_UNABLE)


def _float(text: str) -> float | None:
    """``float(text)`` (Python's reading: whitespace, ``_``, ``inf``, ``nan`` allowed)."""
    try:
        return float(text)
    except ValueError:
        return None


def _fmt(number: float) -> str:
    if math.isfinite(number) and number == int(number):
        return str(int(number))
    return str(number)


def _without_commas(text: str) -> str:
    bare = text.replace(",", "")
    return bare if _float(bare) is not None else text


def _reference_value(raw: str) -> str:
    """The reference's normalisation of a submitted answer_value (blank stays as written)."""
    text = raw.strip()
    if is_blank(text):
        return text
    low = text.lower()
    if low in ("true", "yes"):
        return "1"
    if low in ("false", "no"):
        return "0"
    text = _without_commas(text)
    if hedge := _HEDGE.match(text):
        text = _without_commas(text[hedge.end() :].strip())
    if mag := _MAG.match(text):
        return _fmt(float(mag.group(1)) * _MAGNITUDE[mag.group(2).lower()])
    if span := _RANGE.match(text):
        a, b = _float(span.group(1)), _float(span.group(2))
        if a is not None and b is not None:
            lo, hi = (a, b) if a <= b else (b, a)
            return f"[{_fmt(lo)},{_fmt(hi)}]"
    return text


def normalise(value: str) -> str:
    """The submitted answer_value as it is compared; a blank one is shown as ``is_blank``
    (a blank answer is wrong against any non-blank truth whichever way it is written)."""
    return BLANK if is_blank(value) else _reference_value(value)


def _text(item: Any) -> str:
    return "" if item is None else str(item)


def parse_list(value: str) -> list[float | str] | None:
    """A ``[...]`` value as a list, a ``{...}`` value as a sorted set of terms, else None."""
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):
        try:
            items = json.loads(text.replace("'", '"'))
        except Exception:  # the reference falls back on any failure (deep nesting too)
            items = [part.strip() for part in text[1:-1].split(",")]
        out: list[float | str] = []
        for item in items:
            part = _text(item).strip()
            number = _float(part)
            out.append(part.lower() if number is None else number)
        return out
    if text.startswith("{") and text.endswith("}"):
        return sorted({t.strip().lower() for t in text[1:-1].split(",") if t.strip()})
    return None


def _lists_match(truth: list[float | str], answer: list[float | str]) -> bool:
    if all(isinstance(x, float) for x in truth) and all(isinstance(x, float) for x in answer):
        a = sorted(float(x) for x in truth)
        b = sorted(float(x) for x in answer)
        if len(a) != len(b):
            return False
        return all(math.isclose(x, y, rel_tol=TOL, abs_tol=TOL) for x, y in zip(a, b, strict=True))
    return sorted(_text(x).strip().lower() for x in truth) == sorted(
        _text(x).strip().lower() for x in answer
    )


def value_correct(truth: str, answer: str) -> bool:
    """Whether the submitted ``answer`` (raw; normalised here) matches ``truth``."""
    if is_blank(truth):
        return True
    value = _reference_value(answer)
    expected, given = parse_list(truth), parse_list(value)
    if expected is not None:
        if given is not None:
            return _lists_match(expected, given)
        if len(expected) == 2 and all(isinstance(x, float) for x in expected):
            lo, hi = sorted(float(x) for x in expected)
            number = _float(value)
            return number is not None and (lo - TOL) <= number <= (hi + TOL)
        return False
    a, b = _float(truth), _float(value)
    if a is not None and b is not None:
        return math.isclose(a, b, rel_tol=TOL, abs_tol=TOL)
    return truth.strip().lower() == value.strip().lower()


def parse_ref_ids(value: str) -> set[str]:
    text = value.strip()
    if not text:
        return set()
    if text.startswith("["):
        try:
            return {_text(item).strip().lower() for item in json.loads(text.replace("'", '"'))}
        except Exception:  # the reference falls back on any failure
            pass
    return {text.lower()}


def jaccard(a: set[str], b: set[str]) -> float:
    if not a and not b:
        return 1.0
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


@dataclass(frozen=True)
class QuestionScore:
    id: str
    truth_value: str
    answer_value: str
    normalised_value: str
    truth_blank: bool
    answer_blank: bool
    value_correct: bool
    truth_ref_ids: list[str]
    answer_ref_ids: list[str]
    ref_score: float


@dataclass(frozen=True)
class WattBotScore:
    overall: float
    value_accuracy: float
    ref_overlap: float
    na_recall: float
    n_matched: int
    n_solution: int
    n_submission: int
    n_blank_truth: int
    n_blank_truth_answered_blank: int
    questions: list[QuestionScore] = field(repr=False)
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The components, counts and warnings (everything but the per-question details)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "questions"}

    def details(self) -> list[dict[str, Any]]:
        return [asdict(q) for q in self.questions]


def score_question(qid: str, truth: Mapping[str, str], answer: Mapping[str, str]) -> QuestionScore:
    """One pair of rows, each holding strings as the reference reads them."""
    truth_refs = parse_ref_ids(truth["ref_id"])
    answer_refs = parse_ref_ids(answer["ref_id"])
    return QuestionScore(
        id=qid,
        truth_value=truth["answer_value"],
        answer_value=answer["answer_value"],
        normalised_value=normalise(answer["answer_value"]),
        truth_blank=is_blank(truth["answer_value"]),
        answer_blank=is_blank(answer["answer_value"]),
        value_correct=value_correct(truth["answer_value"], answer["answer_value"]),
        truth_ref_ids=sorted(truth_refs),
        answer_ref_ids=sorted(answer_refs),
        ref_score=jaccard(truth_refs, answer_refs),
    )


def _check_columns(name: str, columns: Sequence[str], required: tuple[str, ...]) -> None:
    if missing := [c for c in required if c not in columns]:
        near = [repr(c) for c in columns if c.strip() in missing]
        hint = f" (found {', '.join(near)}: names must match exactly)" if near else ""
        raise ScoreInputError(
            f"{name}: missing column(s) {', '.join(missing)}; required: {', '.join(required)}{hint}"
        )


def _rows(
    rows: Iterable[Mapping[str, str | None]],
    name: str,
    required: tuple[str, ...],
    lines: Sequence[int] | None,
) -> list[dict[str, str]]:
    """The rows' required cells (None reads as ``nan``), after checking columns and (for
    submissions) that no explanation is only whitespace."""
    out: list[dict[str, str]] = []
    for number, row in enumerate(rows, start=1):
        if number == 1:
            _check_columns(name, list(row.keys()), required)
        clean = {c: NAN if row.get(c) is None else str(row.get(c)) for c in required}
        if "explanation" in required and not clean["explanation"].strip():
            where = f"{name}:{lines[number - 1]}" if lines else f"{name}: row {number}"
            raise ScoreInputError(
                f"{where}: explanation: only whitespace (id {clean['id']!r}); every "
                "submission row needs a non-empty explanation"
            )
        out.append(clean)
    if not out:
        raise ScoreInputError(f"{name}: no data rows")
    return out


def _duplicates(name: str, rows: list[dict[str, str]]) -> list[str]:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["id"]] = counts.get(row["id"], 0) + 1
    repeated = [f"{qid!r} x{n}" for qid, n in counts.items() if n > 1]
    if not repeated:
        return []
    more = f" and {len(repeated) - MAX_LISTED} more" if len(repeated) > MAX_LISTED else ""
    return [
        f"{name}: duplicate id(s) {', '.join(repeated[:MAX_LISTED])}{more}: as in the "
        "reference's join, every copy is paired with every copy in the other file"
    ]


def combine(
    value_correct: Sequence[float],
    ref_scores: Sequence[float],
    blank_truth_recalled: Sequence[bool],
) -> tuple[float, float, float, float]:
    """(overall, value accuracy, ref overlap, NA recall) from per-question figures;
    ``blank_truth_recalled`` has one flag per truly-blank question: answered blank?"""
    n = len(value_correct)
    value = sum(value_correct) / n
    ref = math.fsum(ref_scores) / n
    na = sum(blank_truth_recalled) / len(blank_truth_recalled) if blank_truth_recalled else 1.0
    return WEIGHTS["value"] * value + WEIGHTS["ref"] * ref + WEIGHTS["na"] * na, value, ref, na


def score_frames(
    solution_rows: Iterable[Mapping[str, str | None]],
    submission_rows: Iterable[Mapping[str, str | None]],
    *,
    solution_name: str = "solution",
    submission_name: str = "submission",
    submission_lines: Sequence[int] | None = None,
) -> WattBotScore:
    """Score rows of strings as the reference sees them (after ``read_csv`` and
    ``astype(str)``; ``score_files`` reads files that way). Errors name data rows from 1,
    or the submission's file lines when ``submission_lines`` is given."""
    solution = _rows(solution_rows, solution_name, SOLUTION_COLUMNS, None)
    submission = _rows(submission_rows, submission_name, SUBMISSION_COLUMNS, submission_lines)
    by_id: dict[str, list[dict[str, str]]] = {}
    for row in submission:
        by_id.setdefault(row["id"], []).append(row)
    pairs = [(truth, answer) for truth in solution for answer in by_id.get(truth["id"], [])]
    if not pairs:
        raise ScoreInputError(
            f"{submission_name}: none of its {len(by_id)} id(s) matches one of the "
            f"{len({r['id'] for r in solution})} id(s) in {solution_name}"
        )
    questions = [score_question(truth["id"], truth, answer) for truth, answer in pairs]
    blank_truth = [q for q in questions if q.truth_blank]
    overall, value, ref, na = combine(
        [q.value_correct for q in questions],
        [q.ref_score for q in questions],
        [q.answer_blank for q in blank_truth],
    )
    return WattBotScore(
        overall=overall,
        value_accuracy=value,
        ref_overlap=ref,
        na_recall=na,
        n_matched=len(questions),
        n_solution=len(solution),
        n_submission=len(submission),
        n_blank_truth=len(blank_truth),
        n_blank_truth_answered_blank=sum(q.answer_blank for q in blank_truth),
        questions=questions,
        warnings=_duplicates(solution_name, solution) + _duplicates(submission_name, submission),
    )


@dataclass(frozen=True)
class _Read:
    rows: list[dict[str, str]]
    lines: list[int]
    warnings: list[str]


def _read(path: Path, required: tuple[str, ...]) -> _Read:
    """A file's required columns as the reference reads them, and the NA-cell warning."""
    try:
        table = pandas_csv.read(path)
    except (OSError, UnicodeDecodeError, pandas_csv.CsvReadError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ScoreInputError(f"{path}: cannot read: {reason}") from None
    _check_columns(str(path), table.header, required)
    columns = {name: table.column(name) for name in required}
    rows = [{name: col.values[i] for name, col in columns.items()} for i in range(len(table))]
    cells = [
        f"line {table.lines[i]} (id {rows[i]['id']!r}) {name} {table.cell(i, name)!r}"
        for i in range(len(table))
        for name, col in columns.items()
        if col.na[i]
    ]
    warnings = []
    if table.index_fields:
        warnings.append(
            f"{path}: the first data row has {table.index_fields} field(s) more than the "
            f"header, so pandas (and the reference) takes the first {table.index_fields} "
            "field(s) of every row as its index and shifts the columns; scored that way"
        )
    if cells:
        more = f" and {len(cells) - MAX_LISTED} more" if len(cells) > MAX_LISTED else ""
        warnings.append(
            f"{path}: {len(cells)} cell(s) pandas reads as missing, scored as the text 'nan' "
            f"(not blank: write is_blank for an abstention): {'; '.join(cells[:MAX_LISTED])}"
            f"{more}"
        )
    return _Read(rows, table.lines, warnings)


def score_files(solution: Path, submission: Path) -> WattBotScore:
    """Score two Kaggle-format CSV files (see the module docstring for every rule)."""
    truth, answers = _read(solution, SOLUTION_COLUMNS), _read(submission, SUBMISSION_COLUMNS)
    score = score_frames(
        truth.rows,
        answers.rows,
        solution_name=str(solution),
        submission_name=str(submission),
        submission_lines=answers.lines,
    )
    return replace(score, warnings=truth.warnings + answers.warnings + score.warnings)
