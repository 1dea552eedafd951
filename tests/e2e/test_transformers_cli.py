"""The transformers backend through the CLI, on the embedded SmolLM2 GGUF."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import PlanWriter, db_rows, run_cli
from test_cli_run import read_master

pytest.importorskip("transformers", reason="needs the [hf] extra")
torch = pytest.importorskip("torch", reason="needs the [hf] extra")

HF = {"name": "smollm2-hf", "backend": "transformers", "options": {"threads": 2}}
HF_CUDA = {"name": "smollm2-hf-cuda", "backend": "transformers", "options": {"device": "cuda"}}


@pytest.mark.slow
def test_smoke_run_on_the_embedded_gguf(tmp_path: Path, write_plan: PlanWriter) -> None:
    plan = write_plan(extra_models=[HF], max_tokens=8)
    out = tmp_path / "out"
    proc = run_cli("run", str(plan), "-o", str(out), "--smoke", "-m", "smollm2-hf", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    [row] = read_master(out)
    assert (row["model_name"], row["backend"], row["status"]) == (
        "smollm2-hf",
        "transformers",
        "completed",
    )
    assert row["successful_prompts"] == "1" and row["failed_prompts"] == "0"
    assert 0 < int(row["total_completion_tokens"]) <= 8
    assert 0 < float(row["avg_ttft_seconds"]) <= float(row["avg_latency_seconds"])

    [sample] = db_rows(out, "SELECT * FROM samples WHERE run_id = ?", row["run_id"])
    assert sample["token_source"] == "exact" and sample["output_text"]
    [attempt] = db_rows(out, "SELECT * FROM attempts WHERE run_id = ?", row["run_id"])
    details = json.loads(attempt["details_json"])
    on = "cuda" if torch.cuda.is_available() else "cpu"  # device: auto
    assert details["details"]["dtype"] == "float32" and details["details"]["device"] == on
    assert details["model_size_bytes"] > 50_000_000 and details["load_time_s"] > 0
    if on == "cpu":
        assert attempt["peak_rss_mb"] > 500  # float32 weights in RAM: ~1.2 GB here
    log = (out / "runs" / row["run_id"] / "run.log").read_text()
    assert "de-quantizing" not in log  # no progress bars in the run's log


def test_cuda_without_a_gpu_is_skipped_with_the_reason(
    tmp_path: Path, write_plan: PlanWriter
) -> None:
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present")
    plan = write_plan(extra_models=[HF, HF_CUDA])
    proc = run_cli("run", str(plan), "--dry-run", "-o", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    line = next(ln for ln in proc.stdout.splitlines() if "smollm2-hf-cuda" in ln)
    assert "skip" in line and "needs a CUDA GPU" in line
    hf_line = next(ln for ln in proc.stdout.splitlines() if "smollm2-hf " in ln)
    assert "run" in hf_line and "skip" not in hf_line
