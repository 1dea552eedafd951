"""Outcomes through the CLI: failed runs look failed, settings reach stored runs, and no
attempt or batch stays "running" after a kill -9.

The failing runs talk to a real llama_cpp.server behind the fault proxy, which answers
the chat requests it is told to with an HTTP error (as a server does for a wrong API key).
"""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import PlanWriter, cli_env, db_rows, run_cli
from faultproxy import FaultProxy, Status
from llamaserver import ALIAS, LlamaServer, llama_server  # noqa: F401  (fixture)
from procs import wait_dead

from fleetbench.catalog.embedded import EMBEDDED_MODEL_ID
from fleetbench.meters.carbon import from_config

WRONG_KEY = "sk-wrong-0123456789"
DENIED = '{"error": {"message": "invalid api key", "type": "invalid_request_error"}}'


def read_master(output: Path) -> dict[str, dict[str, str]]:
    with open(output / "master_results.csv", newline="") as f:
        return {row["model_name"]: row for row in csv.DictReader(f)}


def served(base_url: str) -> dict[str, Any]:
    return {
        "name": "served",
        "id": EMBEDDED_MODEL_ID,
        "backend": "openai",
        "model_class": "A",
        "options": {
            "preset": "llamacpp-server",
            "base_url": base_url,
            "model": ALIAS,
            "api_key_env": "FB_OUTCOME_KEY",
            "stream": False,
            "max_retries": 0,
        },
    }


@pytest.fixture
def proxy(llama_server: LlamaServer) -> Iterator[FaultProxy]:  # noqa: F811
    with FaultProxy(llama_server.root_url) as p:
        yield p


def test_every_request_refused_makes_a_failed_run(
    tmp_path: Path, write_plan: PlanWriter, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FB_OUTCOME_KEY", WRONG_KEY)
    proxy.script({"": [Status(401, body=DENIED)] * 50})  # every chat request: 401
    plan = write_plan(lead_models=[served(proxy.base_url)], max_tokens=4)
    out = tmp_path / "out"
    proc = run_cli("run", str(plan), "-o", str(out), "--limit", "3", "-m", "served", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    row = read_master(out)["served"]
    assert row["status"] == "failed"
    assert row["error_message"] == "HTTP 401: invalid api key"  # the most common error
    assert (row["successful_prompts"], row["failed_prompts"]) == ("0", "3")
    assert row["energy_stars"] == "" and row["energy_stars_basis"] == ""
    assert row["energy_stars_reason"] == "status failed: only completed runs are rated"
    assert "failed" in proc.stdout and "invalid api key" in proc.stdout
    (run,) = db_rows(out, "SELECT status, error_message FROM runs")
    assert tuple(run) == ("failed", "HTTP 401: invalid api key")

    # Run again: every sample is stored, so it is skipped, and still says it failed.
    again = run_cli("run", str(plan), "-o", str(out), "--limit", "3", "-m", "served", cwd=tmp_path)
    assert again.returncode == 1, again.stdout + again.stderr
    assert "failed (3/3 stored); --fresh runs it again" in again.stdout
    assert read_master(out)["served"]["status"] == "failed"


def test_half_failing_run_and_the_max_failed_share(
    tmp_path: Path, write_plan: PlanWriter, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FB_OUTCOME_KEY", WRONG_KEY)
    # Two of the four prompts get a server error (no retries: max_retries 0).
    proxy.script({"Say hello": [Status(500)], "Name a colour": [Status(500)]})
    plan = write_plan(lead_models=[served(proxy.base_url)], max_tokens=4)
    out = tmp_path / "out"
    args = ("run", str(plan), "-o", str(out), "--limit", "4", "-m", "served")
    proc = run_cli(*args, cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    row = read_master(out)["served"]
    errors = {r[0] for r in db_rows(out, "SELECT error FROM samples WHERE error IS NOT NULL")}
    (error,) = errors  # the same for both, e.g. "HTTP 500 after 1 attempt: injected failure"
    assert error.startswith("HTTP 500") and "injected failure" in error
    assert row["status"] == "completed_with_errors"
    assert row["error_message"] == f"2/4 samples failed: {error}"
    assert (row["successful_prompts"], row["failed_prompts"]) == ("2", "2")
    assert row["energy_stars"] == ""
    assert row["energy_stars_reason"].startswith("status completed_with_errors")
    assert proxy.pending() == 0

    # A plan that tolerates half: the stored run is judged again, without running it.
    data = yaml.safe_load(plan.read_text())
    plan.write_text(yaml.safe_dump({**data, "max_failed_share": 0.5}, sort_keys=False))
    again = run_cli(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "completed (4/4 stored)" in again.stdout
    row = read_master(out)["served"]
    assert row["status"] == "completed"
    assert row["error_message"] == f"2/4 samples failed: {error} (within max_failed_share 0.5)"
    assert len(db_rows(out, "SELECT * FROM attempts")) == 1  # judged, not run again


def intensity(region: str) -> float:
    value = from_config({"carbon_region": region}).g_per_kwh
    assert value is not None
    return value


def test_energy_settings_reach_stored_runs(tmp_path: Path, write_plan: PlanWriter) -> None:
    out = tmp_path / "out"

    def plan_with(**energy: Any) -> Path:
        return write_plan(max_tokens=4, energy={"idle_baseline_s": 0, **energy})

    def check(region: str, g_per_kwh: float) -> dict[str, str]:
        (row,) = read_master(out).values()
        assert row["carbon_region"] == region
        assert float(row["carbon_intensity_g_per_kwh"]) == pytest.approx(g_per_kwh)
        assert float(row["co2_emissions_g"]) == pytest.approx(
            float(row["energy_wh"]) / 1000 * g_per_kwh, rel=1e-4
        )
        return row

    plan = plan_with()
    assert run_cli("run", str(plan), "-o", str(out), "--limit", "2", cwd=tmp_path).returncode == 0
    row = check("WORLD", intensity("WORLD"))
    assert row["energy_stars"] == "" and "1 completed run(s)" in row["energy_stars_reason"]

    # Edited plan + report --plan: CO2 follows, and the new settings stay in the store.
    plan = plan_with(carbon_region="FR")
    proc = run_cli("report", "--plan", str(plan), "-o", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    check("FR", intensity("FR"))
    assert run_cli("report", "-o", str(out), cwd=tmp_path).returncode == 0
    check("FR", intensity("FR"))

    # Edited plan + run again (the run is complete, so skipped): intensity and stars follow.
    reference = tmp_path / "ref.csv"
    reference.write_text("task,model_class,wh_per_1000_queries\ntextgen,A,0\ntextgen,A,1e-9\n")
    plan = plan_with(carbon_intensity_g_per_kwh=56, stars_reference=str(reference))
    proc = run_cli("run", str(plan), "-o", str(out), "--limit", "2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "completed (2/2 stored)" in proc.stdout
    row = check("WORLD", 56.0)
    assert (row["energy_stars"], row["energy_stars_basis"]) == ("1", "reference")

    # And with --fresh: the run is redone with the latest settings.
    plan = plan_with(carbon_region="DE")
    proc = run_cli("run", str(plan), "-o", str(out), "--limit", "2", "--fresh", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    row = check("DE", intensity("DE"))
    assert (row["energy_stars"], row["energy_stars_basis"]) == ("", "")
    assert row["attempts"] == "1"


def test_report_with_a_plan_of_other_runs_is_one_line(
    tmp_path: Path, write_plan: PlanWriter
) -> None:
    out = tmp_path / "out"
    plan = write_plan(max_tokens=4)
    assert run_cli("run", str(plan), "-o", str(out), "--smoke", cwd=tmp_path).returncode == 0
    before = (out / "master_results.csv").read_bytes()
    other = write_plan(max_tokens=5, name="other.yaml")  # another max_tokens: another run
    proc = run_cli("report", "--plan", str(other), "-o", str(out), cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "none of its runs is stored" in lines[0], proc.stderr
    assert (out / "master_results.csv").read_bytes() == before


def test_kill_9_then_a_new_batch_marks_the_dead_attempt_interrupted(
    tmp_path: Path, write_plan: PlanWriter
) -> None:
    pid_file = tmp_path / "pids"
    hangs = {
        "name": "hangs",
        "backend": "fakebackends:HangingBackend",
        "options": {"pid_file": str(pid_file)},
    }
    plan = write_plan(lead_models=[hangs], max_tokens=4)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleetbench", "run", str(plan), "-o", str(out), "-m", "hangs"],
        cwd=tmp_path,
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not pid_file.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert pid_file.exists(), "the hanging run did not start"
    time.sleep(7)  # hanging inside a sample: nothing stored, only heartbeats
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    worker_pid, sleeper_pid = map(int, pid_file.read_text().split())
    assert wait_dead(worker_pid)
    subprocess.run(["kill", "-9", str(sleeper_pid)], check=False)  # its orphaned child
    (attempt,) = db_rows(out, "SELECT * FROM attempts")
    assert attempt["status"] == "running"  # nobody was left to say otherwise
    assert attempt["last_seen_at"] - attempt["started_at"] >= 3  # the heartbeat moved it

    # Another batch into the same folder (the real model, one sample) takes the lock.
    proc2 = run_cli("run", str(plan), "-o", str(out), "-m", "smollm2", "--smoke", cwd=tmp_path)
    assert proc2.returncode == 0, proc2.stdout + proc2.stderr
    (dead,) = db_rows(out, "SELECT * FROM attempts WHERE run_id LIKE 'hangs%'")
    assert dead["status"] == "interrupted"
    assert dead["finished_at"] == dead["last_seen_at"] == attempt["last_seen_at"]
    assert "last seen 20" in dead["error_message"]
    batches = {r["status"] for r in db_rows(out, "SELECT status FROM batches")}
    assert batches == {"interrupted", "completed"}
    (old,) = db_rows(out, "SELECT * FROM batches WHERE status = 'interrupted'")
    assert old["finished_at"] == dead["last_seen_at"]
    row = read_master(out)["hangs"]
    assert row["status"] == "interrupted" and "re-run to resume" in row["error_message"]
    # Its duration counts up to the last heartbeat, not just to its (absent) samples.
    assert float(row["total_duration_seconds"]) >= 3
    assert not db_rows(out, "SELECT * FROM attempts WHERE status = 'running'")
