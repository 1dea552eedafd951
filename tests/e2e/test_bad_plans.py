"""Bad plans: one line naming file, line and field; exit 2; nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_cli

GOOD_MODEL = "models:\n  - name: smollm2\n    backend: llamacpp\n"
GOOD_TASK = "tasks:\n  - name: textgen\n"

CASES = {
    "syntax": (
        GOOD_MODEL + GOOD_TASK + "generation:\n  temperature: [0.1\n",
        r"plan.yaml:8:1: invalid YAML: expected ',' or '\]'.*flow sequence at line 7",
    ),
    "bad_indent": (
        GOOD_MODEL + "  backend: x\n" + GOOD_TASK,
        r"plan.yaml:4:\d+: invalid YAML",
    ),
    "unknown_field": (
        GOOD_MODEL + "    temprature: 0.5\n" + GOOD_TASK,
        # Only fields a user sets: not supported, skip_reason, warnings, source.
        r"^(?!.*\b(supported|skip_reason|warnings|source)\b)"
        r".*plan.yaml:4: models\[0\].temprature: unknown field 'temprature'; valid fields: name, "
        r"id, backend, options, .*, dtype, price_input_per_1m, price_output_per_1m",
    ),
    "wrong_type": (
        GOOD_MODEL + GOOD_TASK + "generation:\n  max_tokens: lots\n",
        r"plan.yaml:7: generation.max_tokens: Input should be a valid integer.*'lots'",
    ),
    "bad_backend_option": (
        GOOD_MODEL + "    options:\n      n_ctx: -5\n" + GOOD_TASK,
        r"plan.yaml:5: models\[0\].options.n_ctx: Input should be greater than or equal to 64",
    ),
    "unknown_backend": (
        "models:\n  - name: x\n    backend: nosuch\n" + GOOD_TASK,
        r"plan.yaml:3: models\[0\].backend: unknown backend 'nosuch'; valid: .*llamacpp, openai",
    ),
    "unknown_task": (
        GOOD_MODEL + "tasks:\n  - name: nosuch\n",
        r"plan.yaml:5: tasks\[0\].name: unknown task 'nosuch'; valid: code_io, custom, humaneval, "
        r"repo_task, textgen, wattbot or an importable 'package.module:ClassName'",
    ),
    "missing_models": (GOOD_TASK, r"plan.yaml:1: models: no models: give .models. or a .catalog."),
    "duplicate_model": (
        GOOD_MODEL + "  - name: smollm2\n" + GOOD_TASK,
        r"plan.yaml:4: models\[1\].name: duplicate name 'smollm2'",
    ),
    "not_a_mapping": ("- just\n- a list\n", r"plan.yaml:1: expected a mapping"),
    "unknown_carbon_region": (
        GOOD_MODEL + GOOD_TASK + "energy:\n  carbon_region: XX\n",
        r"plan.yaml:7: energy.carbon_region: .*unknown region 'XX'; valid: .*FR, .*WORLD",
    ),
    "missing_stars_reference": (
        GOOD_MODEL + GOOD_TASK + "energy:\n  stars_reference: ref.csv\n",
        r"plan.yaml:7: energy.stars_reference: .*ref.csv: cannot read stars reference",
    ),
    "missing_prompts_file": (
        GOOD_MODEL + "tasks:\n  - name: textgen\n    options:\n      prompts_file: nope.jsonl\n",
        r"nope.jsonl: cannot read dataset file",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_plan_is_one_line_exit_2_nothing_written(tmp_path: Path, case: str) -> None:
    import re

    text, pattern = CASES[case]
    plan = tmp_path / "plan.yaml"
    plan.write_text(text)
    out = tmp_path / "out"
    proc = run_cli("run", str(plan), "--output", str(out), cwd=tmp_path, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    assert re.search(pattern, lines[0]), lines[0]
    assert "Traceback" not in proc.stderr
    assert not out.exists()


def test_missing_plan_file(tmp_path: Path) -> None:
    proc = run_cli("run", "absent.yaml", "--output", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: absent.yaml: file not found"
    assert not (tmp_path / "out").exists()


def test_bad_plan_keeps_earlier_results(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "master_results.csv").write_text("earlier\n")
    plan = tmp_path / "plan.yaml"
    plan.write_text(GOOD_MODEL + GOOD_TASK + "limit: 0\n")
    proc = run_cli("run", str(plan), "--output", str(out), cwd=tmp_path)
    assert proc.returncode == 2
    assert "limit" in proc.stderr
    assert (out / "master_results.csv").read_text() == "earlier\n"
    assert sorted(p.name for p in out.iterdir()) == ["master_results.csv"]


def test_help_explains_every_command(tmp_path: Path) -> None:
    top = run_cli("--help", cwd=tmp_path)
    assert top.returncode == 0 and "run" in top.stdout and "example-plan" in top.stdout
    run = run_cli("run", "--help", cwd=tmp_path)
    for flag in ("--model", "--limit", "--smoke", "--dry-run", "--output", "--fresh", "--timeout"):
        assert flag in run.stdout
    example = run_cli("example-plan", cwd=tmp_path)
    assert example.returncode == 0 and "models:" in example.stdout


def test_task_selects_the_plans_benchmark_tasks(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(GOOD_MODEL + GOOD_TASK + "  - name: wattbot\n")
    out = tmp_path / "out"
    proc = run_cli("run", str(plan), "--dry-run", "--task", "wattbot", "-o", str(out),
                   cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if "smollm2" in line]
    assert len(rows) == 1 and "wattbot" in rows[0]
    assert "1 more run(s) filtered out" in proc.stdout
    both = run_cli("run", str(plan), "--dry-run", "--task", "wattbot", "--task", "textgen",
                   "-o", str(out), cwd=tmp_path)  # fmt: skip
    assert len([line for line in both.stdout.splitlines() if "smollm2" in line]) == 2

    unknown = run_cli("run", str(plan), "--task", "text_gen", "-o", str(out), cwd=tmp_path)
    assert unknown.returncode == 2
    assert unknown.stderr == (
        f"error: --task 'text_gen': not a task of {plan}; its tasks: textgen, wattbot\n"
    )
    assert not out.exists()
