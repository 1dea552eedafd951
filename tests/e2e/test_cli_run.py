"""The CLI end to end on the real embedded model."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
from conftest import PROMPTS, PlanWriter, db_rows, run_cli
from hostmeters import host_meters

from fleetbench.report import MASTER_COLUMNS

REQUIRED_PREFIX = [
    "model_name",
    "model_class",
    "task",
    "reasoning_state",
    "total_prompts",
    "successful_prompts",
    "failed_prompts",
    "total_duration_seconds",
    "avg_latency_seconds",
    "total_tokens",
    "total_prompt_tokens",
    "total_completion_tokens",
    "throughput_tokens_per_second",
    "gpu_energy_wh",
    "co2_emissions_g",
    "tokens_per_joule",
    "avg_energy_per_prompt_wh",
    "timestamp",
    "error_message",
]


def read_master(output: Path) -> list[dict[str, str]]:
    with open(output / "master_results.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_run_writes_consistent_outputs(tmp_path: Path, write_plan: PlanWriter) -> None:
    plan = write_plan(
        extra_models=[
            {"name": "smollm2-t05", "backend": "llamacpp", "generation": {"temperature": 0.5}}
        ]
    )
    out = tmp_path / "out"
    proc = run_cli("run", str(plan), "--output", str(out), "--limit", "4", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr + proc.stdout

    with open(out / "master_results.csv", newline="") as f:
        header = next(csv.reader(f))
    assert header[: len(REQUIRED_PREFIX)] == REQUIRED_PREFIX
    for extra in ("run_id", "backend", "avg_ttft_seconds", "energy_method", "status"):
        assert extra in header
    assert header == MASTER_COLUMNS

    rows = read_master(out)
    assert [r["model_name"] for r in rows] == ["smollm2", "smollm2-t05"]
    # Two runs: too few to rate against each other (and no reference): no stars, and why.
    assert {r["energy_stars"] for r in rows} == {""}
    for row in rows:
        assert row["status"] == "completed"
        assert int(row["total_prompts"]) == 4
        assert int(row["successful_prompts"]) + int(row["failed_prompts"]) == 4
        assert row["energy_method"] == host_meters().energy_method
        assert row["energy_scope"] == "in-process"
        if host_meters().gpu:
            assert float(row["gpu_energy_gross_wh"]) > 0
        else:
            assert row["gpu_energy_wh"] == ""  # no GPU: empty, never 0
        # Derived columns, CO2 at the default region's intensity, stars, disk size.
        per_prompt = float(row["avg_energy_per_prompt_wh"])
        assert float(row["wh_per_1000_queries"]) == pytest.approx(per_prompt * 1000, rel=1e-4)
        assert row["carbon_region"] == "WORLD"
        intensity = float(row["carbon_intensity_g_per_kwh"])
        assert float(row["co2_emissions_g"]) == pytest.approx(
            float(row["energy_wh"]) / 1000 * intensity, rel=1e-4
        )
        assert row["energy_stars_basis"] == ""
        assert "completed run(s) of textgen" in row["energy_stars_reason"]
        assert "at least 5" in row["energy_stars_reason"]
        assert int(row["model_disk_bytes"]) > 50_000_000  # the SmolLM2 GGUF
        assert row["model_disk_unmeasured_reason"] == ""
        assert float(row["avg_ttft_seconds"]) < float(row["avg_latency_seconds"])

        run_dir = out / "runs" / row["run_id"]
        samples = [
            json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()
        ]
        summary = json.loads((run_dir / "summary.json").read_text())
        stored = db_rows(
            out, "SELECT * FROM samples WHERE run_id = ? ORDER BY sample_index", row["run_id"]
        )
        assert (run_dir / "run.log").read_text().strip()

        assert [s["sample_index"] for s in samples] == [0, 1, 2, 3]
        assert [s["prompt"] for s in samples] == PROMPTS[:4]
        assert [s["output_text"] for s in samples] == [r["output_text"] for r in stored]
        completion = sum(s["completion_tokens"] for s in samples)
        prompt = sum(s["prompt_tokens"] for s in samples)
        assert completion == sum(r["completion_tokens"] for r in stored)
        assert int(row["total_completion_tokens"]) == completion
        assert int(row["total_prompt_tokens"]) == prompt
        assert int(row["total_tokens"]) == prompt + completion
        assert summary["summary"]["total_completion_tokens"] == completion
        assert summary["summary"]["energy_stars"] is None
        assert summary["summary"]["energy_stars_reason"] == row["energy_stars_reason"]
        assert summary["config"]["generation"]["max_tokens"] == 12
        assert summary["attempts"][0]["host"]["cpu_count"] == os.cpu_count()
        # SmolLM2 does not reason: the answer is the whole output, counted as such.
        assert [s["answer_text"] for s in samples] == [r["answer_text"] for r in stored]
        assert row["reasoning_tokens"] == "0"
        assert row["reasoning_energy_wh"] == "0"  # no reasoning: all energy is the answer's
        # Per-token figures use net GPU energy where a GPU is metered, else the run's.
        net_wh = row["gpu_energy_wh"] if host_meters().gpu else row["energy_wh"]
        assert float(row["answer_energy_wh"]) == pytest.approx(float(net_wh), rel=1e-4)
        assert int(row["answer_tokens"]) == completion
        for s in samples:
            assert s["answer_text"] == s["output_text"]
            assert s["reasoning_text"] is None and s["reasoning_tokens"] == 0
            assert 0 < s["completion_tokens"] <= 12
            assert s["output_text"].strip()
            assert s["error"] is None
            assert 0 < s["ttft_s"] < s["latency_s"]

    runs = db_rows(out, "SELECT * FROM runs")
    assert {r["status"] for r in runs} == {"completed"}
    assert json.loads(runs[1]["config_json"])["generation"]["temperature"] == 0.5
    batches = db_rows(out, "SELECT * FROM batches")
    assert len(batches) == 1 and batches[0]["status"] == "completed"
    assert "Results" in proc.stdout
    assert "no energy stars: " in proc.stdout


def test_rerun_skips_completed_and_extends_limit(tmp_path: Path, write_plan: PlanWriter) -> None:
    plan = write_plan(max_tokens=4)
    out = tmp_path / "out"
    assert run_cli("run", str(plan), "-o", str(out), "--smoke", cwd=tmp_path).returncode == 0
    first = db_rows(out, "SELECT sample_index, output_text, created_at FROM samples")
    assert len(first) == 1

    again = run_cli("run", str(plan), "-o", str(out), "--smoke", cwd=tmp_path)
    assert again.returncode == 0
    assert "completed (1/1 stored)" in again.stdout
    assert [
        tuple(r) for r in db_rows(out, "SELECT sample_index, output_text, created_at FROM samples")
    ] == [tuple(r) for r in first]

    more = run_cli("run", str(plan), "-o", str(out), "--limit", "3", cwd=tmp_path)
    assert more.returncode == 0, more.stderr
    rows = db_rows(out, "SELECT sample_index, attempt FROM samples ORDER BY sample_index")
    assert [(r[0], r[1]) for r in rows] == [(0, 1), (1, 2), (2, 2)]
    assert int(read_master(out)[0]["total_prompts"]) == 3

    fresh = run_cli("run", str(plan), "-o", str(out), "--limit", "2", "--fresh", cwd=tmp_path)
    assert fresh.returncode == 0
    rows = db_rows(out, "SELECT sample_index, attempt FROM samples ORDER BY sample_index")
    assert [(r[0], r[1]) for r in rows] == [(0, 1), (1, 1)]


def test_dry_run_loads_and_writes_nothing(tmp_path: Path, write_plan: PlanWriter) -> None:
    plan = write_plan(extra_models=[{"name": "other", "backend": "llamacpp"}])
    out = tmp_path / "out"
    proc = run_cli("run", str(plan), "-o", str(out), "--dry-run", "--model", "SMOL", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert not out.exists()
    assert "smollm2" in proc.stdout and "run" in proc.stdout
    # The run of "other" is filtered out: counted in the caption, not listed.
    assert "1 more run(s) filtered out" in proc.stdout
    assert "other" not in proc.stdout.split("Runs of this batch", 1)[1].split("filtered out")[0]


def test_model_filter_runs_only_matching(tmp_path: Path, write_plan: PlanWriter) -> None:
    plan = write_plan(extra_models=[{"name": "other", "backend": "llamacpp"}], max_tokens=4)
    out = tmp_path / "out"
    proc = run_cli("run", str(plan), "-o", str(out), "--smoke", "-m", "oth", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert [r["model_name"] for r in read_master(out)] == ["other"]

    none = run_cli("run", str(plan), "-o", str(out), "-m", "nomatch", cwd=tmp_path)
    assert none.returncode == 2
    assert "the filters match no model" in none.stderr


def test_failed_samples_and_failed_runs_are_recorded(
    tmp_path: Path, write_plan: PlanWriter
) -> None:
    plan = write_plan(
        extra_models=[
            {"name": "crashes", "backend": "fakebackends:CrashingBackend"},
            {
                "name": "flaky",
                "backend": "fakebackends:FlakyEchoBackend",
                "options": {"fail_on": [1]},
            },
        ],
        max_tokens=4,
    )
    out = tmp_path / "out"
    proc = run_cli("run", str(plan), "-o", str(out), "--limit", "3", cwd=tmp_path)
    assert proc.returncode == 1  # some run failed, the batch went on
    rows = {r["model_name"]: r for r in read_master(out)}
    assert rows["smollm2"]["status"] == "completed"
    assert rows["crashes"]["status"] == "failed"
    assert "weights are corrupt (injected)" in rows["crashes"]["error_message"]
    assert rows["crashes"]["failed_prompts"] == "3"
    # Some samples failed, beyond the default max_failed_share of 0: reported as such.
    assert rows["flaky"]["status"] == "completed_with_errors"
    assert rows["flaky"]["error_message"] == "1/3 samples failed: injected failure"
    assert (rows["flaky"]["successful_prompts"], rows["flaky"]["failed_prompts"]) == ("2", "1")
    log = (out / "runs" / rows["crashes"]["run_id"] / "run.log").read_text()
    assert "Traceback" in log and "RuntimeError" in log
    assert "Traceback" not in proc.stderr


def test_prompt_affixes_reach_the_backend_and_reasoning_is_split(
    tmp_path: Path, write_plan: PlanWriter
) -> None:
    """The echo backend returns the affixed prompt, which then reads as think format."""
    echo = {
        "name": "echo",
        "backend": "fakebackends:FlakyEchoBackend",
        "prompt_prefix": "<think>",
        "prompt_suffix": "</think> Done.",
    }
    plan = write_plan(extra_models=[echo], max_tokens=8)
    out = tmp_path / "out"
    proc = run_cli("run", str(plan), "-o", str(out), "-m", "echo", "--limit", "2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    (row,) = read_master(out)
    lines = (out / "runs" / row["run_id"] / "results.jsonl").read_text().splitlines()
    samples = [json.loads(line) for line in lines]
    for s, prompt in zip(samples, PROMPTS, strict=False):
        assert s["messages"][-1]["content"] == f"<think> {prompt} </think> Done."
        assert s["output_text"] == s["messages"][-1]["content"]
        assert (s["reasoning_text"], s["answer_text"]) == (prompt, "Done.")
        assert s["reasoning_tokens"] is None  # this backend cannot count tokens
    assert len(samples) == 2
    assert (row["reasoning_tokens"], row["answer_tokens"]) == ("", "")
