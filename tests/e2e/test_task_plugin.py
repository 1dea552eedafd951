"""A task plugin (``package.module:Class`` in a plan) end to end on SmolLM2: run, report,
ensemble; and a plugin path that names nothing is one line naming the plan's field."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from conftest import db_rows, run_cli
from test_cli_run import read_master

from fleetbench.tasks import task_names

PLUGIN = "plugin_tasks:EchoTask"
MODEL = {"name": "smollm2", "backend": "llamacpp", "model_class": "A",
         "reasoning_state": "Off (N/A)"}  # fmt: skip


def _plan(tmp_path: Path, tasks: list[dict[str, object]], **top: object) -> Path:
    plan = {"name": "plugin", "models": [MODEL], "tasks": tasks, **top}
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(plan, sort_keys=False))
    return path


def test_task_plugin_runs_reports_and_ensembles(tmp_path: Path) -> None:
    plan = _plan(
        tmp_path,
        [{"name": PLUGIN, "options": {"words": ["apple", "river", "stone"]}}],
        generation={"temperature": 0.0, "seed": 7},
        settings=[{"label": "cold"}, {"label": "warm", "generation": {"temperature": 0.9}}],
    )
    out = tmp_path / "out"
    proc = run_cli("run", str(plan), "--output", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr + proc.stdout

    rows = read_master(out)
    assert [(r["task"], r["settings_label"]) for r in rows] == [
        (PLUGIN, "cold"),
        (PLUGIN, "warm"),
    ]
    for row in rows:
        assert row["status"] == "completed" and row["successful_prompts"] == "3"
        assert row["quality_metric"] == "echo_rate"  # the plugin's primary_metric
        run_dir = out / "runs" / row["run_id"]
        records = [json.loads(x) for x in (run_dir / "results.jsonl").read_text().splitlines()]
        assert [r["sample_id"] for r in records] == ["w0", "w1", "w2"]
        echoed = [r["scores"]["echoed"] for r in records]
        assert echoed == [int(w in r["answer_text"].lower()) for w, r in
                          zip(["apple", "river", "stone"], records, strict=True)]  # fmt: skip
        # aggregate_scores, run_files and generation_defaults of the plugin at work
        assert float(row["quality_score"]) == pytest.approx(sum(echoed) / 3)
        tsv = (run_dir / "echoes.tsv").read_text().splitlines()
        assert tsv == [f"w{i}\t{e}" for i, e in enumerate(echoed)]
        (stored,) = db_rows(out, "SELECT config_json FROM runs WHERE run_id = ?", row["run_id"])
        assert json.loads(stored["config_json"])["generation"]["max_tokens"] == 6
        assert all(r["completion_tokens"] <= 6 for r in records)

    # Reports rebuild from the store alone: the plugin is resolved again, from its path.
    (out / "runs" / rows[0]["run_id"] / "echoes.tsv").unlink()
    proc = run_cli("report", "--output", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert (out / "runs" / rows[0]["run_id"] / "echoes.tsv").is_file()

    ids = ",".join(r["run_id"] for r in rows)
    proc = run_cli("ensemble", "-o", str(out), "--runs", ids, "--strategy", "majority",
                   cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr + proc.stdout
    (ensemble,) = db_rows(out, "SELECT * FROM runs WHERE backend = 'ensemble'")
    assert ensemble["task"] == PLUGIN
    samples = db_rows(out, "SELECT input_json FROM samples WHERE run_id = ?", ensemble["run_id"])
    keys = {a["key"] for s in samples for a in json.loads(s["input_json"])["ensemble"]["answers"]}
    assert keys <= {"echoed", "missed"}  # the plugin's read_answer hook, not the default


VALID = f"valid: {', '.join(task_names())} or an importable 'package.module:ClassName'"
BAD = {
    "no_module": (
        {"name": "no_such_module:Task"},
        "tasks[0].name: cannot import task 'no_such_module:Task': "
        f"No module named 'no_such_module'; {VALID}",
    ),
    "no_class": (
        {"name": "plugin_tasks:Missing"},
        "tasks[0].name: cannot import task 'plugin_tasks:Missing': "
        f"module 'plugin_tasks' has no attribute 'Missing'; {VALID}",
    ),
    "not_a_task": (
        {"name": "plugin_tasks:NoScoreTask"},
        "tasks[0].name: task 'plugin_tasks:NoScoreTask' lacks 'score'; see fleetbench.tasks.Task",
    ),
    "no_such_name": ({"name": "echo"}, f"tasks[0].name: unknown task 'echo'; {VALID}"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_plugin_path_is_one_line_naming_the_field(tmp_path: Path, case: str) -> None:
    task, message = BAD[case]
    plan = _plan(tmp_path, [task])
    out = tmp_path / "out"
    proc = run_cli("run", str(plan), "--output", str(out), cwd=tmp_path, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert re.fullmatch(rf"error: {re.escape(str(plan))}:\d+: {re.escape(message)}", line), line
    assert not out.exists()


def test_a_task_is_not_a_backend(tmp_path: Path) -> None:
    plan = _plan(tmp_path, [{"name": "textgen"}])
    text = plan.read_text().replace("backend: llamacpp", f"backend: {PLUGIN}")
    plan.write_text(text)
    proc = run_cli("run", str(plan), "--output", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert (
        f"models[0].backend: backend '{PLUGIN}' lacks 'load', 'generate', 'close'; "
        "see fleetbench.backends.Backend" in proc.stderr
    )
