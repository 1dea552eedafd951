"""Plan loading and expansion into runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetbench.errors import PlanError
from fleetbench.runner.plan import load_plan

PLAN = """\
name: sweep
models:
  - name: a
    options: {model_path: weights/a.gguf}
  - name: b
    generation: {max_tokens: 5}
tasks:
  - name: textgen
    options: {prompts_file: data/p.jsonl}
    generation: {max_tokens: 7, top_p: 0.9}
generation: {temperature: 0.2, max_tokens: 30}
settings:
  - label: cold
  - label: warm
    generation: {temperature: 0.8}
output: results
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    return path


def test_expands_models_x_tasks_x_settings(tmp_path: Path) -> None:
    loaded = load_plan(write(tmp_path, PLAN))
    runs = loaded.runs
    assert len(runs) == 4
    assert [(r.model.name, r.settings_label) for r in runs] == [
        ("a", "cold"),
        ("a", "warm"),
        ("b", "cold"),
        ("b", "warm"),
    ]
    # precedence: plan < task < model < settings variant
    a_cold, a_warm, b_cold, b_warm = (r.generation for r in runs)
    assert (a_cold.temperature, a_cold.max_tokens, a_cold.top_p) == (0.2, 7, 0.9)
    assert a_warm.temperature == 0.8
    assert (b_cold.max_tokens, b_warm.temperature) == (5, 0.8)
    assert a_cold.repeat_penalty == 1.0 and a_cold.seed == 42  # explicit defaults
    # relative paths are relative to the plan file
    assert runs[0].backend_options["model_path"] == str(tmp_path / "weights/a.gguf")
    assert runs[0].task_options["prompts_file"] == str(tmp_path / "data/p.jsonl")
    assert loaded.plan.output == tmp_path / "results"


def test_run_ids_are_stable_readable_and_distinct(tmp_path: Path) -> None:
    first = [r.run_id for r in load_plan(write(tmp_path, PLAN)).runs]
    again = [r.run_id for r in load_plan(write(tmp_path, PLAN + "limit: 3\ntimeout_s: 9\n")).runs]
    assert first == again  # limit and timeout do not change a run's identity
    assert len(set(first)) == 4
    assert first[1].startswith("a__textgen__warm__")
    changed = PLAN.replace("temperature: 0.8", "temperature: 0.9")
    assert [r.run_id for r in load_plan(write(tmp_path, changed)).runs][1] != first[1]


def test_demo_plan_is_valid() -> None:
    loaded = load_plan(None)
    assert [r.model.name for r in loaded.runs] == [
        "SmolLM2-135M-Instruct",
        "SmolLM2-135M-Instruct (llama.cpp server)",
    ]
    assert loaded.runs[0].task.name == "textgen"


def test_errors_name_the_line_of_nested_fields(tmp_path: Path) -> None:
    bad = PLAN.replace("    generation: {temperature: 0.8}", "    generation: {temperature: -1}")
    with pytest.raises(PlanError, match=r"plan.yaml:15: settings\[1\].generation.temperature"):
        load_plan(write(tmp_path, bad))
    bad = PLAN.replace("  - label: cold\n", "  - label: cold\n    colour: red\n")
    with pytest.raises(
        PlanError,
        match=r"plan.yaml:14: settings\[0\].colour: unknown field "
        r"'colour'; valid fields: label, generation",
    ):
        load_plan(write(tmp_path, bad))
    with pytest.raises(PlanError, match=r"plan.yaml:1: expected a mapping .* got empty file"):
        load_plan(write(tmp_path, ""))
