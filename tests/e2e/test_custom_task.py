"""The ``custom`` task: options, prompts and bad rows in process; real runs on SmolLM2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import run_cli
from test_cli_run import read_master

from fleetbench.backends.base import GenerationResult
from fleetbench.errors import ConfigError
from fleetbench.tasks.custom import CustomOptions, CustomTask

MC_ROWS = [
    {"id": "sky", "input": "What colour is the sky on a clear day?",
     "choices": ["green", "blue", "red"], "target": "blue"},
    {"id": "grass", "input": "What colour is grass?",
     "choices": ["green", "purple", "black"], "target": "A"},
    {"id": "snow", "input": "What colour is snow?",
     "choices": ["white", "orange", "pink"], "target": "white"},
    {"id": "blood", "input": "What colour is blood?",
     "choices": ["blue", "red", "grey"], "target": "B"},
]  # fmt: skip
EXACT_ROWS = [
    {"input": "Reply with the single word yes.", "target": "yes"},
    {"input": "What is 2 + 2? Reply with the number only.", "target": "4"},
    {"input": "Reply with the single word no.", "target": "no"},
    {"input": "Reply with the word cat.", "target": "cat"},
]


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _task(**options: Any) -> CustomTask:
    return CustomTask(CustomOptions.model_validate(options))


def _result(text: str, error: str | None = None) -> GenerationResult:
    return GenerationResult(index=0, text=text, error=error)


def test_multiple_choice_prompts_few_shot_and_scores(tmp_path: Path) -> None:
    data = _jsonl(tmp_path / "mc.jsonl", MC_ROWS)
    task = _task(file=str(data), scorer="multiple_choice", few_shot=1, system_prompt="Be brief.")
    samples = task.samples()
    assert [(s.index, s.id) for s in samples] == [(0, "grass"), (1, "snow"), (2, "blood")]
    assert samples[0].prompt == (
        "What colour is grass?\n\nA. green\nB. purple\nC. black\n\n"
        "Answer with the letter of the correct choice."
    )
    messages = task.messages(samples[0], "ignored: the task's own system prompt wins")
    assert [(m.role, m.content) for m in messages][:3] == [
        ("system", "Be brief."),
        ("user", task.samples()[0].prompt.replace("grass", "the sky on a clear day")
         .replace("A. green\nB. purple\nC. black", "A. green\nB. blue\nC. red")),
        ("assistant", "B"),
    ]  # fmt: skip
    assert messages[-1].content == samples[0].prompt
    assert task.score(samples[0], _result("A) green")) == {"correct": 1, "prediction": "A"}
    assert task.score(samples[0], _result("purple")) == {"correct": 0, "prediction": "B"}
    assert task.score(samples[2], _result("The answer is red")) == {
        "correct": 1, "prediction": "B"}  # fmt: skip
    assert task.score(samples[0], _result("", error="timeout")) == {
        "correct": 0, "prediction": None}  # fmt: skip


def test_few_shot_file_template_and_csv_choices(tmp_path: Path) -> None:
    data = tmp_path / "set.csv"
    data.write_text('input,target,choices\nQ1,x,"[""x"", ""y""]"\nQ2,y,"[""x"", ""y""]"\n')
    shots = _jsonl(
        tmp_path / "shots.jsonl", [{"input": "E1", "target": "y", "choices": ["x", "y"]}]
    )
    task = _task(file=str(data), scorer="multiple_choice", few_shot_file=str(shots),
                 prompt_template="Q: {input}\n{choices}\nA:")  # fmt: skip
    samples = task.samples()
    assert [s.id for s in samples] == ["0", "1"]
    assert samples[1].prompt == "Q: Q2\nA. x\nB. y\nA:"
    roles = [(m.role, m.content) for m in task.messages(samples[0], None)]
    assert roles == [("user", "Q: E1\nA. x\nB. y\nA:"), ("assistant", "B"),
                     ("user", "Q: Q1\nA. x\nB. y\nA:")]  # fmt: skip


def test_numeric_tolerance_and_aggregate(tmp_path: Path) -> None:
    data = _jsonl(tmp_path / "n.jsonl", [{"input": "pi?", "target": "3.14159"}])
    sample = _task(file=str(data), scorer="numeric").samples()[0]
    loose = _task(file=str(data), scorer="numeric", tolerance={"rel": 1e-3})
    assert loose.score(sample, _result("about 3.1416")) == {"correct": 1, "prediction": "3.1416"}
    strict = _task(file=str(data), scorer="numeric", tolerance=1e-9)
    assert strict.score(sample, _result("about 3.1416"))["correct"] == 0
    scores: list[dict[str, Any] | None] = [{"correct": 1}, {"correct": 0}, None, {"correct": 1}]
    assert CustomTask.aggregate_scores(scores) == {"accuracy": 0.5, "correct": 2.0}


@pytest.mark.parametrize(
    ("rows", "options", "pattern"),
    [
        ([{"target": "a"}], {}, r":1: field 'input' must be a non-empty string"),
        ([{"input": "q", "target": "a"}, {"input": "q"}], {}, r":2: field 'target' is required"),
        ([{"input": "q", "target": "x"}], {"scorer": "numeric"}, r"'target' 'x' is not a"),
        ([{"input": "q", "target": "("}], {"scorer": "regex"}, r"'target' is not a valid"),
        ([{"input": "q", "target": "a"}], {"scorer": "multiple_choice"},
         r":1: field 'choices' is required"),
        ([{"input": "q", "target": "z", "choices": ["a", "b"]}], {"scorer": "multiple_choice"},
         r":1: field 'target' 'z' is neither a choice nor its letter \(A-B\)"),
        ([{"input": "q", "target": "a", "choices": "a, b"}], {"scorer": "multiple_choice"},
         r":1: field 'choices' must be a JSON list"),
        ([{"input": "q", "target": "a"}], {"few_shot": 1}, r"no rows left to evaluate"),
        ([{"input": "q", "target": "a"}], {"prompt_template": "{question}"},
         r"prompt_template: unknown field \{question\}"),
    ],
)  # fmt: skip
def test_bad_rows_name_file_line_and_field(
    tmp_path: Path, rows: list[dict[str, Any]], options: dict[str, Any], pattern: str
) -> None:
    data = _jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(ConfigError, match=pattern) as info:
        _task(file=str(data), **options).samples()
    assert "\n" not in str(info.value)


def _plan(tmp_path: Path, tasks: list[dict[str, Any]], max_tokens: int = 8) -> Path:
    plan = {
        "name": "custom",
        "models": [{"name": "smollm2", "backend": "llamacpp", "model_class": "A",
                    "reasoning_state": "Off (N/A)"}],
        "tasks": tasks,
        "generation": {"temperature": 0.0, "max_tokens": max_tokens, "seed": 7},
    }  # fmt: skip
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(plan, sort_keys=False))
    return path


def test_runs_fill_quality_score(tmp_path: Path) -> None:
    mc = _jsonl(tmp_path / "mc.jsonl", MC_ROWS)
    exact = tmp_path / "exact.csv"
    exact.write_text("input,target\n" + "".join(f'"{r["input"]}",{r["target"]}\n'
                                                for r in EXACT_ROWS))  # fmt: skip
    plan = _plan(tmp_path, [
        {"name": "custom", "options": {"file": str(mc), "scorer": "multiple_choice"}},
        {"name": "custom", "options": {"file": str(exact), "scorer": "exact"}},
    ])  # fmt: skip
    out = tmp_path / "out"
    proc = run_cli("run", str(plan), "--output", str(out), "--limit", "3", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    rows = read_master(out)
    assert len(rows) == 2
    for row in rows:
        assert row["status"] == "completed"
        assert row["quality_metric"] == "accuracy"
        assert 0.0 <= float(row["quality_score"]) <= 1.0
        lines = (out / "runs" / row["run_id"] / "results.jsonl").read_text().splitlines()
        records = [json.loads(line) for line in lines]
        assert len(records) == 3
        assert all(set(r["scores"]) == {"correct", "prediction"} for r in records)
        accuracy = sum(r["scores"]["correct"] for r in records) / 3
        assert float(row["quality_score"]) == pytest.approx(accuracy)
    assert [r["sample_id"] for r in records] == ["0", "1", "2"]


def test_bad_row_exits_2_with_one_line(tmp_path: Path) -> None:
    data = tmp_path / "bad.csv"
    data.write_text("input,target\nq1,a\nq2,\n")
    plan = _plan(tmp_path, [{"name": "custom", "options": {"file": str(data)}}])
    proc = run_cli("run", str(plan), "--output", str(tmp_path / "out"), cwd=tmp_path, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{data}:3: field 'target' is required" in proc.stderr + proc.stdout
