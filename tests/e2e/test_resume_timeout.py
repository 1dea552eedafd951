"""Crash safety: SIGKILL mid-run then resume; per-run timeouts kill the whole group."""

from __future__ import annotations

import csv
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from conftest import PROMPTS, PlanWriter, cli_env, db_rows, run_cli
from procs import alive, wait_dead


def stored_count(out: Path) -> int:
    try:
        conn = sqlite3.connect(out / "fleetbench.db", timeout=5)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM samples").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_sigkill_then_resume(tmp_path: Path, write_plan: PlanWriter) -> None:
    plan = write_plan(max_tokens=48)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleetbench", "run", str(plan), "-o", str(out)],
        cwd=tmp_path,
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while stored_count(out) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run_log = next((out / "runs").glob("*/run.log")).read_text()
    worker_pid = int(re.search(r"worker pid (\d+)", run_log).group(1))  # type: ignore[union-attr]
    assert wait_dead(worker_pid), "the worker outlived the killed batch"

    before = [tuple(r) for r in db_rows(out, "SELECT * FROM samples ORDER BY sample_index")]
    assert 2 <= len(before) < len(PROMPTS), "kill landed outside the run"
    assert [r[1] for r in before] == list(range(len(before)))  # no gap

    again = run_cli("run", str(plan), "-o", str(out), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "resuming" in again.stdout
    after = [tuple(r) for r in db_rows(out, "SELECT * FROM samples ORDER BY sample_index")]
    assert [r[1] for r in after] == list(range(len(PROMPTS)))  # all planned, none twice
    assert after[: len(before)] == before  # earlier samples untouched
    assert {r[3] for r in after[len(before) :]} == {2}  # the rest came from attempt 2
    with open(out / "master_results.csv", newline="") as f:
        row = next(csv.DictReader(f))
    assert row["status"] == "completed"
    assert row["successful_prompts"] == str(len(PROMPTS)) and row["attempts"] == "2"


def test_timeout_kills_process_group_and_batch_goes_on(
    tmp_path: Path, write_plan: PlanWriter
) -> None:
    pid_file = tmp_path / "pids"
    plan = write_plan(
        lead_models=[
            {
                "name": "hangs",
                "backend": "fakebackends:HangingBackend",
                "options": {"pid_file": str(pid_file)},
            }
        ],
        max_tokens=4,
    )
    # The hanging model comes first, so the real one proves the batch went on after it.
    out = tmp_path / "out"
    start = time.monotonic()
    proc = run_cli(
        "run", str(plan), "-o", str(out), "--smoke", "--timeout", "3", "-m", "hangs", cwd=tmp_path
    )
    elapsed = time.monotonic() - start
    assert proc.returncode == 1, proc.stderr
    assert elapsed < 60
    worker_pid, grandchild_pid = map(int, pid_file.read_text().split())
    assert wait_dead(worker_pid) and wait_dead(grandchild_pid)
    assert not alive(grandchild_pid)

    # A roomier timeout here: the real model's run (start, load, one sample) must not
    # be cut short on a loaded machine; the hanging one is killed again regardless.
    both = run_cli("run", str(plan), "-o", str(out), "--smoke", "--timeout", "25", cwd=tmp_path)
    assert both.returncode == 1
    with open(out / "master_results.csv", newline="") as f:
        rows = {r["model_name"]: r for r in csv.DictReader(f)}
    assert rows["smollm2"]["status"] == "completed"
    assert rows["hangs"]["status"] == "failed"
    assert rows["hangs"]["error_message"].startswith("timed out after 25 s (--timeout)")
    assert "0/1 samples stored" in rows["hangs"]["error_message"]
    assert rows["hangs"]["attempts"] == "2"
