"""Uploads to a real S3-compatible server on 127.0.0.1 (moto, started and stopped here):
the store snapshot, CSVs, exports and run files read back; a second upload sends only
what changed; a failed upload is recorded and the results stay."""

from __future__ import annotations

import csv
import io
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import PlanWriter, cli_env, db_rows
from motoserver import BUCKET, moto_s3


@pytest.fixture
def s3_env() -> Iterator[dict[str, str]]:
    with moto_s3() as env:
        yield env


def run_with(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleetbench", *args], cwd=cwd, env=cli_env() | env,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_upload_to_local_s3_reads_back(
    tmp_path: Path, write_plan: PlanWriter, s3_env: dict[str, str]
) -> None:
    import fsspec

    plan, out = write_plan(max_tokens=4), tmp_path / "out"
    url = f"s3://{BUCKET}/fleet/a"
    proc = run_with(s3_env, "run", str(plan), "-o", str(out), "--limit", "1", "--upload", url,
                    cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert f"→ {url}" in proc.stdout

    os.environ.update(s3_env)
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    root = f"{BUCKET}/fleet/a"
    names = {p[len(root) + 1 :] for p in fs.find(root)}
    (run_id,) = [r["run_id"] for r in db_rows(out, "SELECT run_id FROM runs")]
    assert {"fleetbench.db", "master_results.csv", "exports/samples.csv",
            f"runs/{run_id}/results.jsonl", f"runs/{run_id}/summary.json"} <= names  # fmt: skip
    assert not any(n.endswith(("-wal", "-shm", ".lock")) for n in names)
    assert fs.cat_file(f"{root}/master_results.csv") == (out / "master_results.csv").read_bytes()
    snapshot = tmp_path / "snap.db"
    snapshot.write_bytes(fs.cat_file(f"{root}/fleetbench.db"))
    conn = sqlite3.connect(snapshot)
    assert conn.execute("SELECT COUNT(*) FROM samples").fetchone()[0] == 1  # a whole database
    conn.close()
    rows = list(csv.DictReader(io.StringIO(fs.cat_file(f"{root}/exports/samples.csv").decode())))
    assert [(r["run_id"], r["round"], r["success"]) for r in rows] == [(run_id, "1", "true")]

    again = run_with(s3_env, "run", str(plan), "-o", str(out), "--limit", "1", "--upload", url,
                     cwd=tmp_path)  # fmt: skip
    assert again.returncode == 0, again.stderr
    first, second = db_rows(out, "SELECT status, files FROM uploads ORDER BY upload_id")
    assert first["status"] == second["status"] == "done"
    assert second["files"] < first["files"]  # unchanged run files are not sent again

    gone = run_with(s3_env, "run", str(plan), "-o", str(out), "--limit", "1", "--upload",
                    "s3://no-such-bucket/x", cwd=tmp_path)  # fmt: skip
    assert gone.returncode == 0, gone.stderr  # measurements are never blocked
    assert "warning: upload to s3://no-such-bucket/x failed" in gone.stdout
    last = db_rows(out, "SELECT status, error FROM uploads ORDER BY upload_id DESC")[0]
    assert last["status"] == "failed" and last["error"]
    assert "testing" not in (last["error"] or "") and "testing" not in gone.stdout  # no secret
    assert len(db_rows(out, "SELECT 1 FROM samples")) == 1


def test_missing_backend_and_bad_url(tmp_path: Path, write_plan: PlanWriter) -> None:
    plan = write_plan()
    bad = run_with({}, "run", str(plan), "-o", str(tmp_path / "o"), "--upload", "nope://x",
                   cwd=tmp_path)  # fmt: skip
    assert bad.returncode == 2 and "unknown storage protocol 'nope'" in bad.stderr
    assert not (tmp_path / "o").exists()
