"""The ``code_io`` task: samples, scoring in the sandbox and pass@k in process; a real run
on SmolLM2 whose solutions.jsonl, placed in a checkpoint folder, rescores through
``score code`` to the run's pass@1."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import run_cli
from test_cli_run import read_master

from fleetbench.backends.base import GenerationResult
from fleetbench.errors import ConfigError
from fleetbench.tasks.code_io import CodeIOOptions, CodeIOTask

PROBLEMS = [
    {"problem_id": "sum", "statement": "Read two integers a and b; print a + b.",
     "tests": [{"input": "1 2\n", "output": "3"}, {"input": "5 5\n", "output": "10"}]},
    {"problem_id": "echo", "tests": [{"input": "hi\n", "output": "hi"}]},
]  # fmt: skip


def _problems(tmp_path: Path) -> Path:
    path = tmp_path / "problems.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in PROBLEMS))
    return path


def test_samples_score_aggregate_and_solutions_file(tmp_path: Path) -> None:
    task = CodeIOTask(CodeIOOptions(problems_file=_problems(tmp_path), n_samples=2))
    samples = task.samples()
    assert [s.id for s in samples] == ["sum#0", "sum#1", "echo#0", "echo#1"]
    assert "Read two integers" in task.messages(samples[0], None)[0].content
    assert "Example input:\n```\nhi\n```" in samples[2].prompt  # no statement: the first test
    good = "Here you go:\n```python\na, b = map(int, input().split())\nprint(a + b)\n```\nDone."
    texts = [good, "print(3)", "```python\nprint(input())\n", ""]
    results = [GenerationResult(index=i, text=t) for i, t in enumerate(texts[:3])]
    results.append(GenerationResult(index=3, text="", error="backend failed"))
    scores = [task.score(s, r) for s, r in zip(samples, results, strict=True)]
    assert [(s["passed"], s["verdict"]) for s in scores] == [
        (1, "accepted"), (0, "wrong_answer"), (1, "accepted"), (0, "error")]  # fmt: skip
    assert scores[1]["tests_passed"] == 1
    assert CodeIOTask.aggregate_scores([*scores, None]) == {
        "pass@1": 0.5, "passed": 2.0, "problems": 2.0}  # fmt: skip
    records = [{"sample_index": s.index, "sample_id": s.id, "answer_text": r.text,
                "error": r.error, "scores": sc}
               for s, r, sc in zip(samples, results, scores, strict=True)]  # fmt: skip
    lines = [json.loads(x) for x in CodeIOTask.run_files(records)["solutions.jsonl"].splitlines()]
    assert [(x["problem_id"], x["code"]) for x in lines] == [
        ("sum", "a, b = map(int, input().split())\nprint(a + b)\n"), ("sum", "print(3)\n"),
        ("echo", "print(input())\n"), ("echo", "")]  # fmt: skip
    with pytest.raises(ConfigError, match="problem_ids: unknown problem 'nope'"):
        CodeIOTask(CodeIOOptions(problems_file=_problems(tmp_path), problem_ids=["nope"])).samples()
    with pytest.raises(ConfigError, match="the local checker runs Python only"):
        CodeIOTask(CodeIOOptions(problems_file=_problems(tmp_path), language="c++")).samples()


def test_plan_run_and_score_code_agree(tmp_path: Path) -> None:
    plan = {
        "name": "code-io",
        "models": [{"name": "smollm2", "backend": "llamacpp", "model_class": "A",
                    "reasoning_state": "Off (N/A)"}],
        "tasks": [{"name": "code_io", "options": {"problems_file": str(_problems(tmp_path))}}],
        "generation": {"temperature": 0.0, "max_tokens": 64, "seed": 7},
    }  # fmt: skip
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(plan, sort_keys=False))
    out = tmp_path / "out"
    proc = run_cli("run", str(path), "--output", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    (row,) = read_master(out)
    assert row["status"] == "completed" and row["quality_metric"] == "pass@1"
    solutions = out / "runs" / row["run_id"] / "solutions.jsonl"
    assert [json.loads(x)["problem_id"] for x in solutions.read_text().splitlines()] == [
        "sum", "echo"]  # fmt: skip
    (tmp_path / "sweep/checkpoint-1").mkdir(parents=True)
    shutil.copy(solutions, tmp_path / "sweep/checkpoint-1/solutions.jsonl")
    proc = run_cli("score", "code", "--solutions-dir", str(tmp_path / "sweep"), "-o",
                   str(tmp_path / "scored"), "--problems", str(tmp_path / "problems.jsonl"),
                   cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (record,) = json.loads((tmp_path / "scored/batch_eval_results.json").read_text())
    assert record["pass@k"]["1"] == pytest.approx(float(row["quality_score"]))
