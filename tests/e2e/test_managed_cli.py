"""Managed server lifecycle through the CLI: a real llama_cpp.server started for a run,
used over HTTP and stopped with its whole process group on success, on failure, on a
--timeout kill, and on SIGINT, SIGTERM and SIGKILL of fleetbench."""

from __future__ import annotations

import csv
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml
from conftest import PlanWriter, cli_env, db_rows, run_cli

pytestmark = pytest.mark.slow

LLAMA_SERVER = [
    "{python}", "-m", "llama_cpp.server", "--model", "{embedded_model}",
    "--host", "{host}", "--port", "{port}", "--interrupt_requests", "false",
    "--model_alias", "{model}", "--n_ctx", "2048",
]  # fmt: skip


def served(name: str = "served", **server: Any) -> dict[str, Any]:
    return {
        "name": name,
        "id": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "backend": "openai",
        "options": {
            "preset": "llamacpp-server",
            "server": {"command": LLAMA_SERVER, "startup_timeout_s": 120, **server},
        },
    }


def forced_tokens(plan: Path, tokens: int) -> Path:
    """Every reply exactly ``tokens`` long: end-of-generation suppressed until then."""
    data = yaml.safe_load(plan.read_text())
    data["generation"].update(max_tokens=tokens, min_tokens=tokens)
    plan.write_text(yaml.safe_dump(data, sort_keys=False))
    return plan


def master_rows(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "master_results.csv", newline="") as f:
        return {r["model_name"]: r for r in csv.DictReader(f)}


def stored_count(out: Path) -> int:
    try:
        conn = sqlite3.connect(out / "fleetbench.db", timeout=5)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM samples").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.OperationalError:  # not created yet
        return 0


def server_log(out: Path) -> Path:
    return next((out / "runs").glob("served__*/server.log"))


def logged_group(out: Path) -> tuple[int, int]:
    """The server's process group and port, from fleetbench's line in server.log."""
    found = re.search(r"process group (\d+), port (\d+):", server_log(out).read_text())
    assert found, server_log(out).read_text()
    return int(found.group(1)), int(found.group(2))


def leftovers(pgid: int, port: int) -> list[str]:
    """Live processes of the server's group, or any llama_cpp.server on its port."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            cmdline = proc.info["cmdline"] or []
            on_port = "llama_cpp.server" in cmdline and str(port) in cmdline
            if on_port or os.getpgid(proc.pid) == pgid:
                found.append(f"{proc.pid}: {' '.join(cmdline)[:120]}")
        except (ProcessLookupError, psutil.Error):
            continue
    return found


def assert_server_gone(out: Path, timeout: float = 20.0) -> None:
    pgid, port = logged_group(out)
    deadline = time.monotonic() + timeout
    while (left := leftovers(pgid, port)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left == [], f"server processes left behind: {left}"
    assert not list((out / "runs").glob("*/server.pgid"))


def test_served_run_completes_and_stops_its_server(tmp_path: Path, write_plan: PlanWriter) -> None:
    plan = write_plan(extra_models=[served()])
    out = tmp_path / "out"
    proc = run_cli("run", str(plan), "-o", str(out), "-m", "served", "--limit", "2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    row = master_rows(out)["served"]
    assert row["status"] == "completed" and row["successful_prompts"] == "2"
    assert float(row["server_startup_seconds"]) > 0
    # fleetbench started the server: its process tree is metered with the worker's.
    assert row["energy_scope"] == "client + managed server" and float(row["energy_wh"]) > 0
    log = server_log(out).read_text()
    assert "ready at http://127.0.0.1:" in log and "stopped (exit code" in log
    assert "POST /v1/chat/completions" in log  # the samples went over HTTP
    assert_server_gone(out)


def test_server_that_cannot_start_fails_the_run_and_leaves_nothing(
    tmp_path: Path, write_plan: PlanWriter
) -> None:
    entry = served()
    entry["options"]["server"]["command"] = [
        *LLAMA_SERVER[:4], str(tmp_path / "missing.gguf"), *LLAMA_SERVER[5:]
    ]  # fmt: skip
    plan = write_plan(extra_models=[entry])
    out = tmp_path / "out"
    proc = run_cli("run", str(plan), "-o", str(out), "-m", "served", "--smoke", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr + proc.stdout
    row = master_rows(out)["served"]
    assert row["status"] == "failed"
    assert "managed server exited with code" in row["error_message"]
    assert "missing.gguf" in row["error_message"]  # the log tail says why
    assert_server_gone(out)


def test_timeout_kill_mid_run_stops_the_server(tmp_path: Path, write_plan: PlanWriter) -> None:
    # 6 replies of 1900 forced tokens take far longer than the timeout, even on a fast
    # machine: the worker is killed mid-run, its server still up.
    plan = forced_tokens(write_plan(extra_models=[served()]), 1900)
    out = tmp_path / "out"
    args = ("run", str(plan), "-o", str(out), "-m", "served", "--timeout", "20")
    proc = run_cli(*args, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr + proc.stdout
    row = master_rows(out)["served"]
    assert row["error_message"].startswith("timed out after 20 s"), row["error_message"]
    assert int(row["successful_prompts"] or 0) < 6
    assert "ready at" in server_log(out).read_text()  # it was killed after the start
    assert_server_gone(out)


def start_batch(tmp_path: Path, write_plan: PlanWriter) -> tuple[subprocess.Popen[bytes], Path]:
    """fleetbench running the served model on 6 prompts; returns once 1 sample is stored."""
    plan = forced_tokens(write_plan(extra_models=[served()]), 96)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleetbench", "run", str(plan), "-o", str(out), "-m", "served"],
        cwd=tmp_path,
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 180
    while stored_count(out) < 1 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None and stored_count(out) >= 1, "the run did not get going"
    assert list((out / "runs").glob("served__*/server.pgid"))
    return proc, out


@pytest.mark.parametrize(
    ("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"]
)
def test_signal_to_fleetbench_stops_the_server_and_keeps_samples(
    tmp_path: Path, write_plan: PlanWriter, sig: signal.Signals, code: int
) -> None:
    proc, out = start_batch(tmp_path, write_plan)
    proc.send_signal(sig)
    assert proc.wait(timeout=60) == code
    stored = db_rows(out, "SELECT sample_index, output_text FROM samples")
    assert 1 <= len(stored) < 6
    assert all(text for _, text in stored)
    row = master_rows(out)["served"]
    assert row["status"] == "interrupted" and "interrupted" in row["error_message"]
    # nothing is left "running": the attempt and the batch say how they ended
    assert {r[0] for r in db_rows(out, "SELECT status FROM attempts")} == {"interrupted"}
    assert {r[0] for r in db_rows(out, "SELECT status FROM batches")} == {"interrupted"}
    assert_server_gone(out)


def test_sigkill_of_fleetbench_takes_the_server_down(
    tmp_path: Path, write_plan: PlanWriter
) -> None:
    proc, out = start_batch(tmp_path, write_plan)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # Nobody is left to remove server.pgid: only check the processes.
    pgid, port = logged_group(out)
    deadline = time.monotonic() + 30
    while (left := leftovers(pgid, port)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left == [], f"server processes left behind: {left}"
