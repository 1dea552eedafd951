"""The ``wattbot`` task end to end: SmolLM2 through llama.cpp, submission.csv, the scorer."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import DATA, PlanWriter, run_cli

WATTBOT = DATA / "wattbot_train_QA.csv"


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _run(
    tmp_path: Path, write_plan: PlanWriter, options: dict[str, Any], limit: int
) -> tuple[Path, str]:
    plan = write_plan(
        tasks=[{"name": "wattbot", "options": options}], generation={"temperature": 0.0,
        "max_tokens": 48, "seed": 7},
    )  # fmt: skip
    out = tmp_path / "out"
    proc = run_cli("run", str(plan), "--output", str(out), "--limit", str(limit), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return out, proc.stdout


def _check_against_scorer(tmp_path: Path, out: Path, limit: int) -> dict[str, Any]:
    (master,) = _read_csv(out / "master_results.csv")
    assert master["quality_metric"] == "overall"
    run_dir = out / "runs" / master["run_id"]
    submission = run_dir / "submission.csv"
    rows = _read_csv(submission)
    assert list(rows[0]) == ["id", "answer_value", "answer_unit", "ref_id", "explanation"]
    truth = _read_csv(WATTBOT)[:limit]
    assert [r["id"] for r in rows] == [t["id"] for t in truth]
    assert all(r["explanation"].strip() for r in rows)
    solution = tmp_path / "solution.csv"  # the scorer joins inner: the same ids only
    with solution.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, list(truth[0]))
        writer.writeheader()
        writer.writerows(truth)
    proc = run_cli("score", "wattbot", "--solution", str(solution), "--submission",
                   str(submission), "--json", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    scored = json.loads(proc.stdout)
    assert scored["n_matched"] == limit
    assert float(master["quality_score"]) == pytest.approx(scored["overall"], abs=1e-9)
    return {"run_dir": run_dir, "scored": scored}


def test_oracle_passages_run_is_labelled(tmp_path: Path, write_plan: PlanWriter) -> None:
    options = {"questions_file": str(WATTBOT), "corpus": "oracle_passages", "top_k": 2}
    out, stdout = _run(tmp_path, write_plan, options, limit=3)
    checked = _check_against_scorer(tmp_path, out, 3)
    (master,) = _read_csv(out / "master_results.csv")
    assert master["retrieval_corpus"] == "oracle_passages"
    summary = json.loads((checked["run_dir"] / "summary.json").read_text())["summary"]
    assert summary["retrieval_corpus"] == "oracle_passages"
    text = " ".join(stdout.split())
    assert "wattbot (oracle_passages)" in text and "its score is an upper bound" in text
    records = [
        json.loads(x) for x in (checked["run_dir"] / "results.jsonl").read_text().splitlines()
    ]
    assert len(records) == 3
    for record in records:
        scores = record["scores"]
        assert len(scores["retrieved"]) == 2 and scores["retrieved"][0]["doc_id"]
        assert scores["value_correct"] in (0, 1) and 0.0 <= scores["ref_score"] <= 1.0
        assert "Documents:\n[" in record["messages"][-1]["content"]
    # the oracle passages put q003's own supporting material first
    assert records[0]["scores"]["retrieved"][0]["doc_id"] == "chung2025"
    # Grounding figures per sample (scoring/coverage.py): q003's gold ref is retrieved.
    assert records[0]["scores"]["retrieval_recall"] == 1.0
    for record in records:
        cov = record["scores"]["coverage_score"]
        assert cov is None or 0.0 <= cov <= 1.0
    assert "retrieval_recall" in summary["scores"]


def test_default_run_is_closed_book(tmp_path: Path, write_plan: PlanWriter) -> None:
    out, stdout = _run(tmp_path, write_plan, {}, limit=2)  # shipped questions
    checked = _check_against_scorer(tmp_path, out, 2)
    (master,) = _read_csv(out / "master_results.csv")
    assert master["retrieval_corpus"] == "closed-book"
    assert "wattbot (closed-book)" in " ".join(stdout.split())
    record = json.loads((checked["run_dir"] / "results.jsonl").read_text().splitlines()[0])
    assert "retrieved" not in record["scores"]
    assert "Documents:" not in record["messages"][-1]["content"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"mode": "open_book"}, "mode 'open_book': mode is replaced by corpus"),
        ({"corpus": "gold"}, "tasks[0].options.corpus"),
        ({"corpus": "oracle_passages", "corpus_dir": "docs"}, "give one"),
        ({"retriever": "tfidf"}, "retriever"),
        ({"top_k": 0}, "top_k"),
        ({"questions_file": "missing.csv"}, "cannot read questions file"),
        ({"questions_file": "bad.csv"}, "bad.csv:1: missing column(s) question"),
        ({"questions_file": "dup.csv"}, "dup.csv:3: field 'id': duplicate 'q1'"),
        ({"corpus_dir": "nowhere"}, "corpus_dir is not a folder"),
    ],
)
def test_bad_options_exit_2(
    tmp_path: Path, write_plan: PlanWriter, options: dict[str, Any], message: str
) -> None:
    (tmp_path / "bad.csv").write_text("id,answer_value,ref_id\nq1,1,a\n")
    (tmp_path / "dup.csv").write_text("id,question,answer_value,ref_id\nq1,Q?,1,a\nq1,Q?,2,b\n")
    plan = write_plan(tasks=[{"name": "wattbot", "options": options}])
    proc = run_cli("run", str(plan), "--output", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
