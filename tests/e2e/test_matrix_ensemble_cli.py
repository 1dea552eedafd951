"""``fleetbench matrix`` and ``fleetbench ensemble`` on runs of the real SmolLM2.

One results folder per module: a custom task (4 questions) at two settings (greedy and
hot), plus a second plan whose model stopped after 2 questions of it and of textgen.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import db_rows, run_cli
from test_cli_run import read_master

ROWS = [
    {"id": "yes", "input": "Reply with the single word yes.", "target": "yes"},
    {"id": "four", "input": "What is 2 + 2? Reply with the number only.", "target": "4"},
    {"id": "no", "input": "Reply with the single word no.", "target": "no"},
    {"id": "cat", "input": "Reply with the word cat.", "target": "cat"},
]
MODEL = {"name": "smollm2", "backend": "llamacpp", "model_class": "A",
         "reasoning_state": "Off (N/A)"}  # fmt: skip


def _plan(
    path: Path, models: list[dict[str, Any]], tasks: list[dict[str, Any]], **top: Any
) -> Path:
    plan = {"name": path.stem, "models": models, "tasks": tasks,
            "generation": {"temperature": 0.0, "max_tokens": 6, "seed": 7}, **top}  # fmt: skip
    path.write_text(yaml.safe_dump(plan, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("matrix")
    data = root / "questions.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    custom = {"name": "custom", "options": {"file": str(data), "scorer": "includes"}}
    settings = [{"label": "greedy"},
                {"label": "hot", "generation": {"temperature": 1.5, "seed": 3}}]  # fmt: skip
    out = root / "out"
    first = _plan(root / "plan.yaml", [MODEL], [custom], settings=settings)
    proc = run_cli("run", str(first), "--output", str(out), "--limit", "4", cwd=root)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    short = _plan(
        root / "short.yaml", [{**MODEL, "name": "smollm2-short"}], [custom, {"name": "textgen"}]
    )
    proc = run_cli("run", str(short), "--output", str(out), "--limit", "2", cwd=root)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return out


def _run_ids(out: Path, task: str) -> dict[str, str]:
    rows = db_rows(out, "SELECT run_id, model_name, settings_label FROM runs WHERE task = ? "
                   "AND backend != 'ensemble' ORDER BY seq", task)  # fmt: skip
    return {f"{r['model_name']}/{r['settings_label']}": r["run_id"] for r in rows}


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _one_line_error(proc: Any, pattern: str) -> None:
    assert proc.returncode == 2, proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and pattern in lines[0], lines


def test_matrix_of_the_stored_runs(results: Path) -> None:
    proc = run_cli("matrix", "--output", str(results), cwd=results.parent)
    _one_line_error(proc, "several tasks (custom, textgen); choose one with --task")

    proc = run_cli("matrix", "--output", str(results), "--task", "custom", cwd=results.parent)
    assert proc.returncode == 0, proc.stderr
    rows = _read_csv(results / "matrix_custom.csv")
    assert "4 question(s) x 3 run(s)" in proc.stdout
    runs = [("smollm2 [greedy]", "smollm2/greedy"), ("smollm2 [hot]", "smollm2/hot"),
            ("smollm2-short", "smollm2-short/")]  # fmt: skip
    assert list(rows[0]) == ["sample_id", "sample_index", "question", "target"] + [
        f"{label} {kind}" for label, _ in runs for kind in ("prediction", "correct")]  # fmt: skip
    assert [(r["sample_id"], r["sample_index"], r["question"], r["target"]) for r in rows] == [
        (q["id"], str(i), q["input"], q["target"]) for i, q in enumerate(ROWS)]  # fmt: skip

    ids = _run_ids(results, "custom")
    for label, key in runs:
        stored = {s["sample_id"]: s for s in db_rows(
            results, "SELECT * FROM samples WHERE run_id = ?", ids[key])}  # fmt: skip
        for row in rows:
            sample = stored.get(row["sample_id"])
            if sample is None:  # the short run stopped after 2 questions: empty cells
                assert key.startswith("smollm2-short") and row["sample_index"] in ("2", "3")
                assert row[f"{label} prediction"] == row[f"{label} correct"] == ""
                continue
            assert row[f"{label} prediction"] == sample["answer_text"].strip()
            correct = json.loads(sample["scores_json"])["correct"]
            assert row[f"{label} correct"] == str(correct)


def test_matrix_filters_and_textgen(results: Path) -> None:
    ids = _run_ids(results, "custom")
    target = results.parent / "picked.csv"
    proc = run_cli("matrix", "-o", str(results), "--runs", ids["smollm2/hot"][:20],
                   "--out", str(target), cwd=results.parent)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert list(_read_csv(target)[0])[-2:] == ["smollm2 [hot] prediction", "smollm2 [hot] correct"]

    proc = run_cli("matrix", "-o", str(results), "--task", "custom", "--model", "SHORT",
                   cwd=results.parent)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows = _read_csv(results / "matrix_custom.csv")
    assert len(rows) == 2 and list(rows[0])[-1] == "smollm2-short correct"

    proc = run_cli("matrix", "-o", str(results), "--task", "textgen", cwd=results.parent)
    assert proc.returncode == 0, proc.stderr
    rows = _read_csv(results / "matrix_textgen.csv")
    assert len(rows) == 2 and "target" not in rows[0]
    assert rows[0]["smollm2-short correct"] == "" and rows[0]["smollm2-short prediction"]


def test_ensemble_is_a_scored_run(results: Path) -> None:
    ids = _run_ids(results, "custom")
    members = [ids["smollm2/hot"], ids["smollm2/greedy"], ids["smollm2-short/"]]
    proc = run_cli("ensemble", "-o", str(results), "--runs", ",".join(members),
                   "--strategy", "majority", "--name", "vote3", cwd=results.parent)  # fmt: skip
    assert proc.returncode == 0, proc.stderr + proc.stdout
    (run,) = db_rows(results, "SELECT * FROM runs WHERE backend = 'ensemble'")
    assert (run["model_name"], run["task"], run["status"]) == ("vote3", "custom", "completed")
    assert json.loads(run["config_json"])["ensemble"]["members"] == members
    assert run["run_id"] in proc.stdout

    samples = db_rows(results, "SELECT * FROM samples WHERE run_id = ? ORDER BY sample_index",
                      run["run_id"])  # fmt: skip
    assert [s["sample_id"] for s in samples] == [q["id"] for q in ROWS]
    member_rows = {m: {s["sample_id"]: s for s in db_rows(
        results, "SELECT * FROM samples WHERE run_id = ?", m)} for m in members}  # fmt: skip
    for sample in samples:
        votes = [member_rows[m][sample["sample_id"]] for m in members
                 if sample["sample_id"] in member_rows[m]]  # fmt: skip
        provenance = json.loads(sample["input_json"])["ensemble"]
        chosen = member_rows[provenance["chosen"]][sample["sample_id"]]
        assert sample["answer_text"] == chosen["answer_text"]
        keys = Counter(a["key"] for a in provenance["answers"] if a["key"] is not None)
        assert len(provenance["agreeing"]) == max(keys.values())
        assert sample["completion_tokens"] == sum(v["completion_tokens"] for v in votes)
        assert sample["energy_wh"] == pytest.approx(sum(v["energy_wh"] for v in votes))
        assert json.loads(sample["scores_json"]) == json.loads(chosen["scores_json"])

    master = {r["run_id"]: r for r in read_master(results)}
    row = master[run["run_id"]]
    assert row["backend"] == "ensemble" and row["quality_metric"] == "accuracy"
    correct = [json.loads(s["scores_json"])["correct"] for s in samples]
    assert float(row["quality_score"]) == pytest.approx(sum(correct) / len(correct))
    assert (results / "runs" / run["run_id"] / "results.jsonl").is_file()

    proc = run_cli("matrix", "-o", str(results), "--task", "custom", cwd=results.parent)
    assert proc.returncode == 0, proc.stderr
    rows = _read_csv(results / "matrix_custom.csv")
    assert [r["vote3 [majority] prediction"] for r in rows] == [
        s["answer_text"].strip() for s in samples]  # fmt: skip


def test_ensemble_bad_input_exits_2(results: Path) -> None:
    ids = _run_ids(results, "custom")
    textgen = _run_ids(results, "textgen")
    cwd = results.parent
    proc = run_cli("ensemble", "-o", str(results), "--runs", ids["smollm2/hot"], "--runs",
                   "no-such-run", cwd=cwd)  # fmt: skip
    _one_line_error(proc, "unknown run id 'no-such-run'")
    proc = run_cli("ensemble", "-o", str(results), "--runs", ids["smollm2/hot"], "--runs",
                   textgen["smollm2-short/"], cwd=cwd)  # fmt: skip
    _one_line_error(proc, "an ensemble combines runs of one task; these mix tasks")
    proc = run_cli("ensemble", "-o", str(cwd / "nowhere"), "--runs", "a,b", cwd=cwd)
    _one_line_error(proc, "no results store")
    assert not (cwd / "nowhere").exists()


def test_report_rewrites_outputs_from_the_store(results: Path, tmp_path: Path) -> None:
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(results, out)
    before = read_master(out)
    (out / "master_results.csv").unlink()
    shutil.rmtree(out / "runs")
    proc = run_cli("report", "--output", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    after = read_master(out)
    assert [r["run_id"] for r in after] == [r["run_id"] for r in before]
    assert [r["total_completion_tokens"] for r in after] == [
        r["total_completion_tokens"] for r in before
    ]
    for row in after:
        run_dir = out / "runs" / row["run_id"]
        assert (run_dir / "summary.json").is_file() and (run_dir / "results.jsonl").is_file()
        # Only a running attempt writes these (README): a report cannot bring them back.
        assert not (run_dir / "run.log").exists() and not (run_dir / "job.json").exists()

    # Stars against a user's reference table: every textgen run of class A is rated by it.
    reference = tmp_path / "ref.csv"
    reference.write_text("task,model_class,wh_per_1000_queries\ntextgen,A,0\ntextgen,A,1e-9\n")
    proc = run_cli("report", "-o", str(out), "--stars-reference", str(reference), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rated = [r for r in read_master(out) if r["task"] == "textgen" and r["energy_stars"]]
    assert rated and all(r["energy_stars_basis"] == "reference" for r in rated)
    assert all(r["energy_stars"] == "1" for r in rated)  # far above the reference range

    proc = run_cli(
        "report", "-o", str(out), "--stars-reference", str(tmp_path / "no.csv"), cwd=tmp_path
    )
    _one_line_error(proc, "no.csv")
    proc = run_cli("report", "-o", str(tmp_path / "empty"), cwd=tmp_path)
    _one_line_error(proc, "no results store")
