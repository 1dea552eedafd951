"""The WattBot 2025 score: every rule of issue 5 item 3 on hand-made cases, plus the dataset."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from conftest import DATA

from fleetbench.errors import UserError
from fleetbench.scoring import ScoreInputError, score_files, score_frames
from fleetbench.scoring.wattbot import (
    HEDGES,
    is_blank,
    jaccard,
    normalise,
    parse_list,
    parse_ref_ids,
    value_correct,
)

WATTBOT = DATA / "wattbot_train_QA.csv"
SUB_COLUMNS = ["id", "answer_value", "answer_unit", "ref_id", "explanation"]


def sol(qid: str, value: str, ref: str = "['a']") -> dict[str, str | None]:
    return {"id": qid, "answer_value": value, "ref_id": ref}


def sub(qid: str, value: str, ref: str = "['a']", why: str = "because") -> dict[str, str | None]:
    return {"id": qid, "answer_value": value, "ref_id": ref, "explanation": why}


# --- blank ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "blank"),
    [
        ("", True), ("   ", True), ("na", True), (" NA ", True), ("n/a", True), ("N/A", True),
        ("is_blank", True), ("IS_BLANK", True),
        ("Unable to answer with confidence based on the provided documents.", True),
        ("unable to answer with confidence based on the provided documents", True),
        ("Unable to answer", False), ("none", False), ("0", False), ("nan", False),
        ("n.a.", False), ("blank", False),
    ],
)  # fmt: skip
def test_blank_definition(value: str, blank: bool) -> None:
    assert is_blank(value) is blank


# --- normalisation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # blank stays blank
        ("", "is_blank"), ("N/A", "is_blank"), (" is_blank ", "is_blank"),
        ("Unable to answer with confidence based on the provided documents.", "is_blank"),
        # booleans (whole value only)
        ("true", "1"), ("TRUE", "1"), ("Yes", "1"), ("false", "0"), ("No", "0"),
        ("not true", "not true"),
        # thousands commas only when the rest is a number
        ("1,234", "1234"), ("1,234,567.5", "1234567.5"), ("-2,000", "-2000"),
        ("12,34", "12,34"), ("1,2,3", "1,2,3"), ("a,b", "a,b"),
        # plain numbers in their plain decimal form
        ("4.3", "4.3"), ("64.70", "64.7"), ("+5", "5"), ("1e-3", "0.001"), ("0.0", "0"),
        # one leading symbol hedge
        ("~5", "5"), ("≈5", "5"), (">5", "5"), ("<5", "5"), ("~ 5", "5"),
        ("~~5", "~5"), ("~about 5", "about 5"), ("about ~5", "~5"),
        # word hedges need a following space, are case-insensitive, and only one is dropped
        ("Approximately 5", "5"), ("about", "about"), ("about5", "about5"),
        ("overall 5", "overall 5"), ("about more than 5", "more than 5"),
        ("over the air", "the air"), ("more than 1,000", "1000"),
        # K/M/B/T suffixes, touching the number, either case
        ("1.5K", "1500"), ("2M", "2000000"), ("3B", "3000000000"), ("1T", "1000000000000"),
        ("2.51M", "2510000"), ("5k", "5000"), ("about 1.2b", "1200000000"), ("5 K", "5 K"),
        ("1,500K", "1500000"), ("5KM", "5KM"),
        # ranges -> [lo,hi]
        ("5-10", "[5,10]"), ("5\u201310", "[5,10]"), ("5\u201410", "[5,10]"), ("5 - 10", "[5,10]"),
        ("5 to 10", "[5,10]"), ("from 5 to 10", "[5,10]"), ("From 5-10", "[5,10]"),
        ("10-5", "[5,10]"), ("0.02 to 0.1", "[0.02,0.1]"), ("1,000-2,000", "[1000,2000]"),
        ("about 5-10", "[5,10]"), ("1K-2K", "[1000,2000]"), ("5to10", "5to10"),
        ("from 5", "from 5"), ("-5", "-5"),
        # anything else stays as written (trimmed)
        ("GPT-3", "GPT-3"), ("  Water consumption ", "Water consumption"), ("[80, 90]", "[80, 90]"),
        ("55%", "55%"),
    ],
)  # fmt: skip
def test_normalise(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


@pytest.mark.parametrize("hedge", HEDGES)
def test_every_word_hedge_is_dropped(hedge: str) -> None:
    assert normalise(f"{hedge} 42") == "42"
    assert normalise(f"{hedge.upper()}  42") == "42"
    assert normalise(f"{hedge}42") == f"{hedge}42"


# --- value correctness ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "items"),
    [
        ("[0.02,0.1]", [0.02, 0.1]), ("[80, 90]", [80.0, 90.0]), ('["80", "a"]', [80.0, "a"]),
        ("['a','B']", ["a", "B"]), ("[a, b]", ["a", "b"]), ("[]", []), ("[5", [5.0]),
    ],
)  # fmt: skip
def test_parse_list(text: str, items: list[float | str]) -> None:
    assert parse_list(text) == items


@pytest.mark.parametrize(
    ("truth", "answer", "correct"),
    [
        # a blank truth counts as a correct value, whatever the answer
        ("is_blank", "42", True), ("", "anything", True), ("NA", "is_blank", True),
        # a blank answer to an answerable question is wrong
        ("4.3", "is_blank", False), ("4.3", "", False), ("GPT-3", "n/a", False),
        # two numbers: math.isclose(rel_tol=1e-3, abs_tol=1e-3), either tolerance suffices
        ("4.3", "4.3", True), ("4.3", "4.304", True), ("4.3", "4.31", False),
        ("0", "0.0009", True), ("0", "0.002", False), ("0.001", "0.0019", True),
        ("5439000", "5,439,000", True), ("5439000", "5.439M", True), ("5439000", "5.44M", True),
        ("5439000", "5.5M", False), ("1438", "about 1438", True), ("1438", "1438 lbs", False),
        ("8.720430108", "8.72", True), ("1,000", "1000", True),
        ("1", "TRUE", True), ("1", "yes", True), ("0", "no", True), ("1", "no", False),
        # else trimmed case-insensitive equality of the normalised answer
        ("GPT-3", " gpt-3 ", True), ("Water consumption", "water consumption", True),
        ("Water consumption", "water  consumption", False),
        ("ML.ENERGY Benchmark", "The ML.ENERGY Benchmark", False),
        ("Financial Sentiment Analysis", "about Financial Sentiment Analysis", True),
        ("yes", "yes", False),  # the truth is not normalised; the answer becomes 1
        # list truth: list answers order-insensitive, numeric with tolerance
        ("[0.02,0.1]", "[0.1, 0.02]", True), ("[0.02,0.1]", "0.02 to 0.1", True),
        ("[80, 90]", "[80.05, 89.95]", True), ("[80,90]", "[80,90,100]", False),
        ("[80,90]", "[80]", False), ("[80,90]", "80-95", False),
        ("['a','B']", '["b", "A"]', True), ("[a, b]", "[b, a]", True), ("[a, b]", "[a, c]", False),
        ("[a, 80]", "[80, A]", True), ("[a, a, b]", "[a, b, b]", False),
        # list truth: a single number in [lo - tol, hi + tol] of a two-number truth
        ("[0.02,0.1]", "0.05", True), ("[0.02,0.1]", "0.1009", True),
        ("[0.02,0.1]", "0.102", False),
        ("[80,90]", "80", True), ("[80,90]", "79.95", True), ("[80,90]", "79.9", False),
        ("[80,90]", "95", False), ("[80,90]", "about 85", True), ("[90,80]", "85", True),
        # list truth: anything else is wrong
        ("[a, b]", "a, b", False), ("[5]", "5", False), ("[1,2,3]", "2", False),
        ("[a, b]", "a", False), ("[80,90]", "eighty", False),
        # braces truth: a set of lower-cased terms, compared as sets
        ("{a, b}", "b, A", True), ("{a, b}", "{B,a}", True), ("{a, b}", "[a, b]", True),
        ("{a, b}", "a", False), ("{a, b}", "a, b, c", False), ("{Water}", "water", True),
    ],
)  # fmt: skip
def test_value_correct(truth: str, answer: str, correct: bool) -> None:
    assert value_correct(truth, answer) is correct


# --- ref ids, Jaccard -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "ids"),
    [
        ("['wu2021b','patterson2021']", {"wu2021b", "patterson2021"}),
        ('["A", " b "]', {"a", "b"}), ("[wu2021b, X]", {"wu2021b", "x"}),
        ("luccioni2025b", {"luccioni2025b"}), ("  Foo Bar ", {"foo bar"}), ("a, b", {"a, b"}),
        ("", set()), ("   ", set()), ("[]", set()), ("['']", set()),
        ("is_blank", {"is_blank"}), ("['is_blank']", {"is_blank"}),
    ],
)  # fmt: skip
def test_parse_ref_ids(value: str, ids: set[str]) -> None:
    assert parse_ref_ids(value) == ids


@pytest.mark.parametrize(
    ("a", "b", "score"),
    [
        (set(), set(), 1.0), ({"a"}, set(), 0.0), (set(), {"a"}, 0.0), ({"a"}, {"a"}, 1.0),
        ({"a", "b"}, {"b", "c"}, 1 / 3), ({"a", "b"}, {"a"}, 0.5), ({"a"}, {"b"}, 0.0),
    ],
)  # fmt: skip
def test_jaccard(a: set[str], b: set[str], score: float) -> None:
    assert jaccard(a, b) == pytest.approx(score)


# --- NA recall, weighting, join ---------------------------------------------------------------


def test_weighting_and_components() -> None:
    solution = [sol("q1", "5", "['a','b']"), sol("q2", "x", "['a']"), sol("q3", "is_blank", ""),
                sol("q4", "is_blank", "is_blank")]  # fmt: skip
    answers = [sub("q1", "5", "['a']"), sub("q2", "y", "['A']"), sub("q3", "7", "['z']"),
               sub("q4", "N/A", "is_blank")]  # fmt: skip
    score = score_frames(solution, answers)
    assert score.value_accuracy == pytest.approx(3 / 4)  # q2 wrong; blank truths correct
    assert score.ref_overlap == pytest.approx((0.5 + 1 + 0 + 1) / 4)
    assert score.na_recall == pytest.approx(1 / 2)
    assert score.overall == pytest.approx(0.75 * 0.75 + 0.15 * 0.625 + 0.10 * 0.5)
    assert (score.n_blank_truth, score.n_blank_truth_answered_blank) == (2, 1)
    q1 = score.questions[0]
    assert (q1.id, q1.value_correct, q1.ref_score, q1.normalised_value) == ("q1", True, 0.5, "5")
    assert q1.truth_ref_ids == ["a", "b"] and q1.answer_ref_ids == ["a"]
    assert set(score.summary()) == {
        "overall", "value_accuracy", "ref_overlap", "na_recall", "n_matched", "n_solution",
        "n_submission", "n_blank_truth", "n_blank_truth_answered_blank",
    }  # fmt: skip
    assert score.details()[2]["normalised_value"] == "7"


def test_na_recall_is_one_without_blank_truths() -> None:
    score = score_frames([sol("q1", "5")], [sub("q1", "is_blank")])
    assert score.na_recall == 1.0 and score.value_accuracy == 0.0
    assert score.overall == pytest.approx(0.15 + 0.10)


def test_inner_join_ignores_unmatched_rows() -> None:
    solution = [sol("q1", "5"), sol("q2", "6"), sol("q3", "is_blank")]
    score = score_frames(solution, [sub("q2", "6"), sub("q9", "1")])
    assert (score.n_matched, score.n_solution, score.n_submission) == (1, 3, 2)
    assert score.overall == pytest.approx(1.0)  # q3's blank truth is not matched: NA recall 1


@pytest.mark.parametrize(
    ("solution", "submission", "message"),
    [
        ([sol("q1", "5")], [sub("q2", "5")],
         "submission: none of its 1 id(s) matches one of the 1 id(s) in solution"),
        ([sol("q1", "5")], [sub("q1", "5", why="")],
         "submission: empty explanation at row 1 (id 'q1'); every submission row needs one"),
        ([sol("q1", "5")], [sub("q2", "5", why="ok"), sub("q1", "5", why="  ")],
         "submission: empty explanation at row 2 (id 'q1')"),
        ([sol("q1", "5")], [sub("q1", "5"), {**sub("q3", "5"), "explanation": None}],
         "submission: empty explanation at row 2 (id 'q3')"),
        ([sol("q1", "5")], [{"id": "q1", "answer_value": "5", "ref_id": ""}],
         "submission: missing column(s) explanation; required: id, answer_value, ref_id, "
         "explanation"),
        ([{"id": "q1", "answer": "5"}], [sub("q1", "5")],
         "solution: missing column(s) answer_value, ref_id; required: id, answer_value, ref_id"),
        ([sol("q1", "5"), sol("q1", "6")], [sub("q1", "5")],
         "solution: duplicate id 'q1' at rows 1 and 2"),
        ([sol(" ", "5")], [sub("q1", "5")], "solution: row 1 has an empty id"),
        ([], [sub("q1", "5")], "solution: no data rows"),
    ],
)  # fmt: skip
def test_bad_frames(
    solution: list[dict[str, str | None]], submission: list[dict[str, str | None]], message: str
) -> None:
    with pytest.raises(ScoreInputError) as err:
        score_frames(solution, submission)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value) and isinstance(err.value, UserError)


# --- files: the dataset -----------------------------------------------------------------------


def _truth_rows() -> list[dict[str, str]]:
    with WATTBOT.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, SUB_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows({**row, "explanation": row["explanation"] or "-"} for row in rows)
    return path


def test_ground_truth_against_itself_scores_one(tmp_path: Path) -> None:
    rows = _truth_rows()
    assert len(rows) == 41
    score = score_files(WATTBOT, _write(tmp_path / "sub.csv", rows))
    assert (score.overall, score.value_accuracy, score.ref_overlap, score.na_recall) == (
        1.0, 1.0, 1.0, 1.0,
    )  # fmt: skip
    assert (score.n_matched, score.n_blank_truth) == (41, 2)


# id -> (answer_value, ref_id) replacing the truth's; hand-scored below.
PERTURBED = {
    "q009": ("4.31", None),  # wrong: 0.01 off
    "q054": ("about 64.70", None),  # right
    "q124": ("5.439M", None),  # right
    "q078": ("0.05", None),  # right: inside [0.02, 0.1]
    "q263": ("95", None),  # wrong: outside [80, 90]
    "q166": ("gpt-3", None),  # right
    "q202": ("Sentiment analysis", None),  # wrong
    "q062": ("42", None),  # blank truth: value right, NA missed
    "q164": ("N/A", None),  # blank truth answered blank: NA hit
    "q075": ("TRUE", "['wu2021b']"),  # right; ref 1/2
    "q272": (None, "['dodge2022','li2025b']"),  # ref 1/3
    "q003": (None, ""),  # ref 0
    "q207": (None, "['LUCCIONI2025B']"),  # ref 1
}


def test_perturbed_submission_hand_computed(tmp_path: Path) -> None:
    rows = []
    for row in _truth_rows():
        if row["id"] == "q316":
            continue  # not answered: the join leaves it out
        value, ref = PERTURBED.get(row["id"], (None, None))
        rows.append({**row, "answer_value": value or row["answer_value"],
                     "ref_id": row["ref_id"] if ref is None else ref})  # fmt: skip
    rows.append({"id": "q999", "answer_value": "1", "ref_id": "x", "explanation": "extra"})
    score = score_files(WATTBOT, _write(tmp_path / "sub.csv", rows))
    assert (score.n_matched, score.n_submission) == (40, 41)
    assert score.value_accuracy == pytest.approx(37 / 40)
    assert score.ref_overlap == pytest.approx((40 - 0.5 - 2 / 3 - 1) / 40)
    assert score.na_recall == 0.5
    assert score.overall == pytest.approx(0.885625)  # 0.69375 + 0.141875 + 0.05
    wrong = sorted(q.id for q in score.questions if not q.value_correct)
    assert wrong == ["q009", "q202", "q263"]


def test_bad_files(tmp_path: Path) -> None:
    def error(solution: Path, submission: Path) -> str:
        with pytest.raises(ScoreInputError) as err:
            score_files(solution, submission)
        assert "\n" not in str(err.value)
        return str(err.value)

    good = _write(tmp_path / "good.csv", _truth_rows())
    missing = tmp_path / "missing.csv"
    assert error(missing, good) == f"{missing}: cannot read: No such file or directory"
    assert error(WATTBOT, tmp_path) == f"{tmp_path}: cannot read: Is a directory"
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert error(WATTBOT, empty) == f"{empty}: empty file, expected a CSV header row"
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"id,answer_value\n\xff\xfe\n")
    assert error(WATTBOT, binary).startswith(f"{binary}: cannot read: 'utf-8' codec")
    header_only = tmp_path / "header.csv"
    header_only.write_text(" id , answer_value,ref_id\n")
    assert error(WATTBOT, header_only) == (
        f"{header_only}: missing column(s) explanation; required: id, answer_value, ref_id, "
        "explanation"
    )
    assert error(header_only, good) == f"{header_only}: no data rows"
    no_why = tmp_path / "no_why.csv"
    no_why.write_text("id,answer_value,ref_id,explanation\nq009,4.3,x,ok\nq054,64.7,x\n")
    assert error(WATTBOT, no_why) == (
        f"{no_why}: empty explanation at row 2 (id 'q054'); every submission row needs one"
    )
    other = tmp_path / "other.csv"
    other.write_text("\ufeffid,answer_value,ref_id,explanation\nz1,4.3,x,ok\n\n")  # BOM is fine
    assert error(WATTBOT, other) == f"{other}: none of its 1 id(s) matches one of the 41 id(s) " \
        f"in {WATTBOT}"  # fmt: skip
