"""``repo_task`` end to end through ``fleetbench run``: a scripted model solves two built-in
tasks (the success path, exact figures), another never acts (no_action), and SmolLM2
(the real model) meets a turn limit and ends cleanly with its reason."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import DATA, run_cli
from test_cli_run import read_master

from fleetbench.tasks.repo_agent import END_REASONS

REF = DATA / "repo_task_refs"
TYPO = [
    "Let me look at the README first.\n```bash\ncat README.md\n```",
    "```bash\nsed -i 's/^## Instalation$/## Installation/' README.md\n```",
    "ask_human: should I fix other words too?",
    "The heading is fixed.\nDONE",
]
SHOP = (REF / "add_validation" / "shop.py").read_text()
VALIDATION = [
    f"```bash\ncat > shop.py <<'EOF'\n{SHOP}EOF\n```",
    "```bash\npython -m unittest -q\n```",
    "```done\n```",
]


def _plan(
    tmp_path: Path, models: list[dict[str, Any]], options: dict[str, Any], max_tokens: int = 48
) -> Path:
    plan = {
        "name": "repo",
        "models": models,
        "tasks": [{"name": "repo_task", "options": options}],
        "generation": {"temperature": 0.0, "max_tokens": max_tokens, "seed": 7},
        "energy": {"idle_baseline_s": 0},
    }
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(plan, sort_keys=False))
    return path


def _samples(out: Path, run_id: str) -> list[dict[str, Any]]:
    lines = (out / "runs" / run_id / "results.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_scripted_model_solves_tasks_through_the_cli(tmp_path: Path) -> None:
    scripts = {"spelling mistake": TYPO, "input validation": VALIDATION}
    models = [
        {"name": "scripted", "backend": "scripted:ScriptedBackend",
         "options": {"scripts": scripts}},
        {"name": "mute", "backend": "scripted:ScriptedBackend",
         "options": {"scripts": {"": ["I am not sure what to do."] * 5}}},
    ]  # fmt: skip
    plan = _plan(tmp_path, models, {"tasks": ["fix_typo", "add_validation"]})
    out = tmp_path / "out"
    proc = run_cli("run", str(plan), "-o", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    rows = {r["model_name"]: r for r in read_master(out)}
    good, mute = rows["scripted"], rows["mute"]
    assert good["status"] == "completed" and good["quality_metric"] == "success_rate"
    assert float(good["quality_score"]) == 1.0 and float(mute["quality_score"]) == 0.0
    typo, shop = _samples(out, good["run_id"])
    t, s = typo["scores"], shop["scores"]
    assert (t["solved"], t["end_reason"], t["turns"], t["tool_calls"]) == (1, "done", 4, 2)
    assert t["actions"] == s["actions"] == "text"  # a backend without tool calling
    assert (t["human_interventions"], s["human_interventions"]) == (1, 0)
    assert (t["files_modified"], t["lines_added"], t["lines_removed"]) == (1, 1, 1)
    assert "-## Instalation\n+## Installation\n" in t["diff"]
    assert (s["solved"], s["end_reason"], s["turns"], s["tool_calls"]) == (1, "done", 3, 2)
    assert (s["files_modified"], s["lines_added"], s["lines_removed"]) == (1, 4, 0)
    assert s["check_status"] == "passed" and t["check_status"] == "passed"
    # Every turn's reply and every observation is stored with the sample.
    contents = [m["content"] for m in typo["messages"]]
    assert [m["role"] for m in typo["messages"]][-1] == "assistant"
    assert contents[-7:] == [TYPO[0], contents[-6], TYPO[1], contents[-4], TYPO[2],
                             contents[-2], TYPO[3]]  # fmt: skip
    assert contents[-6].startswith("exit code 0\n# greetlib")
    assert "decide yourself" in contents[-2]
    # Tokens are summed over the turns (the scripted model counts characters / 4).
    assert t["completion_tokens"] == sum(len(r) // 4 for r in TYPO)
    assert typo["completion_tokens"] == t["completion_tokens"]
    m1, _ = _samples(out, mute["run_id"])
    assert (m1["scores"]["end_reason"], m1["scores"]["turns"], m1["scores"]["solved"]) == (
        "no_action", 3, 0)  # fmt: skip
    assert m1["scores"]["files_modified"] == 0 and m1["scores"]["diff"] == ""
    # Repo-task rankings: only the run that solved something has per-success figures.
    assert "repo_task: " in proc.stdout and "fewest prompts per success): scripted" in proc.stdout
    with open(out / "report" / "comparison.csv", newline="") as f:
        ranks = {r["model_name"]: r for r in csv.DictReader(f)}
    assert ranks["scripted"]["rank_repo_fewest_prompts"] == "1"
    assert ranks["mute"]["rank_repo_fewest_prompts"] == ""
    page = (out / "report" / "index.html").read_text()
    assert "Most autonomous (fewest interventions per success)" in page
    assert '<p>diff</p><pre class="diff">--- a/README.md\n+++ b/README.md\n' in page


@pytest.mark.slow
def test_smollm2_on_a_repo_task_ends_cleanly_with_its_reason(tmp_path: Path) -> None:
    smollm2 = {"name": "smollm2", "backend": "llamacpp", "model_class": "A",
               "reasoning_state": "Off (N/A)"}  # fmt: skip
    plan = _plan(tmp_path, [smollm2], {"tasks": ["fix_typo"], "max_turns": 2}, max_tokens=24)
    out = tmp_path / "out"
    proc = run_cli("run", str(plan), "-o", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    (row,) = read_master(out)
    assert row["status"] == "completed" and row["quality_metric"] == "success_rate"
    (sample,) = _samples(out, row["run_id"])
    scores = sample["scores"]
    assert scores["end_reason"] in END_REASONS and scores["end_reason"] != "backend_error"
    assert scores["actions"] == "text"  # the embedded backend: plain-text actions
    assert 1 <= scores["turns"] <= 2 and scores["solved"] in (0, 1)
    assert scores["check_status"] in ("passed", "failed")
    replies = [m for m in sample["messages"] if m["role"] == "assistant"]
    assert len(replies) == scores["turns"] and sample["completion_tokens"] > 0
    assert scores["prompt_tokens"] == sample["prompt_tokens"] > 0


def test_a_bad_task_folder_stops_the_plan_with_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "tasks" / "broken"
    (folder / "repo").mkdir(parents=True)
    (folder / "task.md").write_text("---\ncheck: true\nmax_turns: lots\n---\nDo it.\n")
    models = [{"name": "scripted", "backend": "scripted:ScriptedBackend",
               "options": {"scripts": {}}}]  # fmt: skip
    plan = _plan(tmp_path, models, {"path": str(tmp_path / "tasks")})
    out = tmp_path / "out"
    proc = run_cli("run", str(plan), "-o", str(out), cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: {folder / 'task.md'}:3: max_turns: Input should be a valid integer, unable to "
        "parse string as an integer (got 'lots')"
    ]
    assert "Traceback" not in proc.stderr and not (out / "master_results.csv").exists()
