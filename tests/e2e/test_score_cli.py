"""``fleetbench score wattbot`` through the real CLI (a subprocess each; no model)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from conftest import DATA, run_cli

WATTBOT = DATA / "wattbot_train_QA.csv"


def _submission(path: Path, changes: dict[str, str]) -> Path:
    """The solution's own answers as a submission, with some answer_values replaced."""
    with WATTBOT.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    columns = ["id", "answer_value", "answer_unit", "ref_id", "explanation"]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            value = changes.get(row["id"], row["answer_value"])
            writer.writerow({**row, "answer_value": value, "explanation": "see ref"})
    return path


def test_json_and_table(tmp_path: Path) -> None:
    perfect = _submission(tmp_path / "perfect.csv", {})
    proc = run_cli("score", "wattbot", "--solution", str(WATTBOT), "--submission", str(perfect),
                   "--json", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)  # exactly one JSON object
    assert {k: data[k] for k in ("overall", "value_accuracy", "ref_overlap", "na_recall")} == {
        "overall": 1.0, "value_accuracy": 1.0, "ref_overlap": 1.0, "na_recall": 1.0,
    }  # fmt: skip
    assert data["n_matched"] == 41 and data["n_blank_truth"] == 2 and "questions" not in data

    # 4 of 41 values wrong, one of the two unanswerable questions answered: hand-computed
    wrong = _submission(tmp_path / "wrong.csv", {"q009": "5", "q054": "1", "q105": "x",
                                                 "q106": "is_blank", "q062": "7"})  # fmt: skip
    table = run_cli("score", "wattbot", "-s", str(WATTBOT), "--submission", str(wrong),
                    cwd=tmp_path)  # fmt: skip
    assert table.returncode == 0, table.stderr
    overall = 0.75 * 37 / 41 + 0.15 + 0.10 * 0.5
    for text in ("overall", f"{overall:.4f}", "value_accuracy", f"{37 / 41:.4f}", "ref_overlap",
                 "na_recall", "0.5000", "41 question(s) matched"):  # fmt: skip
        assert text in table.stdout, (text, table.stdout)

    details = run_cli("score", "wattbot", "-s", str(WATTBOT), "--submission", str(wrong),
                      "--json", "--details", cwd=tmp_path)  # fmt: skip
    questions = json.loads(details.stdout)["questions"]
    assert [q["id"] for q in questions if not q["value_correct"]] == ["q009", "q054", "q105",
                                                                      "q106"]  # fmt: skip


def test_na_cells_warned_on_stderr(tmp_path: Path) -> None:
    # an unanswerable question (q062) answered with an empty cell and one with "NA": both
    # read as "nan", not blank, so NA recall is 0; stdout stays one JSON object
    submission = _submission(tmp_path / "na.csv", {"q062": "", "q164": "NA"})
    proc = run_cli("score", "wattbot", "-s", str(WATTBOT), "--submission", str(submission),
                   "--json", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["na_recall"] == 0.0 and data["value_accuracy"] == 1.0
    (warning,) = proc.stderr.splitlines()
    assert warning.startswith(f"warning: {submission}: 2 cell(s) pandas reads as missing")
    assert "(id 'q062') answer_value ''" in warning and "(id 'q164') answer_value 'NA'" in warning
    assert data["warnings"] == [warning.removeprefix("warning: ")]


def test_bad_input_is_one_line_exit_2(tmp_path: Path) -> None:
    no_why = tmp_path / "no_why.csv"
    no_why.write_text('id,answer_value,ref_id,explanation\nq009,4.3,x,ok\nq054,64.7,x," "\n')
    no_col = tmp_path / "no_col.csv"
    no_col.write_text("id,answer_value\nq009,4.3\n")
    other = tmp_path / "other.csv"
    other.write_text("id,answer_value,ref_id,explanation\nz1,4.3,x,ok\n")
    cases = {
        no_why: f"error: {no_why}:3: explanation: only whitespace (id 'q054')",
        no_col: f"error: {no_col}: missing column(s) ref_id, explanation; required: id, "
        "answer_value, ref_id, explanation",
        other: f"error: {other}: none of its 1 id(s) matches",
        tmp_path / "nope.csv": f"error: {tmp_path / 'nope.csv'}: cannot read: No such file",
    }
    for submission, message in cases.items():
        proc = run_cli("score", "wattbot", "-s", str(WATTBOT), "--submission", str(submission),
                       "--json", cwd=tmp_path)  # fmt: skip
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith(message) and proc.stderr.count("\n") == 1, proc.stderr
        assert proc.stdout == ""


def test_help_explains_the_score(tmp_path: Path) -> None:
    proc = run_cli("score", "wattbot", "--help", cwd=tmp_path)
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    for phrase in ("0.75 x value_accuracy + 0.15 x ref_overlap + 0.10 x na_recall", "Jaccard",
                   "[lo,hi]", "--solution", "--submission", "--json", "exactly as the reference",
                   "scripts/score.py of the KohakuRAG_UI project", "quirks included",
                   "pandas.read_csv", "NOT blank", "[lo-0.001, hi+0.001]", "1,3 -> 13",
                   "'2.51 M'", "'300-1,000' stays text", "[chung2025] is the id"):  # fmt: skip
        assert phrase in text, phrase
    usage = run_cli("score", "wattbot", "--solution", str(WATTBOT), cwd=tmp_path)
    assert usage.returncode == 2 and "--submission" in usage.stderr
