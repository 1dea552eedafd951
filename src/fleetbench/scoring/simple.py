"""Small pure scorers for custom tasks: exact, includes, regex, numeric, multiple choice.

Each takes the model's answer and the reference and returns a ``Judgement``: whether it
is correct and the prediction that was extracted from the answer (None when nothing
could be extracted), so stored results show *why* a sample scored as it did.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass

LETTERS = string.ascii_uppercase
# Wrappers models put around a short answer: quotes, Markdown emphasis, a final period.
_WRAP = "\"'`*_ \t\n"
_NUMBER = re.compile(
    "[-+\u2212]?" r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?|[-+]?\.\d+"
)
_LETTER_PATTERNS = (
    # "answer is (B)", "Answer: B", "correct option is B."
    re.compile(r"(?i:\b(?:answer|option|choice))\s*(?:is\s*)?:?\s*\(?([A-Z])\b"),
    # "B) ...", "(B) ...", "B. ...", "B: ..." at the start
    re.compile(r"^\(?([A-Z])(?:\)|\.(?!\w)|:)"),
)


@dataclass(frozen=True)
class Judgement:
    correct: bool
    prediction: str | None


def normalize(text: str, case_sensitive: bool = False) -> str:
    """Whitespace collapsed, wrapping quotes/emphasis and a final period dropped."""
    text = " ".join(text.split()).strip(_WRAP)
    if text.endswith(".") and not text.endswith(".."):
        text = text[:-1].strip(_WRAP)
    return text if case_sensitive else text.casefold()


def exact(answer: str, target: str, case_sensitive: bool = False) -> Judgement:
    """The whole answer equals the target (after ``normalize``)."""
    prediction = normalize(answer, case_sensitive)
    return Judgement(prediction == normalize(target, case_sensitive), prediction)


def _bounded(needle: str) -> str:
    """A regex for ``needle`` not glued to word characters (so "4" is not found in "14")."""
    left = r"(?<!\w)" if needle[:1].isalnum() or needle[:1] == "_" else ""
    right = r"(?!\w)" if needle[-1:].isalnum() or needle[-1:] == "_" else ""
    return left + re.escape(needle) + right


def includes(answer: str, target: str, case_sensitive: bool = False) -> Judgement:
    """The target appears in the answer as a whole word or phrase."""
    needle = normalize(target, case_sensitive)
    flags = 0 if case_sensitive else re.IGNORECASE
    found = bool(needle) and re.search(_bounded(needle), " ".join(answer.split()), flags)
    return Judgement(bool(found), needle if found else None)


def regex(answer: str, pattern: str, case_sensitive: bool = False) -> Judgement:
    """``re.search`` of the target pattern in the answer; the match is the prediction."""
    match = re.search(pattern, answer, 0 if case_sensitive else re.IGNORECASE)
    return Judgement(match is not None, match.group(0) if match else None)


def parse_number(text: str) -> float | None:
    """A number written plainly: thousands commas, a Unicode minus, exponent allowed."""
    cleaned = text.strip().strip(_WRAP).rstrip(".%").replace("\u2212", "-")
    if re.fullmatch(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?", cleaned):
        cleaned = cleaned.replace(",", "")
    try:
        value = float(cleaned)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def extract_number(answer: str) -> float | None:
    """The last number in the answer ("2 + 2 = 4" -> 4)."""
    matches = _NUMBER.findall(answer)
    return parse_number(matches[-1]) if matches else None


def numeric(answer: str, target: float, rel_tol: float = 1e-6, abs_tol: float = 1e-6) -> Judgement:
    """The answer's last number is within ``rel_tol`` (relative) or ``abs_tol`` of the target."""
    value = extract_number(answer)
    if value is None:
        return Judgement(False, None)
    ok = math.isclose(value, target, rel_tol=rel_tol, abs_tol=abs_tol)
    return Judgement(ok, _format_number(value))


def _format_number(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def choice_index(target: str, choices: Sequence[str], case_sensitive: bool = False) -> int | None:
    """The reference as a choice index: the text of one choice, else its letter."""
    wanted = normalize(target, case_sensitive)
    for i, choice in enumerate(choices):
        if normalize(choice, case_sensitive) == wanted:
            return i
    letter = target.strip().strip("()").upper()
    if len(letter) == 1 and letter in LETTERS[: len(choices)]:
        return LETTERS.index(letter)
    return None


def extract_choice(answer: str, choices: Sequence[str], case_sensitive: bool = False) -> int | None:
    """Which choice the answer picks: a letter ("B", "(B)", "B) ...", "answer is B"), else the
    text of a choice (the whole answer, else the choice named earliest in it)."""
    text = " ".join(answer.split()).strip(_WRAP)
    valid = LETTERS[: len(choices)]
    bare = text.rstrip(".").strip("()[] ")
    if len(bare) == 1 and bare.upper() in valid:
        return valid.index(bare.upper())
    for pattern in _LETTER_PATTERNS:
        match = pattern.search(text)
        if match and match.group(1) in valid:
            return valid.index(match.group(1))
    whole = normalize(text, case_sensitive)
    named: list[tuple[int, int, int]] = []  # (position, -length, index)
    flags = 0 if case_sensitive else re.IGNORECASE
    for i, choice in enumerate(choices):
        needle = normalize(choice, case_sensitive)
        if needle == whole:
            return i
        found = re.search(_bounded(needle), text, flags) if needle else None
        if found:
            named.append((found.start(), -len(needle), i))
    return min(named)[2] if named else None


def multiple_choice(
    answer: str, target_index: int, choices: Sequence[str], case_sensitive: bool = False
) -> Judgement:
    """The picked choice (letter or text) is the target; the prediction is its letter."""
    picked = extract_choice(answer, choices, case_sensitive)
    return Judgement(picked == target_index, LETTERS[picked] if picked is not None else None)
