"""The energy estimate end to end on SmolLM2: labelled, never passed off as measured."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from conftest import PlanWriter, db_rows, run_cli
from hostmeters import host_meters


def test_estimate_is_labelled_and_unmeasured_gpu_says_why(
    tmp_path: Path, write_plan: PlanWriter
) -> None:
    host = host_meters()
    if host.rapl:
        pytest.skip("this host has RAPL: CPU energy is measured, not estimated")
    plan = write_plan(energy={"watts_per_core": 20.0, "idle_baseline_s": 0.5})
    out = tmp_path / "out"
    proc = run_cli("run", str(plan), "--output", str(out), "--limit", "2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr + proc.stdout

    with open(out / "master_results.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert row["energy_method"] == host.energy_method
    assert "estimate" in row["energy_method"].split("+")
    assert "rapl: " in row["energy_unmeasured_reason"]
    if host.gpu:  # GPUs are measured (and get an idle baseline); the CPU is estimated
        assert float(row["gpu_energy_gross_wh"]) > 0
        assert "gpu: " not in row["energy_unmeasured_reason"]
        assert float(row["idle_baseline_s"]) >= 0.5 and row["gpu_idle_w"] != ""
        gpu_wh = float(row["gpu_energy_wh"])
    else:
        assert row["gpu_energy_wh"] == "" and row["gpu_energy_gross_wh"] == ""  # never 0
        assert "gpu: " in row["energy_unmeasured_reason"]
        # No idle baseline for the estimate: it counts only the run's own CPU time.
        assert row["idle_baseline_s"] == ""
        gpu_wh = 0.0
    assert row["cpu_idle_w"] == ""  # the estimate never has an idle part
    cpu_wh = float(row["cpu_energy_wh"])
    assert cpu_wh + gpu_wh == pytest.approx(float(row["energy_wh"]), rel=1e-5)
    assert cpu_wh == pytest.approx(float(row["cpu_seconds"]) * 20.0 / 3600, rel=1e-3)

    samples = db_rows(out, "SELECT * FROM samples ORDER BY sample_index")
    assert len(samples) == 2
    for s in samples:
        assert s["energy_method"] == host.energy_method and s["energy_wh"] > 0
        assert (s["gpu_energy_wh"] is not None) == host.gpu
        assert s["cpu_energy_wh"] + (s["gpu_energy_wh"] or 0.0) == pytest.approx(s["energy_wh"])
    (attempt,) = db_rows(out, "SELECT energy_json FROM attempts")
    record = json.loads(attempt["energy_json"])
    (device,) = [d for d in record["devices"] if d["kind"] == "cpu"]
    assert device["method"] == "estimate"
    assert device["watts_per_core"] == 20.0
    assert device["watts_source"] == "plan energy.watts_per_core"
    assert set(record["unmeasured"]) == set(host.unmeasured)
    whole = record["window"]  # the whole-attempt window contains the sample windows
    assert whole["cpu_seconds"] >= sum(s["cpu_seconds"] for s in samples) - 0.02

    run_dir = out / "runs" / row["run_id"]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["attempts"][0]["energy"]["unmeasured"] == record["unmeasured"]
    assert summary["summary"]["energy_unmeasured_reason"] == row["energy_unmeasured_reason"]
    lines = [json.loads(x) for x in (run_dir / "results.jsonl").read_text().splitlines()]
    assert [x["cpu_energy_wh"] for x in lines] == [s["cpu_energy_wh"] for s in samples]
    assert [x["gpu_energy_wh"] for x in lines] == [s["gpu_energy_wh"] for s in samples]
