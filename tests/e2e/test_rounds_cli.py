"""``fleetbench run --repeat K`` on the real embedded model: K rounds stored, the master
CSV keeps one row per run aggregated over them, re-running skips completed rounds."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from conftest import PlanWriter, db_rows, run_cli


def test_repeat_stores_rounds_and_aggregates(tmp_path: Path, write_plan: PlanWriter) -> None:
    plan, out = write_plan(max_tokens=4), tmp_path / "out"
    first = run_cli("run", str(plan), "-o", str(out), "--limit", "2", cwd=tmp_path)
    assert first.returncode == 0, first.stderr + first.stdout
    proc = run_cli("run", str(plan), "-o", str(out), "--limit", "2", "--repeat", "3", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    keys = db_rows(out, "SELECT round, sample_index FROM samples ORDER BY round, sample_index")
    assert [tuple(k) for k in keys] == [(r, i) for r in (1, 2, 3) for i in (0, 1)]
    # Round 1 was stored by the first batch and kept: rounds 2-3 came from one attempt.
    attempts = db_rows(out, "SELECT rounds FROM attempts ORDER BY attempt")
    assert [json.loads(a["rounds"]) for a in attempts] == [[1], [1, 2, 3]]
    round1 = db_rows(out, "SELECT attempt FROM samples WHERE round = 1")
    assert {r["attempt"] for r in round1} == {1}

    with open(out / "master_results.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert (row["rounds"], row["total_prompts"], row["successful_prompts"]) == ("3", "6", "6")
    lo, hi = (
        float(row["round_p50_latency_min_seconds"]),
        float(row["round_p50_latency_max_seconds"]),
    )
    assert 0 < lo <= hi
    assert row["round_success_rate_min"] == row["round_success_rate_max"] == "1"
    results = (out / "runs" / row["run_id"] / "results.jsonl").read_text().splitlines()
    assert [json.loads(line)["round"] for line in results] == [1, 1, 2, 2, 3, 3]

    again = run_cli("run", str(plan), "-o", str(out), "--limit", "2", "--repeat", "3", cwd=tmp_path)
    assert again.returncode == 0 and "6/6 stored, rounds 1-3" in again.stdout
    assert len(db_rows(out, "SELECT 1 FROM samples")) == 6
