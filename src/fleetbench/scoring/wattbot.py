"""The WattBot 2025 score (issue 5, item 3), computed exactly as specified.

Solution and submission are joined on ``id`` (inner join). Per question:

* **blank**: a value that, trimmed and lower-cased, is ``""``, ``na``, ``n/a``, ``is_blank``
  or starts with ``unable to answer with confidence based on the provided documents``.
* **normalisation** of the submitted ``answer_value`` (only the submission; the truth is
  used as written), in this order: blank stays blank (shown as ``is_blank``); ``true``/``yes``
  → ``1``, ``false``/``no`` → ``0`` (the whole value, case-insensitive); ONE leading hedge
  dropped (a listed word or phrase followed by whitespace, or one of ``~ ≈ > <``;
  case-insensitive; ``~about 5`` keeps ``about 5``); then a number (thousands commas
  dropped, optional K/M/B/T suffix scaling by 1e3/1e6/1e9/1e12) becomes its plain decimal
  form, and a range ``a-b`` (hyphen, en or em dash) or ``a to b``, optionally after ``from``,
  becomes ``[lo,hi]`` (sorted); anything else is kept (hedge dropped, trimmed).
* **value correctness** (0 or 1); a blank truth is always correct. Otherwise a blank answer
  is wrong, and for a truth that, trimmed, starts with
  ``[``: a list (JSON, else the text between the brackets split on commas; numeric items as
  numbers). A list answer matches when it has the same items in any order: all-numeric
  lists pairwise (sorted) within tolerance, else case-insensitive strings. A single number
  matches a two-number truth when it lies in [lo - tol, hi + tol]. Else wrong.
  ``{``: a set of lower-cased terms; the answer (braces or brackets stripped, comma-split)
  matches when its set of lower-cased terms is equal.
  otherwise: two numbers match when ``math.isclose(a, b, rel_tol=1e-3, abs_tol=1e-3)``
  (either tolerance suffices); anything else by trimmed case-insensitive equality.
* **ref_id**: a value starting with ``[`` is a list (JSON, else a Python literal so single
  quotes work, else comma-split), items trimmed and lower-cased; otherwise the whole trimmed
  lower-cased value is one id; empty means no ids. ref score = Jaccard (both empty → 1, one
  empty → 0).
* **NA recall**: share of blank-truth questions whose submitted answer is blank (1.0 if none).
* **overall** = 0.75 * mean value correctness + 0.15 * mean ref score + 0.10 * NA recall.

Readings chosen where the text leaves room (each one is tested):

* Thousands commas: only groups of three digits (``1,234,567.5``), inside a number anywhere
  the number rule applies, so ``more than 1,000`` and ``1,000-2,000`` are numbers too;
  ``12,34`` is left as text. A truth number may also carry thousands commas.
* Suffixes K/M/B/T are accepted in either case and must touch the number (``1.5k``, not
  ``1.5 k``). ``tol`` for ranges is the same isclose tolerance against each bound.
* ``is_blank`` in ``ref_id`` is not empty: it is the single id ``is_blank`` (the rule only
  treats the empty string as "no ids"); the dataset's unanswerable rows use it on both sides.
* ``answer_unit`` is not scored and not required. Every submission row (matched or not) needs a
  non-empty (after trimming) ``explanation``; ``is_blank`` counts as non-empty. Duplicate or
  empty ids in either file are errors. Truth values are never normalised (a truth ``yes``
  does not match an answer ``yes``, which becomes ``1``), as the rule normalises only the
  submission.
* Errors (``ScoreInputError``, a ``UserError``: one line, exit code 2) name the file and
  count data rows from 1, the header not included.
"""

from __future__ import annotations

import ast
import csv
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from fleetbench.errors import UserError

WEIGHTS = {"value": 0.75, "ref": 0.15, "na": 0.10}
REL_TOL = 1e-3
ABS_TOL = 1e-3
SOLUTION_COLUMNS = ("id", "answer_value", "ref_id")
SUBMISSION_COLUMNS = ("id", "answer_value", "ref_id", "explanation")
BLANK = "is_blank"

_BLANK_WORDS = {"", "na", "n/a", "is_blank"}
_UNABLE = "unable to answer with confidence based on the provided documents"
HEDGES = (
    "more than", "less than", "greater than", "fewer than", "approximately", "about", "around",
    "over", "under", "nearly", "roughly", "up to", "at least", "at most",
)  # fmt: skip
_HEDGE = re.compile(rf"^(?:{'|'.join(HEDGES)})\s+|^[~≈><]\s*", re.IGNORECASE)
# A number: optional sign, digits with optional thousands groups, decimals, exponent.
_NUM = r"[+-]?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_NUMBER = re.compile(rf"({_NUM})([KMBT]?)", re.IGNORECASE)
_RANGE = re.compile(
    rf"(?:from\s+)?({_NUM}[KMBT]?)(?:\s*[-\u2013\u2014]\s*|\s+to\s+)({_NUM}[KMBT]?)", re.IGNORECASE
)
_SCALE = {"": 0, "k": 3, "m": 6, "b": 9, "t": 12}


class ScoreInputError(UserError):
    """A solution or submission file that cannot be scored (one line, names the file)."""


def is_blank(value: str) -> bool:
    text = value.strip().lower()
    return text in _BLANK_WORDS or text.startswith(_UNABLE)


def _decimal(text: str) -> Decimal | None:
    """``text`` as a number (thousands commas and a K/M/B/T suffix allowed), else None."""
    match = _NUMBER.fullmatch(text.strip())
    if match is None:
        return None
    try:
        number = Decimal(match.group(1).replace(",", ""))
    except InvalidOperation:
        return None
    return number.scaleb(_SCALE[match.group(2).lower()])


def _fmt(number: Decimal) -> str:
    if number == 0:
        return "0"
    normal = number.normalize()
    return format(normal, "f") if -30 < normal.adjusted() < 30 else repr(float(normal))


def normalise(value: str) -> str:
    """The submitted answer_value as it is compared (see the module docstring)."""
    text = value.strip()
    if is_blank(text):
        return BLANK
    low = text.lower()
    if low in ("true", "yes"):
        return "1"
    if low in ("false", "no"):
        return "0"
    text = _HEDGE.sub("", text, count=1).strip()
    if (number := _decimal(text)) is not None:
        return _fmt(number)
    if match := _RANGE.fullmatch(text):
        lo, hi = sorted(d for d in map(_decimal, match.groups()) if d is not None)
        return f"[{_fmt(lo)},{_fmt(hi)}]"
    return text


def _number(text: str) -> float | None:
    """A plain number (thousands commas allowed, no suffix) as float, else None."""
    text = text.strip()
    if not re.fullmatch(_NUM, text):
        return None
    return float(text.replace(",", ""))


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1].strip()
    return text


def parse_list(text: str) -> list[float | str]:
    """A bracketed value as a list: JSON, else comma-split; numeric items as numbers."""
    text = text.strip()
    try:
        loaded = json.loads(text)
    except ValueError:
        loaded = None
    if isinstance(loaded, list):
        raw = [item if isinstance(item, str) else json.dumps(item) for item in loaded]
    else:
        inner = text[1:-1] if text.endswith("]") else text[1:]
        raw = [_unquote(part) for part in inner.split(",")]
        if raw == [""]:
            raw = []
    items: list[float | str] = []
    for item in raw:
        number = _number(item)
        items.append(number if number is not None else item.strip())
    return items


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)


def _term(item: float | str) -> str:
    return item.lower() if isinstance(item, str) else _fmt(Decimal(repr(item)))


def _lists_match(truth: list[float | str], answer: list[float | str]) -> bool:
    if len(truth) != len(answer):
        return False
    a_nums = [x for x in truth if isinstance(x, float)]
    b_nums = [x for x in answer if isinstance(x, float)]
    if len(a_nums) == len(truth) and len(b_nums) == len(answer):
        return all(_close(a, b) for a, b in zip(sorted(a_nums), sorted(b_nums), strict=True))
    return sorted(map(_term, truth)) == sorted(map(_term, answer))


def _terms(text: str) -> set[str]:
    text = text.strip()
    if text[:1] in "{[" and text[-1:] in "}]":
        text = text[1:-1]
    return {t.lower() for t in map(_unquote, text.split(",")) if t}


def value_correct(truth: str, answer: str) -> bool:
    """Whether the submitted ``answer`` (raw; normalised here) matches ``truth``."""
    if is_blank(truth):
        return True
    if is_blank(answer):
        return False
    norm = normalise(answer)
    truth = truth.strip()
    if truth.startswith("["):
        expected = parse_list(truth)
        if norm.startswith("["):
            return _lists_match(expected, parse_list(norm))
        number = _number(norm)
        numbers = [x for x in expected if isinstance(x, float)]
        if number is None or len(expected) != 2 or len(numbers) != 2:
            return False
        lo, hi = sorted(numbers)
        return lo <= number <= hi or _close(number, lo) or _close(number, hi)
    if truth.startswith("{"):
        return _terms(truth) == _terms(norm)
    a, b = _number(truth), _number(norm)
    if a is not None and b is not None:
        return _close(a, b)
    return truth.lower() == norm.lower()


def parse_ref_ids(value: str) -> set[str]:
    text = value.strip()
    if not text.startswith("["):
        return {text.lower()} if text else set()
    items: Any
    try:
        items = json.loads(text)
    except ValueError:
        try:
            items = ast.literal_eval(text)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            items = None
    if not isinstance(items, list | tuple):
        inner = text[1:-1] if text.endswith("]") else text[1:]
        items = [_unquote(part) for part in inner.split(",")]
    return {str(item).strip().lower() for item in items} - {""}


def jaccard(a: set[str], b: set[str]) -> float:
    if not a and not b:
        return 1.0
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

    def summary(self) -> dict[str, Any]:
        """The components and counts (everything but the per-question details)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "questions"}

    def details(self) -> list[dict[str, Any]]:
        return [asdict(q) for q in self.questions]


def score_question(qid: str, truth: Mapping[str, str], answer: Mapping[str, str]) -> QuestionScore:
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


def _check_columns(name: str, columns: Iterable[str], required: tuple[str, ...]) -> None:
    present = set(columns)
    if missing := [c for c in required if c not in present]:
        raise ScoreInputError(
            f"{name}: missing column(s) {', '.join(missing)}; required: {', '.join(required)}"
        )


def _index(
    rows: Iterable[Mapping[str, str | None]], name: str, required: tuple[str, ...]
) -> dict[str, dict[str, str]]:
    """Rows by id, after checking columns, ids and (for submissions) explanations."""
    indexed: dict[str, dict[str, str]] = {}
    first_row: dict[str, int] = {}
    for number, row in enumerate(rows, start=1):
        if number == 1:
            _check_columns(name, row.keys(), required)
        clean = {c: (row.get(c) or "") for c in required}
        qid = clean["id"].strip()
        if not qid:
            raise ScoreInputError(f"{name}: row {number} has an empty id")
        if qid in indexed:
            raise ScoreInputError(
                f"{name}: duplicate id {qid!r} at rows {first_row[qid]} and {number}"
            )
        if "explanation" in required and not clean["explanation"].strip():
            raise ScoreInputError(
                f"{name}: empty explanation at row {number} (id {qid!r}); "
                "every submission row needs one"
            )
        indexed[qid] = clean
        first_row[qid] = number
    if not indexed:
        raise ScoreInputError(f"{name}: no data rows")
    return indexed


def combine(
    value_correct: Sequence[float],
    ref_scores: Sequence[float],
    blank_truth_recalled: Sequence[bool],
) -> tuple[float, float, float, float]:
    """(overall, value accuracy, ref overlap, NA recall) from per-question figures;
    ``blank_truth_recalled`` has one flag per truly-blank question: answered blank?"""
    n = len(value_correct)
    value = sum(value_correct) / n
    ref = sum(ref_scores) / n
    na = sum(blank_truth_recalled) / len(blank_truth_recalled) if blank_truth_recalled else 1.0
    return WEIGHTS["value"] * value + WEIGHTS["ref"] * ref + WEIGHTS["na"] * na, value, ref, na


def score_frames(
    solution_rows: Iterable[Mapping[str, str | None]],
    submission_rows: Iterable[Mapping[str, str | None]],
    *,
    solution_name: str = "solution",
    submission_name: str = "submission",
) -> WattBotScore:
    """Score submission rows against solution rows (dicts as ``csv.DictReader`` gives).

    Rows are numbered from 1 (the header is not a row) in error messages.
    """
    solution = _index(solution_rows, solution_name, SOLUTION_COLUMNS)
    submission = _index(submission_rows, submission_name, SUBMISSION_COLUMNS)
    matched = [qid for qid in solution if qid in submission]
    if not matched:
        raise ScoreInputError(
            f"{submission_name}: none of its {len(submission)} id(s) matches one of the "
            f"{len(solution)} id(s) in {solution_name}"
        )
    questions = [score_question(q, solution[q], submission[q]) for q in matched]
    n = len(questions)
    blank_truth = [q for q in questions if q.truth_blank]
    recalled = sum(q.answer_blank for q in blank_truth)
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
        n_matched=n,
        n_solution=len(solution),
        n_submission=len(submission),
        n_blank_truth=len(blank_truth),
        n_blank_truth_answered_blank=recalled,
        questions=questions,
    )


def read_rows(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    """The CSV's non-empty rows as dicts (header names trimmed, short rows padded with "")."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise ScoreInputError(f"{path}: empty file, expected a CSV header row")
            names = [h.strip() for h in header]
            _check_columns(str(path), names, required)
            return [
                {n: row[i] if i < len(row) else "" for i, n in enumerate(names)}
                for row in reader
                if any(cell.strip() for cell in row)
            ]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ScoreInputError(f"{path}: cannot read: {reason}") from None


def score_files(solution: Path, submission: Path) -> WattBotScore:
    """Score two Kaggle-format CSV files (see the module docstring for every rule)."""
    return score_frames(
        read_rows(solution, SOLUTION_COLUMNS),
        read_rows(submission, SUBMISSION_COLUMNS),
        solution_name=str(solution),
        submission_name=str(submission),
    )
