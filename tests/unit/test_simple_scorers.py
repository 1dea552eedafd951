"""The custom task's scorers on hand-made cases."""

from __future__ import annotations

import pytest

from fleetbench.scoring import simple

CHOICES = ["red", "blue", "green", "dark blue"]


@pytest.mark.parametrize(
    ("answer", "target", "case", "correct"),
    [
        ("Paris", "Paris", False, True),
        ("  **Paris.** ", "paris", False, True),
        ('"paris"', "Paris", True, False),
        ("Paris", "Paris", True, True),
        ("The capital is Paris.", "Paris", False, False),
        ("New   York", "new york", False, True),
    ],
)
def test_exact(answer: str, target: str, case: bool, correct: bool) -> None:
    assert simple.exact(answer, target, case).correct is correct


@pytest.mark.parametrize(
    ("answer", "target", "case", "correct"),
    [
        ("The capital is Paris.", "paris", False, True),
        ("The capital is Paris.", "paris", True, False),
        ("It is 14", "4", False, False),  # not glued to other digits
        ("It is 4.", "4", False, True),
        ("new\nyork city", "New York", False, True),
        ("C++ is fine", "c++", False, True),
    ],
)
def test_includes(answer: str, target: str, case: bool, correct: bool) -> None:
    assert simple.includes(answer, target, case).correct is correct


def test_regex_prediction_is_the_match() -> None:
    judged = simple.regex("It happened in 1999, I think", r"\b19\d\d\b")
    assert judged == simple.Judgement(True, "1999")
    assert simple.regex("ABC", "abc").correct
    assert not simple.regex("ABC", "abc", case_sensitive=True).correct
    assert simple.regex("nothing", r"\d+") == simple.Judgement(False, None)


@pytest.mark.parametrize(
    ("answer", "target", "rel", "abs_", "correct", "prediction"),
    [
        ("2 + 2 = 4", 4.0, 1e-6, 1e-6, True, "4"),
        ("The answer is 4.0.", 4.0, 1e-6, 1e-6, True, "4"),
        ("about 1,000 people", 1000.0, 0, 0, True, "1000"),
        ("\u22123 degrees", -3.0, 0, 0, True, "-3"),
        ("3.14", 3.14159, 1e-3, 0, True, "3.14"),
        ("3.14", 3.14159, 1e-4, 0, False, "3.14"),
        ("0.0001", 0.0, 0, 1e-3, True, "0.0001"),
        ("1e3", 1000.0, 0, 0, True, "1000"),
        ("no number here", 1.0, 0.5, 0.5, False, None),
    ],
)
def test_numeric(
    answer: str, target: float, rel: float, abs_: float, correct: bool, prediction: str | None
) -> None:
    assert simple.numeric(answer, target, rel, abs_) == simple.Judgement(correct, prediction)


def test_parse_number() -> None:
    assert simple.parse_number("1,234.5") == 1234.5
    assert simple.parse_number("12%") == 12.0
    assert simple.parse_number("abc") is None
    assert simple.parse_number("inf") is None


@pytest.mark.parametrize(
    ("answer", "picked"),
    [
        ("B", 1),
        ("b", 1),
        ("(B)", 1),
        ("B) blue", 1),
        ("C. green", 2),
        ("The answer is C.", 2),
        ("Answer: (A)", 0),
        ("blue", 1),
        ("Blue.", 1),
        ("I think green is right", 2),
        ("dark blue", 3),
        ("It is dark blue, not red", 3),  # the choice named first, the longer one at a tie
        ("E", None),  # only A-D exist
        ("Paris", None),
    ],
)
def test_extract_choice(answer: str, picked: int | None) -> None:
    assert simple.extract_choice(answer, CHOICES) == picked


def test_multiple_choice_judgement_and_target_forms() -> None:
    assert simple.multiple_choice("B) blue", 1, CHOICES) == simple.Judgement(True, "B")
    assert simple.multiple_choice("red", 1, CHOICES) == simple.Judgement(False, "A")
    assert simple.multiple_choice("??", 1, CHOICES) == simple.Judgement(False, None)
    assert simple.choice_index("green", CHOICES) == 2
    assert simple.choice_index("C", CHOICES) == 2
    assert simple.choice_index("(d)", CHOICES) == 3
    assert simple.choice_index("E", CHOICES) is None
    assert simple.choice_index("Green", CHOICES, case_sensitive=True) is None
