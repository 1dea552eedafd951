"""The WattBot score = the reference scorer (KohakuRAG_UI scripts/score.py): one test per
rule of issue 9 item 1 and per other reference rule, hand-made cases, the dataset, files."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from conftest import DATA

from fleetbench.errors import UserError
from fleetbench.scoring import ScoreInputError, score_files, score_frames
from fleetbench.scoring.pandas_csv import STR_NA_VALUES
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


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


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


# --- normalisation: the reference's _normalize_sub_value, step by step --------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # blank stays blank (shown as is_blank); booleans (whole value only)
        ("", "is_blank"), ("N/A", "is_blank"), (" is_blank ", "is_blank"),
        ("true", "1"), ("TRUE", "1"), ("Yes", "1"), ("false", "0"), ("No", "0"),
        ("not true", "not true"),
        # numbers are kept as written (only trimmed)
        ("64.70", "64.70"), ("+5", "+5"), ("1e-3", "1e-3"), (" 4.3 ", "4.3"),
        ("GPT-3", "GPT-3"), ("[80, 90]", "[80, 90]"), ("55%", "55%"), ("from 5", "from 5"),
    ],
)  # fmt: skip
def test_normalise_keeps_what_no_rule_touches(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1,234", "1234"), ("1,234,567.5", "1234567.5"), ("-2,000", "-2000"),
        ("1,3", "13"), ("12,34", "1234"), ("1,2,3", "123"), (",5", "5"),  # ALL commas go
        ("a,b", "a,b"), ("1,2 apples", "1,2 apples"),  # not a number without them: kept
        ("more than 1,000", "1000"), ("about 1,2", "12"),  # again after a hedge
    ],
)  # fmt: skip
def test_rule_all_commas_removed_when_the_rest_is_a_number(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("~5", "5"), ("≈5", "5"), (">5", "5"), ("<5", "5"), ("~ 5", "5"), ("~~5", "~5"),
        ("~about 5", "about 5"), ("about ~5", "~5"), ("Approximately 5", "5"),
        ("more  than 5", "5"), ("more\tthan 5", "5"), ("about", "about"), ("about5", "about5"),
        ("overall 5", "overall 5"), ("about more than 5", "more than 5"),
        ("over the air", "the air"),
    ],
)  # fmt: skip
def test_rule_one_leading_hedge_dropped(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


@pytest.mark.parametrize("hedge", HEDGES)
def test_every_word_hedge_is_dropped(hedge: str) -> None:
    assert normalise(f"{hedge} 42") == "42"
    assert normalise(f"{hedge.upper()}  42") == "42"
    assert normalise(f"{hedge}42") == f"{hedge}42"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2.51 M", "2510000"), ("5 K", "5000"), ("3  b", "3000000000"),  # whitespace allowed
        ("1.5K", "1500"), ("2M", "2000000"), ("1T", "1000000000000"), ("5k", "5000"),
        ("-2k", "-2000"), ("about 1.2b", "1200000000"),
        ("1.005k", "1004.9999999999999"),  # the float product, as the reference writes it
        ("1,500K", "1,500K"), ("+5k", "+5k"), ("1e3k", "1e3k"), ("5KM", "5KM"),  # not matched
    ],
)  # fmt: skip
def test_rule_kmbt_suffix_with_optional_whitespace(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("5-10", "[5,10]"), ("5\u201310", "[5,10]"), ("5\u201410", "[5,10]"),
        ("5 - 10", "[5,10]"), ("5 to 10", "[5,10]"), ("5to10", "[5,10]"),
        ("from 5 to 10", "[5,10]"), ("From 5-10", "[5,10]"), ("10-5", "[5,10]"),
        ("0.02 to 0.1", "[0.02,0.1]"), ("about 5-10", "[5,10]"), ("-5--3", "[-5,-3]"),
        ("5.5-6", "[5.5,6]"),
        # both ends must be plain numbers: digits and dots, an optional minus
        ("300-1,000", "300-1,000"), ("1,000-2,000", "1,000-2,000"), ("1K-2K", "1K-2K"),
        ("1.2.3-4", "1.2.3-4"), ("5-", "5-"), ("-5", "-5"),
    ],
)  # fmt: skip
def test_rule_ranges_only_with_plain_number_ends(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


# --- value correctness ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "items"),
    [
        ("[0.02,0.1]", [0.02, 0.1]), ("[80, 90]", [80.0, 90.0]), ('["80", "a"]', [80.0, "a"]),
        ("['a','B']", ["a", "b"]), ("[a, b]", ["a", "b"]), ("[]", []),
        ("[null, true]", ["", "true"]), ("{b, A, a}", ["a", "b"]), ("{}", []), ("[5", None),
        ("5", None), ("", None),
    ],
)  # fmt: skip
def test_parse_list(text: str, items: list[float | str] | None) -> None:
    assert parse_list(text) == items


@pytest.mark.parametrize(
    ("truth", "answer", "correct"),
    [
        ("[80,90]", "80", True), ("[80,90]", "90.001", True), ("[80,90]", "79.999", True),
        ("[80,90]", "79.998", False), ("[80,90]", "79.95", False),  # 79.95: relative 1e-3 ok
        ("[1000,2000]", "2000.0009", True), ("[1000,2000]", "2001", False),
        ("[0.02,0.1]", "0.05", True), ("[0.02,0.1]", "0.1009", True),
        ("[0.02,0.1]", "0.102", False),
        ("[90,80]", "85", True), ("[80,90]", "about 85", True), ("[80,90]", "eighty", False),
    ],
)  # fmt: skip
def test_rule_range_tolerance_is_absolute(truth: str, answer: str, correct: bool) -> None:
    assert value_correct(truth, answer) is correct


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
        ("5439000", "5.5M", False), ("2510000", "2.51 M", True), ("1438", "about 1438", True),
        ("1438", "1438 lbs", False), ("13", "1,3", True), ("1.5", "1,5", False),
        ("1,000", "1000", False),  # the truth is never normalised: "1,000" is text
        (" 5 ", "5", True), ("1000", "1_000", True),  # Python's float() reads both
        ("1", "TRUE", True), ("1", "yes", True), ("0", "no", True), ("1", "no", False),
        # else trimmed case-insensitive equality of the normalised answer
        ("GPT-3", " gpt-3 ", True), ("Water consumption", "water consumption", True),
        ("Water consumption", "water  consumption", False),
        ("Financial Sentiment Analysis", "about Financial Sentiment Analysis", True),
        ("yes", "yes", False),  # the truth is not normalised; the answer becomes 1
        ("[5", "[5", True), ("[5", "5", False),  # "[5" is not a list: text
        # a truth pandas read as missing ("nan") never matches: nan is not close to nan
        ("nan", "nan", False), ("nan", "is_blank", False), ("nan", "NaN", False),
    ],
)  # fmt: skip
def test_value_correct_scalars(truth: str, answer: str, correct: bool) -> None:
    assert value_correct(truth, answer) is correct


@pytest.mark.parametrize(
    ("truth", "answer", "correct"),
    [
        ("[0.02,0.1]", "[0.1, 0.02]", True), ("[0.02,0.1]", "0.02 to 0.1", True),
        ("[80, 90]", "[80.05, 89.95]", True), ("[80,90]", "[80,90,100]", False),
        ("[80,90]", "[80]", False), ("[300,1000]", "300-1000", True),
        ("[300,1000]", "300-1,000", False),  # text, not a range: and not a number
        ("['a','B']", '["b", "A"]', True), ("[a, b]", "[b, a]", True), ("[a, b]", "[a, c]", False),
        ("[a, 80]", "[80, A]", True), ("[a, 80]", "[80.0, a]", True),  # str(80.0) both sides
        ("[a, a, b]", "[a, b, b]", False), ("[1, 2]", "{1, 2}", False),  # set items stay text
        ("[a, b]", "a, b", False), ("[5]", "5", False), ("[1,2,3]", "2", False),
        ("{a, b}", "{B,a}", True), ("{a, b}", "[a, b]", True), ("{a, b, a}", "{b, a}", True),
        ("{a, b}", "b, A", False), ("{a, b}", "a", False), ("{Water}", "water", False),
        ("{a, b}", "[a, a, b]", False), ("[]", "{}", True),
    ],
)  # fmt: skip
def test_value_correct_lists_and_sets(truth: str, answer: str, correct: bool) -> None:
    assert value_correct(truth, answer) is correct


# --- ref ids, Jaccard -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "ids"),
    [
        ("['wu2021b','patterson2021']", {"wu2021b", "patterson2021"}),
        ('["A", " b "]', {"a", "b"}), ("[1, 2.0]", {"1", "2.0"}), ("[null]", {""}),
        ("['']", {""}), ("[]", set()), ("", set()), ("   ", set()),
        # not JSON even after ' -> ": the whole lower-cased trimmed value is one id
        ("[chung2025]", {"[chung2025]"}), ("[wu2021b, X]", {"[wu2021b, x]"}),
        ("['O'Brien']", {"['o'brien']"}), ("['a',]", {"['a',]"}),
        ("luccioni2025b", {"luccioni2025b"}), ("  Foo Bar ", {"foo bar"}), ("a, b", {"a, b"}),
        ("is_blank", {"is_blank"}), ("nan", {"nan"}),
    ],
)  # fmt: skip
def test_rule_ref_id_json_after_quote_swap_else_one_id(value: str, ids: set[str]) -> None:
    assert parse_ref_ids(value) == ids


@pytest.mark.parametrize(
    ("a", "b", "score"),
    [
        (set(), set(), 1.0), ({"a"}, set(), 0.0), (set(), {"a"}, 0.0), ({"a"}, {"a"}, 1.0),
        ({"a", "b"}, {"b", "c"}, 1 / 3), ({"a", "b"}, {"a"}, 0.5), ({"a"}, {"b"}, 0.0),
        ({""}, set(), 0.0),
    ],
)  # fmt: skip
def test_jaccard(a: set[str], b: set[str], score: float) -> None:
    assert jaccard(a, b) == pytest.approx(score)


# --- NA recall, weighting, join ---------------------------------------------------------------


def test_weighting_and_components() -> None:
    solution = [sol("q1", "5", "['a','b']"), sol("q2", "x", "['a']"), sol("q3", "is_blank", ""),
                sol("q4", "is_blank", "is_blank")]  # fmt: skip
    answers = [sub("q1", "5", "['a']"), sub("q2", "y", "['A']"), sub("q3", "7", "['z']"),
               sub("q4", "n/a", "is_blank")]  # fmt: skip
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
        "n_submission", "n_blank_truth", "n_blank_truth_answered_blank", "warnings",
    }  # fmt: skip
    assert score.details()[2]["normalised_value"] == "7" and score.warnings == []


def test_na_recall_is_one_without_blank_truths() -> None:
    score = score_frames([sol("q1", "5")], [sub("q1", "is_blank")])
    assert score.na_recall == 1.0 and score.value_accuracy == 0.0
    assert score.overall == pytest.approx(0.15 + 0.10)


def test_inner_join_ignores_unmatched_rows() -> None:
    solution = [sol("q1", "5"), sol("q2", "6"), sol("q3", "is_blank")]
    score = score_frames(solution, [sub("q2", "6"), sub("q9", "1")])
    assert (score.n_matched, score.n_solution, score.n_submission) == (1, 3, 2)
    assert score.overall == pytest.approx(1.0)  # q3's blank truth is not matched: NA recall 1


def test_join_pairs_every_copy_of_a_repeated_id() -> None:
    # as pandas' join: q1 twice in each file gives 4 pairs; ids are not trimmed
    solution = [sol("q1", "5"), sol("q1", "6"), sol(" q2", "7")]
    answers = [sub("q1", "5"), sub("q1", "7"), sub("q2", "7")]
    score = score_frames(solution, answers)
    assert score.n_matched == 4 and [q.value_correct for q in score.questions] == [
        True, False, False, False,
    ]  # fmt: skip
    assert score.value_accuracy == 0.25
    assert len(score.warnings) == 2 and "duplicate id(s) 'q1' x2" in score.warnings[0]


@pytest.mark.parametrize(
    ("solution", "submission", "message"),
    [
        ([sol("q1", "5")], [sub("q2", "5")],
         "submission: none of its 1 id(s) matches one of the 1 id(s) in solution"),
        ([sol("q1", "5")], [sub("q1", "5", why=" \t")],
         "submission: row 1: explanation: only whitespace (id 'q1'); every submission row "
         "needs a non-empty explanation"),
        ([sol("q1", "5")], [sub("q2", "5", why="ok"), sub("q1", "5", why="  ")],
         "submission: row 2: explanation: only whitespace (id 'q1')"),
        ([sol("q1", "5")], [{"id": "q1", "answer_value": "5", "ref_id": ""}],
         "submission: missing column(s) explanation; required: id, answer_value, ref_id, "
         "explanation"),
        ([{"id": "q1", "answer": "5"}], [sub("q1", "5")],
         "solution: missing column(s) answer_value, ref_id; required: id, answer_value, ref_id"),
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


def test_empty_explanation_reads_as_nan_and_passes() -> None:
    score = score_frames([sol("q1", "5")], [sub("q1", "5", why=None)])  # type: ignore[arg-type]
    assert score.overall == 1.0


# --- files: read as pandas.read_csv + astype(str) ---------------------------------------------

SOLUTION_HEADER = "id,answer_value,answer_unit,ref_id\n"
SUBMISSION_HEADER = "id,answer_value,answer_unit,ref_id,explanation\n"


def test_rule_na_cells_become_nan_which_is_not_blank(tmp_path: Path) -> None:
    solution = write(tmp_path / "sol.csv", SOLUTION_HEADER + "".join(
        f"q{i},is_blank,,is_blank\n" for i in range(6)))  # fmt: skip
    submission = write(tmp_path / "sub.csv", SUBMISSION_HEADER + (
        "q0,NA,,is_blank,x\nq1,na,,is_blank,x\nq2,is_blank,,is_blank,x\nq3,,,is_blank,x\n"
        'q4,"N/A",,is_blank,x\nq5,n/a,,is_blank,x\n'))  # fmt: skip
    score = score_files(solution, submission)
    # NA, "" and "N/A" (quoted or not) are pandas NA: "nan", not blank; na, is_blank and
    # n/a... n/a is in pandas' list too: only na and is_blank count
    recalled = {q.id: q.answer_blank for q in score.questions}
    assert recalled == {"q0": False, "q1": True, "q2": True, "q3": False, "q4": False,
                        "q5": False}  # fmt: skip
    assert score.na_recall == pytest.approx(2 / 6)
    assert score.value_accuracy == 1.0  # blank truths: every value counts as correct
    (warning,) = score.warnings
    assert warning.startswith(f"{submission}: 4 cell(s) pandas reads as missing, scored as ")
    for cell in (
        "line 2 (id 'q0') answer_value 'NA'",
        "line 5 (id 'q3') answer_value ''",
        "line 6 (id 'q4') answer_value 'N/A'",
        "line 7 (id 'q5') answer_value 'n/a'",
    ):
        assert cell in warning  # fmt: skip
    assert "answer_unit" not in warning  # not scored, not warned about


@pytest.mark.parametrize("token", sorted(STR_NA_VALUES))
def test_every_pandas_default_na_string_reads_as_nan(tmp_path: Path, token: str) -> None:
    quoted = '"' + token + '"'
    solution = write(tmp_path / "sol.csv", SOLUTION_HEADER + "q1,x,,a\nq2,is_blank,,a\n")
    submission = write(tmp_path / "sub.csv", SUBMISSION_HEADER + f"q1,nan,,a,e\nq2,{quoted},,a,e\n")
    score = score_files(solution, submission)
    assert [q.answer_value for q in score.questions] == ["nan", "nan"]
    assert score.na_recall == 0.0 and len(score.warnings) == 1


def test_pandas_na_list_is_the_whole_default_list() -> None:
    assert frozenset({
        "-1.#IND", "1.#QNAN", "1.#IND", "-1.#QNAN", "#N/A N/A", "#N/A", "N/A", "n/a", "NA",
        "<NA>", "#NA", "NULL", "null", "NaN", "-NaN", "nan", "-nan", "", "None",
    }) == STR_NA_VALUES  # fmt: skip


def test_column_types_are_inferred_like_pandas(tmp_path: Path) -> None:
    # ids: an all-integer column reads 01 as 1 on both sides; a ref_id column of numbers
    # with a missing cell is float: 2021 -> "2021.0", which no longer equals the other's
    solution = write(tmp_path / "sol.csv", SOLUTION_HEADER + "01,5,,2021\n2,6,,\n")
    submission = write(tmp_path / "sub.csv", SUBMISSION_HEADER + "1,5,,2021,e\n02,6,,2021,e\n")
    score = score_files(solution, submission)
    assert score.n_matched == 2 and score.value_accuracy == 1.0
    assert [q.truth_ref_ids for q in score.questions] == [["2021.0"], ["nan"]]
    assert score.ref_overlap == 0.0
    floats = write(tmp_path / "floats.csv", SUBMISSION_HEADER + "1,5,,2021,e\n,6,,2021,e\n")
    with pytest.raises(ScoreInputError, match="none of its 2 id"):  # ids "1.0" and "nan"
        score_files(solution, floats)


def test_header_names_must_match_exactly(tmp_path: Path) -> None:
    submission = write(tmp_path / "sub.csv", " id,answer_value,ref_id,explanation\nq1,5,a,e\n")
    with pytest.raises(ScoreInputError) as err:
        score_files(WATTBOT, submission)
    assert str(err.value) == (
        f"{submission}: missing column(s) id; required: id, answer_value, ref_id, explanation "
        "(found ' id': names must match exactly)"
    )


def test_blank_lines_skipped_and_first_row_longer_shifts_columns(tmp_path: Path) -> None:
    solution = write(tmp_path / "sol.csv", "\n \n" + SOLUTION_HEADER + "q1,5,,a\n\t\nq2,6,,b\n")
    shifted = write(tmp_path / "sub.csv", SUBMISSION_HEADER + "0,q1,5,,a,e\n1,q2,6,,b,e\n")
    score = score_files(solution, shifted)
    assert score.overall == 1.0 and score.n_solution == 2
    assert "the first data row has 1 field(s) more than the header" in score.warnings[0]


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
    assert (score.n_matched, score.n_blank_truth, score.warnings) == (41, 2, [])


# id -> (answer_value, ref_id) replacing the truth's; hand-scored below.
PERTURBED = {
    "q009": ("4.31", None),  # wrong: 0.01 off
    "q054": ("about 64.70", None),  # right
    "q124": ("5.439 M", None),  # right
    "q078": ("0.05", None),  # right: inside [0.02, 0.1]
    "q263": ("79.95", None),  # wrong: below [80, 90] - 0.001
    "q166": ("gpt-3", None),  # right
    "q202": ("Sentiment analysis", None),  # wrong
    "q062": ("42", None),  # blank truth: value right, NA missed
    "q164": ("N/A", None),  # blank truth answered N/A: pandas reads "nan", NA missed
    "q075": ("TRUE", "['wu2021b']"),  # right; ref 1/2
    "q272": (None, "['dodge2022','li2025b']"),  # ref 1/3
    "q003": (None, ""),  # ref: "" reads as "nan", an id of its own: 0
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
    assert score.na_recall == 0.0
    assert score.overall == pytest.approx(0.75 * 37 / 40 + 0.15 * (40 - 0.5 - 2 / 3 - 1) / 40)
    wrong = sorted(q.id for q in score.questions if not q.value_correct)
    assert wrong == ["q009", "q202", "q263"]
    (warning,) = score.warnings
    assert "(id 'q003') ref_id ''" in warning and "(id 'q164') answer_value 'N/A'" in warning


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
    empty = write(tmp_path / "empty.csv", "\n  \n")
    assert error(WATTBOT, empty) == f"{empty}: cannot read: empty file, expected a CSV header row"
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"id,answer_value\n\xff\xfe\n")
    assert error(WATTBOT, binary).startswith(f"{binary}: cannot read: 'utf-8' codec")
    header_only = write(tmp_path / "header.csv", "id,answer_value,ref_id\n")
    assert error(WATTBOT, header_only) == (
        f"{header_only}: missing column(s) explanation; required: id, answer_value, ref_id, "
        "explanation"
    )
    assert error(header_only, good) == f"{header_only}: no data rows"
    spaces = write(
        tmp_path / "spaces.csv", SUBMISSION_HEADER + 'q009,4.3,,x,ok\n\nq054,64.7,,x," "\n'
    )
    assert error(WATTBOT, spaces) == (
        f"{spaces}:4: explanation: only whitespace (id 'q054'); every submission row needs a "
        "non-empty explanation"
    )
    long_row = write(tmp_path / "long.csv", SUBMISSION_HEADER + "q009,4.3,,x,ok\nq054,1,,x,ok,z\n")
    assert error(WATTBOT, long_row) == (
        f"{long_row}: cannot read: line 3: 6 fields, expected at most 5 (as pandas, which "
        "rejects the file)"
    )
    unclosed = write(tmp_path / "unclosed.csv", SUBMISSION_HEADER + 'q009,4.3,,x,"ok\nq054,1\n')
    assert error(WATTBOT, unclosed) == (
        f"{unclosed}: cannot read: line 2: a quoted field is not closed before the end"
    )
    other = write(tmp_path / "other.csv", "\ufeffid,answer_value,ref_id,explanation\nz1,4.3,x,ok\n")
    assert error(WATTBOT, other) == f"{other}: none of its 1 id(s) matches one of the 41 id(s) " \
        f"in {WATTBOT}"  # fmt: skip
