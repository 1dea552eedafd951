"""Categories from a prompt file's column: kept per sample, exported, grouped in
summary.json (real embedded model)."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import PlanWriter, run_cli


def test_category_column_kept_exported_grouped(tmp_path: Path, write_plan: PlanWriter) -> None:
    prompts = tmp_path / "industry.csv"
    prompts.write_text("id,prompt,industry\nr1,Name a shop.,retail\nf1,Name a bank.,finance\n"
                       "r2,Name a fruit.,retail\n")  # fmt: skip
    task = {"name": "textgen",
            "options": {"prompts_file": str(prompts), "category_field": "industry"}}  # fmt: skip
    plan, out = write_plan(max_tokens=4, tasks=[task]), tmp_path / "out"
    proc = run_cli("run", str(plan), "-o", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    exported = run_cli("export", "samples", "-o", str(out), "-f", "jsonl", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    records = [json.loads(x) for x in (out / "exports" / "samples.jsonl").read_text().splitlines()]
    assert sorted((r["question"], r["category"]) for r in records) == [
        ("f1", "finance"), ("r1", "retail"), ("r2", "retail")]  # fmt: skip
    (summary_file,) = (out / "runs").glob("*/summary.json")
    groups = json.loads(summary_file.read_text())["summary"]["by_category"]
    assert {k: v["samples"] for k, v in groups.items()} == {"finance": 1, "retail": 2}
    assert groups["retail"]["success_rate"] == 1 and groups["retail"]["avg_latency_seconds"] > 0
