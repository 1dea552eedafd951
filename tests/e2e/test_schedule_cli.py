"""``fleetbench schedule`` on the real embedded model: rounds on a fixed grid, a kill -9
mid-round then a restart (the round completes, the count stays exact, missed ticks are
recorded), ``schedule status`` and ``--print``."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from conftest import PlanWriter, cli_env, db_rows, run_cli


def test_every_3s_four_rounds_on_the_grid(tmp_path: Path, write_plan: PlanWriter) -> None:
    plan, out = write_plan(max_tokens=4), tmp_path / "out"
    proc = run_cli(
        "schedule", str(plan), "--every", "3s", "--rounds", "4", "--limit", "1", "-o", str(out),
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr + proc.stdout
    (sched,) = db_rows(out, "SELECT * FROM schedules")
    ticks = db_rows(out, "SELECT * FROM schedule_ticks ORDER BY tick")
    ran = [t for t in ticks if t["status"] == "done"]
    assert [t["round"] for t in ran] == [1, 2, 3, 4]
    for t in ticks:  # every tick on the 3 s grid from the stored start
        assert abs(t["due_at"] - (sched["start_at"] + 3 * t["tick"])) < 1e-6
    for t in ran:  # started on time (within the grace of half an interval)
        assert 0 <= t["started_at"] - t["due_at"] < 1.5
    # A tick that came due while a round ran is recorded as skipped, never overlapped.
    assert all(t["status"] == "skipped" and "still running" in t["reason"]
               for t in ticks if t["status"] != "done")  # fmt: skip
    keys = db_rows(out, "SELECT round, sample_index FROM samples ORDER BY round")
    assert [tuple(k) for k in keys] == [(1, 0), (2, 0), (3, 0), (4, 0)]
    assert sched["status"] == "finished"

    status = run_cli("schedule", "status", "-o", str(out), cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert "rounds done 4, failed 0, missed 0" in status.stdout
    assert "next due -" in status.stdout and "every 3s" in status.stdout


def test_kill9_mid_round_then_restart(tmp_path: Path, write_plan: PlanWriter) -> None:
    plan, out = write_plan(max_tokens=12), tmp_path / "out"
    args = ["schedule", str(plan), "--every", "3s", "--rounds", "2", "--limit", "4",
            "-o", str(out)]  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleetbench", *args], cwd=tmp_path, env=cli_env(),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # kill once round 1 has some, not all, samples
        with contextlib.suppress(sqlite3.Error):  # the store may still be being created
            if db_rows(out, "SELECT COUNT(*) AS n FROM samples")[0]["n"] >= 1:
                break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    stored = db_rows(out, "SELECT COUNT(*) AS n FROM samples")[0]["n"]
    assert 1 <= stored < 4, "the kill landed outside round 1"
    assert db_rows(out, "SELECT status FROM schedule_ticks")[0]["status"] == "running"
    time.sleep(7)  # ticks pass while no scheduler runs

    again = run_cli(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr + again.stdout
    assert "continuing schedule" in again.stdout and "resuming round 1" in again.stdout
    ticks = db_rows(out, "SELECT * FROM schedule_ticks ORDER BY tick")
    assert (ticks[0]["status"], ticks[0]["round"]) == ("done", 1)
    assert sum(t["status"] == "missed" for t in ticks) >= 2
    assert [t["round"] for t in ticks if t["status"] == "done"] == [1, 2]
    counts = db_rows(out, "SELECT round, COUNT(*) AS n FROM samples GROUP BY round")
    assert [(c["round"], c["n"]) for c in counts] == [(1, 4), (2, 4)]  # exact, no duplicate
    status = run_cli("schedule", "status", "-o", str(out), cwd=tmp_path)
    assert "rounds done 2, failed 0, missed " in status.stdout
    assert "missed: no scheduler was running" in status.stdout
    assert "tick 0 due" in status.stdout and "round 1 done" in status.stdout


def test_print_units_and_bad_input(tmp_path: Path, write_plan: PlanWriter) -> None:
    plan = write_plan()
    for kind, marker in (("cron", "* * * * *"), ("systemd", "OnCalendar="),
                         ("github-actions", "cron: '*/5 * * * *'")):  # fmt: skip
        proc = run_cli("schedule", str(plan), "--every", "51m", "--for", "4d", "--print", kind,
                       cwd=tmp_path)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert marker in proc.stdout
        assert f"fleetbench schedule {plan} --every 51m --for 4d --once" in proc.stdout
    bad = run_cli("schedule", str(plan), "--every", "51x", "--rounds", "1", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.startswith("error: --every '51x': not a duration")
    assert "Traceback" not in bad.stderr
    none = run_cli("schedule", str(plan), "--every", "1m", cwd=tmp_path)
    assert none.returncode == 2 and "--for, --until or --rounds" in none.stderr
